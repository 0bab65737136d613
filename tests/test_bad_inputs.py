"""Every CLI command over every bad input of issue 11 (outside preprocess and inspect, which
tests/test_bad_inputs_data.py covers): one table, one check.

Each row runs ``glacier ARGV`` in-process and asserts, through
``cli_checks.assert_clean_failure``: the documented exit status, exactly one ``error:``
line naming the culprit, no traceback, and every input file unchanged by hash (no file
added or removed). Rows may also name outputs that must not exist afterwards (nothing
half-written). The inputs are real: sample data from ``glacier sample-data``, a prepared
dataset, a model trained by ``glacier finetune`` (with its states), an ensemble of it, and
the fake Hub of tests/hub_server.py over real HTTP.
"""

from __future__ import annotations

import errno
import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from cli_checks import assert_clean_failure
from training_data import FAST

from tests.test_hub import hub  # noqa: F401 - the fake Hub fixture, used by the Hub rows


@dataclass(frozen=True)
class World:
    """The real inputs every row reads (built once per module)."""

    root: Path
    sample: Path
    prep: Path
    other_prep: Path
    run: Path
    ensemble: Path

    @property
    def test(self) -> Path:
        return self.sample / "competition" / "Test"

    @property
    def labels(self) -> Path:
        return self.sample / "competition" / "Test_labels"

    @property
    def model(self) -> Path:
        return self.run / "best"


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> World:
    from conftest import run_cli

    from glacier.artifacts import EnsembleFolder, EnsembleMember

    root = tmp_path_factory.mktemp("world")
    sample, prep, other, run = root / "sample", root / "prep", root / "prep_2folds", root / "run"
    small = ["--images", "6", "--size", "64", "--test-images", "2", "--hkh-slices", "0", "--hkh-scenes", "0"]
    assert run_cli("sample-data", sample, *small) == 0
    train = sample / "competition" / "Train"
    assert (
        run_cli("preprocess", "competition", train, "--out", prep, "--tile-size", "64", "--folds", "3", "-q")
        == 0
    )
    assert (
        run_cli("preprocess", "competition", train, "--out", other, "--tile-size", "64", "--folds", "2", "-q")
        == 0
    )
    assert run_cli("finetune", "--config", "tiny", "--data", prep, "--out", run, "--epochs", "2", *FAST) == 0
    ensemble = root / "ensemble"
    EnsembleFolder.write(ensemble, [EnsembleMember("m1", run / "best", seed=42, fold=0)])
    return World(root, sample, prep, other, run, ensemble)


# ---------------------------------------------------------------------- set-ups
def _copy_with_json(source: Path, target: Path, name: str, change: Callable[[dict], None]) -> Path:
    shutil.copytree(source, target)
    data = json.loads((target / name).read_text())
    change(data)
    (target / name).write_text(json.dumps(data))
    return target


def bad_version_model(w: World, tmp: Path) -> Path:
    return _copy_with_json(
        w.model, tmp / "bad_version", "config.json", lambda c: c["_glacier"].update(format_version="two")
    )


def member_not_an_object(w: World, tmp: Path) -> Path:
    return _copy_with_json(
        w.ensemble, tmp / "bad_members", "ensemble.json", lambda m: m.update(members=["m1"])
    )


def string_version_ensemble(w: World, tmp: Path) -> Path:
    return _copy_with_json(
        w.ensemble, tmp / "bad_ens", "ensemble.json", lambda m: m.update(format_version="1")
    )


def user_folder(tmp: Path, *names: str) -> Path:
    """A folder holding a user's own files."""
    folder = tmp / "mine"
    folder.mkdir(exist_ok=True)
    for name in names:
        (folder / name).write_text("the user's own file")
    return folder


def a_file(tmp: Path) -> Path:
    path = tmp / "a_file.txt"
    path.write_text("not a folder")
    return path


def hold_lock(w: World, tmp: Path, monkeypatch, request) -> None:
    """Another run holds the run folder's lock while the row runs."""
    from glacier.artifacts.run import RunFolder
    from glacier.training.run_lock import RunLock

    lock = RunLock(RunFolder(w.run))
    assert lock.acquire() is None
    request.addfinalizer(lock.release)


