"""``--batch-size auto`` (glacier/training/batch_size.py): the search against injected
"fits" functions, the trial's out-of-memory handling around real training steps on CPU, and
the CPU behaviour of the option (the preset's value, said so). There is no GPU here: the
search on a real GPU is what ``benchmarks/gpu_throughput.py --auto`` prints."""

from __future__ import annotations

import math
import sys

import pytest
import torch
from cli_checks import assert_clean_failure
from training_data import prepared_competition

from glacier.artifacts.run import RunFolder
from glacier.config import load_config
from glacier.domain import COMPETITION_BANDS
from glacier.training.batch_size import (
    TrainingTrial,
    choose_batch_size,
    is_out_of_memory,
    largest_fitting,
    started_batch_size,
    with_margin,
)


class FakeDevice:
    """Fits batches up to ``capacity``; counts the trials."""

    def __init__(self, capacity: int) -> None:
        self.capacity, self.tried = capacity, []

    def __call__(self, n: int) -> bool:
        self.tried.append(n)
        return n <= self.capacity


@pytest.mark.parametrize("start", [1, 6, 8, 16, 300])
def test_the_search_finds_the_largest_batch_that_fits(start):
    limit = 256
    for capacity in range(0, 301):
        device = FakeDevice(capacity)
        assert largest_fitting(device, start=start, limit=limit) == min(capacity, limit), (start, capacity)
        assert len(device.tried) == len(set(device.tried))  # no size tried twice
        bound = 2 * math.ceil(math.log2(limit)) + 2
        assert len(device.tried) <= bound, (start, capacity, device.tried)


def test_the_search_doubles_then_bisects_like_lightnings_binsearch():
    device = FakeDevice(capacity=45)
    assert largest_fitting(device, start=8, limit=1024) == 45
    assert device.tried == [8, 16, 32, 64, 48, 40, 44, 46, 45]


def test_nothing_fits_or_everything_fits():
    assert largest_fitting(FakeDevice(0), start=8, limit=64) == 0
    everything = FakeDevice(10**6)
    assert largest_fitting(everything, start=8, limit=64) == 64
    assert everything.tried == [8, 16, 32, 64]  # stops at the cap
    with pytest.raises(ValueError):
        largest_fitting(everything, start=8, limit=0)


def test_the_margin_rounds_down_and_keeps_at_least_one():
    assert with_margin(45, 0.1) == 40 and with_margin(10, 0.1) == 9 and with_margin(1, 0.1) == 1


