"""docs/configuration.md is generated from glacier/config.py and must not drift from it."""

from __future__ import annotations

import re
import subprocess
import sys

from glacier.config import GlacierConfig, load_config, preset_chain, preset_names
from tests.conftest import REPO_ROOT

GENERATOR = REPO_ROOT / "scripts" / "gen_config_docs.py"
DOC = REPO_ROOT / "docs" / "configuration.md"


def _leaf_keys(model, prefix=""):
    for name, field in model.model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, type) and hasattr(annotation, "model_fields"):
            yield from _leaf_keys(annotation, f"{prefix}{name}.")
        else:
            yield f"{prefix}{name}"


def test_committed_configuration_doc_is_up_to_date():
    proc = subprocess.run(
        [sys.executable, str(GENERATOR), "--check"], cwd=REPO_ROOT, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr + "\nrun: python scripts/gen_config_docs.py"


def test_every_config_key_is_documented_with_a_meaning():
    rows = {}
    for line in DOC.read_text(encoding="utf-8").splitlines():
        if line.startswith("| `"):
            cells = [c.strip() for c in re.split(r"(?<!\\)\|", line)]  # "\|" inside a type is not a column
            if len(cells) == 7:  # key rows; the preset table has fewer columns
                rows[cells[1].strip("`")] = cells[4]
    keys = list(_leaf_keys(GlacierConfig))
    assert len(keys) > 30
    for key in keys:
        assert key in rows, f"{key} missing from docs/configuration.md"
        assert rows[key], f"{key} has no meaning: add a docstring under it in glacier/config.py"


def test_check_mode_detects_drift(tmp_path):
    stale = tmp_path / "configuration.md"
    stale.write_text("# stale\n")
    proc = subprocess.run(
        [sys.executable, str(GENERATOR), "--check", "--out", str(stale)], capture_output=True, text=True
    )
    assert proc.returncode == 1 and "out of date" in proc.stderr


def test_presets_table_shows_each_chain_and_the_yaml_example_loads(tmp_path):
    text = DOC.read_text(encoding="utf-8")
    for name in preset_names():
        chain = " -> ".join(f"`{p.stem}`" for p in preset_chain(name))
        row = next(line for line in text.splitlines() if line.startswith(f"| `{name}` |"))
        assert (chain in row) if len(preset_chain(name)) > 1 else row.endswith("| none (complete) |")
    example = re.search(r"```yaml\n(.*?)```", text, re.S).group(1)
    (tmp_path / "mine.yaml").write_text(example)
    mine, base = load_config(tmp_path / "mine.yaml"), load_config("competition_finetune")
    assert mine.name == "my_finetune" and mine.training.optimizer.lr == 3e-4
    assert mine.training.optimizer.weight_decay == base.training.optimizer.weight_decay
    assert mine.data == base.data