def full_disk_on_mask_write(w: World, tmp: Path, monkeypatch, request) -> None:
    from glacier.predict import scenes

    def no_space(path, *args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(scenes, "write_mask", no_space)


def earlier_prediction_then_a_bad_scene(w: World, tmp: Path, monkeypatch, request) -> None:
    """An earlier prediction in tmp/prev; then the second scene of the next one cannot be read."""
    from conftest import run_cli

    from glacier.errors import DataError
    from glacier.predict import scenes

    assert run_cli("predict", w.model, w.test, "--out", tmp / "prev") == 0
    real, calls = scenes.read_scene_image, []

    def fails_on_the_second(scene):
        calls.append(scene)
        if len(calls) == 2:
            raise DataError(f"{scene.band_paths[0]}: unreadable (a test's broken scene)")
        return real(scene)

    monkeypatch.setattr(scenes, "read_scene_image", fails_on_the_second)


# ---------------------------------------------------------------------- the Hub rows
GOOD_REPO = "alice/good"


def hub_with(kind: str):
    """A set-up that fills the fake Hub for a pull row of ``kind``."""

    def setup(w: World, tmp: Path, monkeypatch, request) -> None:
        from glacier.hub import push_folder

        server = request.getfixturevalue("hub")
        push_folder(w.model, GOOD_REPO)
        files = {}
        if kind == "dots":
            files = {"../escape.txt": b"outside"}
        elif kind == "version":
            config = json.loads((w.model / "config.json").read_text())
            config["_glacier"]["format_version"] = "two"
            files = {"config.json": json.dumps(config).encode()}
        elif kind == "member":
            manifest = {"format": "glacier-ensemble", "format_version": 1, "bands": [], "members": ["m1"]}
            files = {"ensemble.json": json.dumps(manifest).encode()}
        elif kind == "500":
            server.fail("repo_info", 500)
        elif kind == "html":
            server.fail("tree", 200, body=b"<html><body>a captive portal</body></html>")
        elif kind == "html-create":
            server.fail("create-repo", 200, body=b"<html><body>a captive portal</body></html>")
        if files:
            server.put_files(GOOD_REPO, files)

    return setup


# ---------------------------------------------------------------------- the table
@dataclass(frozen=True)
class Row:
    id: str
    argv: Callable[[World, Path], list]
    culprit: str
    inputs: Callable[[World, Path], list] = lambda w, tmp: []
    setup: Callable | None = None
    absent: Callable[[World, Path], list] = lambda w, tmp: []
    """Paths that must not exist afterwards (no half-written output)."""
    code: int = 1
    marks: tuple = field(default_factory=tuple)


def predict_inputs(w: World, tmp: Path) -> list:
    return [w.run, w.test, w.labels]


TRAIN = ["finetune", "--config", "tiny", *FAST]  # no --epochs: it would win over --set training.epochs

ROWS = [
    # predict: outputs into inputs, files predict did not write, damaged artifacts
    Row("predict-out-is-a-band-folder", lambda w, t: ["predict", w.model, w.test, "--out", w.test / "Band1"],
        "Band1", predict_inputs),
    Row("predict-out-is-the-truth", lambda w, t: ["predict", w.model, w.test, "--out", w.labels],
        "Test_labels", predict_inputs),
    Row("predict-out-is-the-input", lambda w, t: ["predict", w.model, w.test, "--out", w.test],
        "is the input", predict_inputs),
    Row("predict-out-holds-the-input", lambda w, t: ["predict", w.model, w.test, "--out", w.sample],
        "contains the input", predict_inputs),
    Row("predict-out-is-the-model's-run", lambda w, t: ["predict", w.model, w.test, "--out", w.run],
        "contains the input", predict_inputs),
    Row("predict-out-inside-the-model", lambda w, t: ["predict", w.run, w.test, "--out", w.model / "masks"],
        "lies inside the input", predict_inputs, absent=lambda w, t: [w.model / "masks"]),
    Row("predict-out-holds-user-files", lambda w, t: ["predict", w.model, w.test, "--out", user_folder(t, "notes.txt")],
        "notes.txt", lambda w, t: [*predict_inputs(w, t), t / "mine"]),
    Row("predict-out-is-a-file", lambda w, t: ["predict", w.model, w.test, "--out", a_file(t)],
        "is a file", lambda w, t: [*predict_inputs(w, t), t / "a_file.txt"]),
    Row("predict-format-version-not-an-integer", lambda w, t: ["predict", bad_version_model(w, t), w.test, "--out", t / "p"],
        "format_version", lambda w, t: [t / "bad_version", w.test], absent=lambda w, t: [t / "p"]),
    Row("predict-ensemble-member-not-an-object", lambda w, t: ["predict", member_not_an_object(w, t), w.test, "--out", t / "p"],
        "member 1 is str", lambda w, t: [t / "bad_members", w.test], absent=lambda w, t: [t / "p"]),
    Row("predict-ensemble-version-a-string", lambda w, t: ["predict", string_version_ensemble(w, t), w.test, "--out", t / "p"],
        "format_version is '1'", lambda w, t: [t / "bad_ens", w.test], absent=lambda w, t: [t / "p"]),
    Row("predict-full-disk", lambda w, t: ["predict", w.model, w.test, "--out", t / "p"],
        "no space left", predict_inputs, setup=full_disk_on_mask_write, absent=lambda w, t: [t / "p"]),
    Row("predict-fails-part-way", lambda w, t: ["predict", w.model, w.test, "--out", t / "prev"],
        "a test's broken scene", lambda w, t: [*predict_inputs(w, t), t / "prev"],
        setup=earlier_prediction_then_a_bad_scene, absent=lambda w, t: list(t.glob(".prev.tmp-*"))),
    Row("predict-device-tpu", lambda w, t: ["predict", w.model, w.test, "--out", t / "p", "--device", "tpu"],
        "--device", predict_inputs, absent=lambda w, t: [t / "p"]),
    # sample-data
    Row("sample-data-overwrite-a-users-folder", lambda w, t: ["sample-data", user_folder(t, "trained_run.txt"), "--overwrite", "--size", "32"],
        "trained_run.txt", lambda w, t: [t / "mine"]),
    Row("sample-data-out-is-a-file", lambda w, t: ["sample-data", a_file(t), "--size", "32"],
        "is a file", lambda w, t: [t / "a_file.txt"]),
    # training: config values, outputs, resume, lock
    Row("finetune-crop-larger-than-tiles", lambda w, t: [*TRAIN, "--data", w.prep, "--out", t / "r", "--set", "data.crop_size=100000"],
        "data.crop_size", lambda w, t: [w.prep], absent=lambda w, t: [t / "r"]),
    Row("finetune-name-with-dots", lambda w, t: [*TRAIN, "--data", w.prep, "--out", t / "r", "--set", "name=../../x"],
        "name", lambda w, t: [w.prep], absent=lambda w, t: [t / "r", t / "x"]),
    Row("finetune-epochs-true", lambda w, t: [*TRAIN, "--data", w.prep, "--out", t / "r", "--set", "training.epochs=true"],
        "training.epochs", lambda w, t: [w.prep], absent=lambda w, t: [t / "r"]),
    Row("finetune-set-invalid-yaml", lambda w, t: [*TRAIN, "--data", w.prep, "--out", t / "r", "--set", "training.epochs=[1"],
        "not a valid YAML value", lambda w, t: [w.prep], absent=lambda w, t: [t / "r"]),
    Row("finetune-unknown-encoder", lambda w, t: [*TRAIN, "--data", w.prep, "--out", t / "r", "--set", "model.encoder=resnt18"],
        "model.encoder 'resnt18'", lambda w, t: [w.prep], absent=lambda w, t: [t / "r"]),
    Row("finetune-out-is-a-file", lambda w, t: [*TRAIN, "--data", w.prep, "--out", a_file(t)],
        "is a file", lambda w, t: [w.prep, t / "a_file.txt"]),
    Row("finetune-out-is-the-data", lambda w, t: [*TRAIN, "--data", w.prep, "--out", w.prep],
        "is the input", lambda w, t: [w.prep]),
    Row("finetune-out-around-init-from", lambda w, t: [*TRAIN, "--data", w.prep, "--out", w.run, "--init-from", w.model],
        "contains the input", lambda w, t: [w.prep, w.run]),
    Row("ensemble-out-is-a-file", lambda w, t: ["ensemble", "--config", "tiny", "--seeds", "1", "--data", w.prep, "--out", a_file(t)],
        "is a file", lambda w, t: [w.prep, t / "a_file.txt"]),
    Row("resume-with-another-fold", lambda w, t: [*TRAIN, "--data", w.prep, "--out", w.run, "--resume", "latest", "--fold", "1"],
        "data.fold 0 -> 1", lambda w, t: [w.prep, w.run]),
    Row("resume-with-other-data", lambda w, t: [*TRAIN, "--data", w.other_prep, "--out", w.run, "--resume", "latest"],
        "data.path", lambda w, t: [w.prep, w.other_prep, w.run]),
    Row("resume-with-another-model", lambda w, t: [*TRAIN, "--data", w.prep, "--out", w.run, "--resume", "latest", "--set", "model.encoder=resnet34"],
        "model.encoder 'mobilenet_v2' -> 'resnet34'", lambda w, t: [w.prep, w.run]),
    Row("resume-while-another-run-trains", lambda w, t: [*TRAIN, "--data", w.prep, "--out", w.run, "--resume", "latest"],
        "is in use: process", lambda w, t: [w.prep], setup=hold_lock),
    # evaluate and export-submission outputs
    Row("evaluate-json-is-a-folder", lambda w, t: ["evaluate", w.labels, w.labels, "--json", t],
        "--json", lambda w, t: [w.labels]),
    Row("evaluate-plots-is-a-file", lambda w, t: ["evaluate", w.labels, w.labels, "--plots", a_file(t)],
        "--plots", lambda w, t: [w.labels, t / "a_file.txt"]),
    Row("evaluate-plots-inside-the-truth", lambda w, t: ["evaluate", w.labels, w.labels, "--plots", w.labels / "plots"],
        "lies inside the input", lambda w, t: [w.labels], absent=lambda w, t: [w.labels / "plots"]),
    Row("export-out-is-the-model", lambda w, t: ["export-submission", w.model, "--out", w.model],
        "is the input", lambda w, t: [w.run]),
    Row("export-out-is-a-file", lambda w, t: ["export-submission", w.model, "--out", a_file(t)],
        "is a file", lambda w, t: [w.run, t / "a_file.txt"]),
    Row("export-out-holds-a-users-solution", lambda w, t: ["export-submission", w.model, "--out", user_folder(t, "solution.py")],
        "solution.py", lambda w, t: [w.run, t / "mine"]),
    # push and pull
    Row("push-invalid-repo-id", lambda w, t: ["push", w.model, "not a repo id!"],
        "not a repo id!", lambda w, t: [w.run]),
    Row("push-hub-answers-html", lambda w, t: ["push", w.model, "alice/new"],
        "not JSON", lambda w, t: [w.run], setup=hub_with("html-create")),
    Row("pull-invalid-repo-id", lambda w, t: ["pull", "not a repo id!", "--out", t / "p"],
        "not a repo id!", absent=lambda w, t: [t / "p"]),
    Row("pull-out-is-a-file", lambda w, t: ["pull", GOOD_REPO, "--out", a_file(t)],
        "is a file", lambda w, t: [t / "a_file.txt"]),
    Row("pull-out-holds-a-users-config", lambda w, t: ["pull", GOOD_REPO, "--out", user_folder(t, "config.json")],
        "config.json, which glacier pull did not write", lambda w, t: [t / "mine"], setup=hub_with("good")),
    Row("pull-file-names-with-dots", lambda w, t: ["pull", GOOD_REPO, "--out", t / "p"],
        "'../escape.txt'", setup=hub_with("dots"), absent=lambda w, t: [t / "p", t / "escape.txt"]),
    Row("pull-format-version-not-an-integer", lambda w, t: ["pull", GOOD_REPO, "--out", t / "p"],
        "format_version", setup=hub_with("version"), absent=lambda w, t: [t / "p"]),
    Row("pull-ensemble-member-not-an-object", lambda w, t: ["pull", GOOD_REPO, "--out", t / "p"],
        "member 1 is str", setup=hub_with("member"), absent=lambda w, t: [t / "p"]),
    Row("pull-http-500", lambda w, t: ["pull", GOOD_REPO, "--out", t / "p"],
        "answered HTTP 500", setup=hub_with("500"), absent=lambda w, t: [t / "p"]),
    Row("pull-hub-answers-html", lambda w, t: ["pull", GOOD_REPO, "--out", t / "p"],
        "not JSON", setup=hub_with("html"), absent=lambda w, t: [t / "p"]),
]  # fmt: skip


@pytest.mark.parametrize("row", ROWS, ids=lambda row: row.id)
def test_bad_input_fails_cleanly(row: Row, world: World, tmp_path, cli, capsys, monkeypatch, request):
    if row.setup is not None:
        row.setup(world, tmp_path, monkeypatch, request)
    argv = row.argv(world, tmp_path)
    capsys.readouterr()  # what the set-up printed
    line = assert_clean_failure(
        cli, capsys, argv, culprit=row.culprit, inputs=row.inputs(world, tmp_path), code=row.code
    )
    left = [str(p) for p in row.absent(world, tmp_path) if Path(p).exists()]
    assert not left, f"left behind: {left} ({line})"