def test_out_of_memory_is_recognised_and_nothing_else():
    assert is_out_of_memory(torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB"))
    assert is_out_of_memory(RuntimeError("CUDA error: CUBLAS_STATUS_ALLOC_FAILED when calling cublasCreate"))
    assert is_out_of_memory(RuntimeError("cuDNN error: CUDNN_STATUS_NOT_SUPPORTED"))
    assert not is_out_of_memory(RuntimeError("Expected all tensors to be on the same device"))
    assert not is_out_of_memory(ValueError("out of memory"))


def tiny_trial() -> TrainingTrial:
    cfg = load_config("tiny")
    return TrainingTrial(cfg, COMPETITION_BANDS, crop_size=64, device=torch.device("cpu"))


def test_the_trial_runs_real_steps_and_an_out_of_memory_is_a_no(monkeypatch):
    trial = tiny_trial()
    before = [p.detach().clone() for p in trial.model.parameters() if p.requires_grad]
    assert trial.fits(2, steps=2)
    after = [p for p in trial.model.parameters() if p.requires_grad]
    assert any(not torch.equal(a, b) for a, b in zip(before, after, strict=True))  # it really trained
    assert trial.optimizer.state  # the optimizer's state exists, as in a run

    real_step, sizes = trial.step, []

    def step_with_a_memory_limit(batch_size: int) -> None:
        sizes.append(batch_size)
        real_step(min(batch_size, 2))  # a real step, then the "device" runs out above 5
        if batch_size > 5:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 1.00 GiB")

    monkeypatch.setattr(trial, "step", step_with_a_memory_limit)
    assert largest_fitting(lambda n: trial.fits(n, steps=1), start=2, limit=64) == 5
    assert sizes == [2, 4, 8, 6, 5]
    assert all(p.grad is None for p in trial.model.parameters())  # released after the failure


def test_an_error_that_is_not_out_of_memory_is_raised(monkeypatch):
    trial = tiny_trial()

    def broken(batch_size: int) -> None:
        raise RuntimeError("Expected all tensors to be on the same device")

    monkeypatch.setattr(trial, "step", broken)
    with pytest.raises(RuntimeError, match="same device"):
        trial.fits(4)


def test_on_cpu_the_presets_batch_size_is_kept_and_said():
    choice = choose_batch_size(load_config("tiny").updated(**{"training.batch_size": 6}))
    assert choice.batch_size == 6 and choice.largest is None
    assert "no GPU (cpu), keeping the preset's training.batch_size 6" in choice.note


@pytest.fixture(scope="module")
def prep(tmp_path_factory):
    return prepared_competition(tmp_path_factory.mktemp("prep"), n_images=6, folds=2)


def test_cli_batch_size_auto_on_cpu_trains_with_the_preset(prep, tmp_path, cli, capsys):
    run = tmp_path / "ft"
    argv = ["finetune", "--config", "tiny", "--data", prep, "--out", run, "--epochs", "1", "--fold", "0"]
    assert cli(*argv, "--batch-size", "auto", "--set", "training.sampler.samples_per_epoch=16") == 0
    out = capsys.readouterr().out
    assert "--batch-size auto: no GPU (cpu), keeping the preset's training.batch_size 4" in out
    assert RunFolder(run).config()["training"]["batch_size"] == 4
    assert started_batch_size(run) == 4  # what a resumed command keeps

    assert_clean_failure(
        cli, capsys, [*argv[:-2], "--fold", "1", "--batch-size", "big"], culprit="--batch-size 'big'"
    )


def test_a_resumed_command_keeps_the_batch_size_its_runs_started_with(tmp_path):
    from glacier.config import save_config

    cv = tmp_path / "cv"
    (cv / "fold_0").mkdir(parents=True)
    save_config(load_config("tiny").updated(**{"training.batch_size": 12}), cv / "fold_0" / "config.yaml")
    assert started_batch_size(cv) == 12
    (tmp_path / "ens" / "runs" / "seed42_fold0").mkdir(parents=True)
    save_config(
        load_config("tiny").updated(**{"training.batch_size": 7}),
        tmp_path / "ens" / "runs" / "seed42_fold0" / "config.yaml",
    )
    assert started_batch_size(tmp_path / "ens") == 7
    assert started_batch_size(tmp_path / "nothing") is None


def test_the_gpu_benchmark_says_it_is_on_cpu_and_runs_reduced(monkeypatch, capsys):
    import importlib.util

    from tests.conftest import REPO_ROOT

    spec = importlib.util.spec_from_file_location(
        "gpu_throughput", REPO_ROOT / "benchmarks" / "gpu_throughput.py"
    )
    bench = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "gpu_throughput", bench)  # dataclasses look their module up
    spec.loader.exec_module(bench)
    monkeypatch.setattr(bench, "CASES", (bench.Case("tiny", "tiny"),))  # one small model: the code path, fast
    bench.main(["--steps", "5", "--auto"])
    out = capsys.readouterr().out
    assert out.startswith("CPU: no GPU found. Reduced mode (64 px crops, batch 2, full precision, 2 steps")
    assert "they are not GPU figures" in out
    row = next(line for line in out.splitlines() if line.startswith("| tiny |"))
    assert float(row.split("|")[5]) > 0  # images/s
    assert "auto" not in out.split("\n", 1)[1]  # no batch search on a CPU
