"""The declared dependencies are what the package imports, in both lists that declare them."""

from __future__ import annotations

import ast
import re
import sys
from importlib import metadata

import pytest

from tests.conftest import REPO_ROOT

tomllib = pytest.importorskip("tomllib")  # Python 3.11+

PYPROJECT = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
DECLARED = PYPROJECT["project"]["dependencies"]


def _name(requirement: str) -> str:
    """The canonical distribution name of a requirement (PEP 503)."""
    return re.sub(r"[-_.]+", "-", re.split(r"[<>=!~;\[ ]", requirement, maxsplit=1)[0]).lower()


def _imported_top_level_modules() -> set[str]:
    modules = set()
    for path in (REPO_ROOT / "glacier").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                modules |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                modules.add(node.module.split(".")[0])
    return modules - set(sys.stdlib_module_names) - {"glacier", "__future__"}


def test_every_imported_package_is_declared():
    """cv2 comes with albumentations too, but glacier imports it, so glacier declares it."""
    providers = metadata.packages_distributions()  # module -> distributions installed here
    declared = {_name(r) for r in DECLARED}
    missing = {}
    for module in sorted(_imported_top_level_modules()):
        distributions = {_name(d) for d in providers.get(module, [])}
        assert distributions, f"{module}: imported by glacier but not installed in this environment"
        if not distributions & declared:
            missing[module] = sorted(distributions)
    assert not missing, f"imported but not in pyproject.toml's dependencies: {missing}"


def test_no_import_of_the_hubs_transport_library():
    """It changed between huggingface_hub releases (requests, httpx, httpx2)."""
    assert not _imported_top_level_modules() & {"requests", "httpx", "httpx2", "urllib3"}


def test_requirements_txt_is_pyprojects_list():
    lines = (REPO_ROOT / "requirements.txt").read_text().splitlines()
    requirements = [line.strip() for line in lines if line.strip() and not line.startswith("#")]
    assert requirements == DECLARED


def test_build_requirements_can_read_the_license_expression():
    """An SPDX string in project.license needs setuptools 77 (tests/test_kaggle_setup.py builds with it)."""
    assert isinstance(PYPROJECT["project"]["license"], str)
    (setuptools,) = [r for r in PYPROJECT["build-system"]["requires"] if _name(r) == "setuptools"]
    minimum = tuple(int(part) for part in setuptools.split(">=", 1)[1].split("."))
    assert minimum >= (77,)
