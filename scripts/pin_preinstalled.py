#!/usr/bin/env python
"""Pin the notebook's preinstalled torch stack in a pip constraints file, or check it.

python scripts/pin_preinstalled.py CONSTRAINTS          # write torch==X, torchvision==Y, ...
python scripts/pin_preinstalled.py --check CONSTRAINTS  # exit 1 if an installed version differs

A notebook (Kaggle, Colab) ships a CUDA build of torch with the torchvision and torchaudio
built against it. ``pip install -c CONSTRAINTS ...`` then cannot replace any of them, also
not when a dependency (torchvision, timm, segmentation-models-pytorch) asks for another
torch: pip keeps the installed release or stops with a resolution error. Packages that are
not installed are not pinned, so a missing torch is still installed from the requirements.
Runs with the standard library only: it must work before anything is installed.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from importlib import metadata
from pathlib import Path

# Built against each other: replacing one breaks the others' compiled operators.
TORCH_STACK = ("torch", "torchvision", "torchaudio")


def installed_pins(names: tuple[str, ...] = TORCH_STACK) -> dict[str, str]:
    """``{name: version}`` of the packages among ``names`` that are installed."""
    pins = {}
    for name in names:
        try:
            pins[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return pins


def render(pins: dict[str, str]) -> str:
    """The constraints file's text: one ``name==version`` line per pinned package."""
    lines = ["# Written by scripts/pin_preinstalled.py: the preinstalled torch stack, kept as it is."]
    lines += [f"{name}=={version}" for name, version in pins.items()]
    return "\n".join(lines) + "\n"


def read_pins(path: Path) -> dict[str, str]:
    """The ``name==version`` lines of a constraints file written by ``render``."""
    pins = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if "==" in line:
            name, version = line.split("==", 1)
            pins[name.strip()] = version.strip()
    return pins


def write(path: Path, pins: dict[str, str]) -> None:
    """Write the constraints file atomically (a rerun never leaves half a file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(render(pins))
    os.replace(tmp, path)


def changed(path: Path) -> list[str]:
    """One line per pinned package whose installed version is no longer the pinned one."""
    pinned = read_pins(path)
    now = installed_pins(tuple(pinned))
    return [
        f"{name}: pinned {version}, installed {now.get(name, 'nothing')}"
        for name, version in pinned.items()
        if now.get(name) != version
    ]


def main(argv: list[str] | None = None) -> int:
    """Write (or with --check, compare) the constraints file; the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("constraints", type=Path, help="the pip constraints file")
    parser.add_argument("--check", action="store_true", help="compare, do not write")
    args = parser.parse_args(argv)
    if args.check:
        if not args.constraints.is_file():
            print(f"error: {args.constraints}: not found; run without --check first", file=sys.stderr)
            return 1
        problems = changed(args.constraints)
        for line in problems:
            print(f"error: {line} (something replaced the notebook's build)", file=sys.stderr)
        return 1 if problems else 0
    pins = installed_pins()
    write(args.constraints, pins)
    kept = ", ".join(f"{n} {v}" for n, v in pins.items()) or "nothing (no torch installed yet)"
    print(f"pinned {kept} in {args.constraints}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
