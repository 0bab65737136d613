"""Reproducibility and resume: same seed -> same weights; interrupted + resumed == uninterrupted.

Like accelerate's test_state_checkpointing: train "3 epochs" and "2, save, load, 1" and
compare every parameter.
"""

from __future__ import annotations

import os
import signal

import pytest
import torch
from safetensors.torch import load_file
from training_data import prepared_competition

from glacier.artifacts.run import RunFolder
from glacier.config import load_config
from glacier.training import fit
from glacier.training import loop as loop_module


@pytest.fixture(scope="module")
def prep(tmp_path_factory):
    return prepared_competition(tmp_path_factory.mktemp("data"))


def config(prep, epochs: int, scheduler: str = "cosine", **overrides):
    cfg = load_config(
        "tiny",
        [
            "training.sampler.samples_per_epoch=16",
            "training.batch_size=4",
            f"training.scheduler.name={scheduler}",
        ],
        data=prep,
        epochs=epochs,
    )
    return cfg.updated(**overrides) if overrides else cfg


def weights(run) -> dict[str, torch.Tensor]:
    """Every saved tensor of the run's last model: the smp network and the boundary head."""
    last = run / "last"
    head = last / "boundary_head.safetensors"
    tensors = {f"net.{k}": v for k, v in load_file(str(last / "model.safetensors")).items()}
    if head.is_file():
        tensors.update({f"boundary_head.{k}": v for k, v in load_file(str(head)).items()})
    return tensors


def assert_same_weights(a, b) -> None:
    wa, wb = weights(a), weights(b)
    assert wa.keys() == wb.keys()
    different = [k for k in wa if not torch.equal(wa[k], wb[k])]
    assert not different, f"{len(different)} tensors differ, e.g. {different[:3]}"


def without_times(lines: list[str]) -> list[list[str]]:
    """metrics.csv rows without the timing columns (seconds, images/s)."""
    return [line.split(",")[:-2] for line in lines]


@pytest.fixture(scope="module")
def reference(prep, tmp_path_factory):
    """An uninterrupted 3-epoch run."""
    run = tmp_path_factory.mktemp("reference") / "run"
    result = fit(config(prep, 3), out=run)
    assert result.stopped_reason == "completed" and result.epochs_run == 3
    return run


def test_same_seed_same_weights_other_seed_differs(prep, reference, tmp_path):
    fit(config(prep, 3), out=tmp_path / "again")
    assert_same_weights(reference, tmp_path / "again")
    fit(config(prep, 1, **{"training.seed": 7}), out=tmp_path / "seed7")
    one_epoch = fit(config(prep, 1), out=tmp_path / "seed42")
    assert one_epoch.epochs_run == 1
    wa, wb = weights(tmp_path / "seed7"), weights(tmp_path / "seed42")
    assert any(not torch.equal(wa[k], wb[k]) for k in wa)


def test_two_epochs_then_resume_equals_three_epochs(prep, tmp_path):
    # Plateau, not tiny's cosine: a cosine schedule depends on the run's length, so "2 epochs,
    # then 1 more" is another run than "3 epochs" (the interrupted runs below use cosine). The
    # EMA of the weights (what last/ holds) must come back from the state exactly.
    reference = tmp_path / "reference"
    fit(config(prep, 3, "plateau"), out=reference)
    run = tmp_path / "run"
    fit(config(prep, 2, "plateau"), out=run)
    result = fit(config(prep, 3, "plateau"), out=run, resume="latest")
    assert result.epochs_run == 3
    assert_same_weights(reference, run)
    rows = (run / "metrics.csv").read_text().splitlines()
    assert [r.split(",")[0] for r in rows[1:]] == ["1", "2", "3"]
    assert without_times(rows) == without_times((reference / "metrics.csv").read_text().splitlines())


def test_sigterm_mid_epoch_saves_a_state_and_resume_matches(prep, reference, tmp_path, monkeypatch):
    run = tmp_path / "run"
    real_step = loop_module.train_step
    calls = {"n": 0}

    def step_then_sigterm(*args, **kwargs):
        out = real_step(*args, **kwargs)
        calls["n"] += 1
        if calls["n"] == 6:  # epoch 2, batch 2
            os.kill(os.getpid(), signal.SIGTERM)
        return out

    monkeypatch.setattr(loop_module, "train_step", step_then_sigterm)
    result = fit(config(prep, 3), out=run)
    assert result.stopped_reason == "SIGTERM" and result.epochs_run == 1
    latest = RunFolder(run).latest_state()
    assert latest.name == "state_000006"
    assert '"batch_in_epoch": 2' in (latest / "trainer_state.json").read_text()

    monkeypatch.setattr(loop_module, "train_step", real_step)
    result = fit(config(prep, 3), out=run, resume="latest")
    assert result.stopped_reason == "completed" and result.epochs_run == 3
    assert_same_weights(reference, run)
    ref_rows = (reference / "metrics.csv").read_text().splitlines()
    rows = (run / "metrics.csv").read_text().splitlines()
    assert without_times(rows) == without_times(ref_rows)  # the interrupted epoch's loss too


def test_crash_during_a_state_write_leaves_the_previous_state_loadable(
    prep, reference, tmp_path, monkeypatch
):
    from accelerate import Accelerator

    run = tmp_path / "run"
    real_save = Accelerator.save_state
    calls = {"n": 0}

    def save_then_die(self, output_dir=None, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:  # the second state: write part of it, then "kill -9"
            real_save(self, output_dir, **kwargs)
            with open(os.path.join(output_dir, "model.safetensors"), "r+b") as handle:
                handle.truncate(100)
            raise SystemExit(137)
        return real_save(self, output_dir, **kwargs)

    monkeypatch.setattr(Accelerator, "save_state", save_then_die)
    with pytest.raises(SystemExit):
        fit(config(prep, 3), out=run)
    monkeypatch.setattr(Accelerator, "save_state", real_save)

    manager = RunFolder(run)
    assert [p.name for p in manager.complete_states()] == ["state_000004"]
    assert (run / "states" / ".state_000008.partial").is_dir()  # the debris, never under the final name

    result = fit(config(prep, 3), out=run, resume="latest")
    assert result.epochs_run == 3
    assert_same_weights(reference, run)
    assert not list((run / "states").glob(".*partial"))  # debris cleaned at the next save


def test_max_hours_stops_with_a_state_and_resume_finishes(prep, reference, tmp_path):
    run = tmp_path / "run"
    # A budget far below one epoch: the run stops after the first epoch, state saved.
    result = fit(config(prep, 3, **{"training.max_hours": 1e-7}), out=run)
    assert result.stopped_reason == "max_hours" and result.epochs_run == 1
    assert RunFolder(run).latest_state().name == "state_000004"
    result = fit(config(prep, 3), out=run, resume="latest")
    assert result.epochs_run == 3
    assert_same_weights(reference, run)
