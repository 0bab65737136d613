"""Stopping: the checkpoint and stop rules, and stop requests under several processes (asked
every N optimizer steps, agreed by all)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from test_multiprocess_training import launch
from training_data import prepared_competition

from glacier.artifacts.run import RunFolder
from glacier.config import load_config
from glacier.training.checkpoints import StopPolicy
from glacier.training.signals import StopPoll, StopRequest

WORKER = Path(__file__).with_name("training_sigterm_worker.py")


class CountingAccelerator:
    """Stands in for N processes: ``reduce`` sums this process's flag with the others'."""

    def __init__(self, num_processes: int, others_flag: float = 0.0) -> None:
        self.num_processes, self.device, self.others_flag, self.reduces = num_processes, "cpu", others_flag, 0

    def reduce(self, value: torch.Tensor, reduction: str) -> torch.Tensor:
        self.reduces += 1
        return value + self.others_flag


def test_several_processes_ask_every_n_steps_one_process_every_step():
    request = StopRequest()
    many = CountingAccelerator(2)
    poll = StopPoll(many, request, every=3)
    assert [poll.after_step() for _ in range(7)] == [False] * 7
    assert many.reduces == 2  # after steps 3 and 6, not 7 times
    request.request("SIGTERM")
    assert [poll.after_step() for _ in range(2)] == [False, True]  # steps 8, 9
    assert poll.now() and poll.reason == "SIGTERM"

    one = CountingAccelerator(1)
    single = StopPoll(one, request, every=3)
    assert single.after_step() and one.reduces == 0  # free on one process: every step


def test_a_signal_on_another_process_stops_this_one_too():
    poll = StopPoll(CountingAccelerator(2, others_flag=1.0), StopRequest(), every=1)
    assert poll.after_step() and poll.reason == "signal"


class OneProcess:
    """The accelerator attributes StopPolicy reads, for one process."""

    num_processes, device, sync_gradients = 1, "cpu", True

    def __init__(self) -> None:
        self.printed: list[str] = []

    def print(self, message: str) -> None:
        self.printed.append(message)


def policy_for(**dotted) -> tuple[StopPolicy, OneProcess]:
    accelerator = OneProcess()
    return StopPolicy(load_config("tiny").updated(**dotted), accelerator), accelerator


def test_policy_keeps_the_best_saves_states_when_due_and_stops_early():
    policy, accelerator = policy_for(
        **{
            "training.epochs": 10,
            "checkpoints.save_every": 3,
            "checkpoints.select": "best",
            "training.early_stopping_patience": 2,
        }
    )
    with policy:
        ends = [policy.end_epoch(epoch, mcc) for epoch, mcc in enumerate([0.5, 0.7, None, 0.6, 0.65])]
    assert [e.keep_best for e in ends] == [True, True, False, False, False]
    assert [e.save_state for e in ends] == [
        False,
        False,
        True,
        False,
        True,
    ]  # every 3rd epoch, and on the stop
    assert [e.stop for e in ends] == [None, None, None, None, "early_stopping"]
    assert (policy.state.best_mcc, policy.state.best_epoch, policy.state.epoch) == (0.7, 2, 5)
    assert policy.stopped_reason == "early_stopping"
    assert "no better validation MCC for 2 validations" in accelerator.printed[-1]


def test_select_last_writes_no_best_model_on_the_way_but_still_counts_patience():
    policy, _ = policy_for(
        **{"training.epochs": 10, "checkpoints.select": "last", "training.early_stopping_patience": 2}
    )
    with policy:
        ends = [policy.end_epoch(epoch, mcc) for epoch, mcc in enumerate([0.5, 0.7, 0.6, 0.65])]
    assert [e.keep_best for e in ends] == [False, False, False, False]  # best/ is the last, at the end
    assert [e.stop for e in ends] == [None, None, None, "early_stopping"]
    assert (policy.state.best_mcc, policy.state.best_epoch) == (0.7, 2)


def test_policy_stops_when_the_next_epoch_would_not_fit_in_max_hours():
    now = [0.0]
    policy = StopPolicy(
        load_config("tiny").updated(**{"training.epochs": 5, "training.max_hours": 1.0}),
        OneProcess(),
        clock=lambda: now[0],
    )
    with policy:
        now[0] = 1500.0  # a 25-minute epoch: a second one fits in the hour
        assert policy.end_epoch(0, None).stop is None
        now[0] = 3000.0  # a third would end after 75 minutes
        end = policy.end_epoch(1, None)
    assert end.stop == "max_hours" and end.save_state and policy.stopped_reason == "max_hours"


@pytest.fixture(scope="module")
def prep(tmp_path_factory):
    return prepared_competition(tmp_path_factory.mktemp("data"))


def test_sigterm_on_one_of_two_processes_stops_both_at_the_same_step(prep, tmp_path):
    run, out = tmp_path / "run", tmp_path / "result"
    done = launch(str(WORKER), str(prep), str(run), str(out))
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]  # no process left waiting
    results = [json.loads(Path(f"{out}.rank{rank}").read_text()) for rank in (0, 1)]
    assert [r["epochs_run"] for r in results] == [0, 0]
    assert results[1]["stopped_reason"] == "SIGTERM"
    # The signal came after step 2; with log_every=3 both processes checked after step 3.
    state = RunFolder(run).latest_state()
    assert state.name == "state_000003"
    assert json.loads((state / "trainer_state.json").read_text())["batch_in_epoch"] == 3
