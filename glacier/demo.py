"""The whole workflow, end to end, on generated sample data: ``glacier demo``.

    report = run_demo("demo_out")                  # ~10 min on 2 CPU cores
    report = run_demo("demo_out", full=True)       # the real workflow's sizes, for a GPU
    print(report.markdown())

Stages, each one library call of the module that owns it (timed, in this order):
sample data -> preprocess (competition + HKH raw scenes) -> pretrain on HKH -> 5-fold
fine-tuning from the pretrained model -> the same folds from scratch -> a seed ensemble
(the CV fold models are seed 1's members; its combination and calibration fitted on the
members' out-of-fold predictions) -> the all-data final models (one per seed the fit kept,
carrying its rule) -> predict the held-out Test scenes with TTA (ensemble and best single
model, each calibrated and not; the all-data ensemble) -> evaluate against Test_labels -> export a
submission of the all-data ensemble (the exporter self-checks it) -> push it to the Hub (only
with ``push_to_hub``).

Every figure in the report is measured in the run; nothing is hard-coded.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable, Collection, Sequence
from pathlib import Path
from typing import Any

from glacier import atomic
from glacier.config import GlacierConfig, load_config
from glacier.errors import GlacierError, ModelError
from glacier.report import DemoReport, StageTiming

NUM_FOLDS = 5


@dataclasses.dataclass(frozen=True)
class DemoSize:
    """How big a demo run is: data, epochs, ensemble."""

    name: str
    images: int
    """Competition-format training images (split into 5 folds by image)."""
    test_images: int
    """Held-out Test scenes (with Test_labels) the ensemble is judged on."""
    image_size: int
    """Side of every sample image, in pixels."""
    hkh_slices: int
    """HKH-format slices (LILA .npy layout); 0: pretraining reads the raw scenes."""
    hkh_slice_size: int
    hkh_scenes: int
    """Raw HKH-format scenes (Landsat 7 GeoTIFF + label polygons): what pretraining reads, as
    the Kaggle scripts do (the slices do not fit a Kaggle disk)."""
    tile_size: int
    """Tile size of both prepared datasets."""
    pretrain_epochs: int
    finetune_epochs: int
    samples_per_epoch: int | None
    crop_size: int
    extra_seeds: int
    """Seeds trained on top of the CV fold models (which are the ensemble's first seed)."""
    pretrain_config: str
    finetune_config: str
    batch_size: int | None = None
    tta: str = "flip"
    hkh_scene_shape: tuple[int, int] = (260, 300)
    submission_timing: bool = True
    """Time the exported submission on full 512 px tiles and project the platform's 25-tile run
    (at the smoke size, CI's, the ten members' 120 forward passes would be most of the run)."""


SIZES: dict[str, DemoSize] = {
    # CI: the smallest run that still goes through every stage.
    "smoke": DemoSize(
        "smoke",
        images=10,
        test_images=2,
        image_size=64,
        hkh_slices=0,
        hkh_slice_size=64,
        hkh_scenes=2,
        tile_size=64,
        pretrain_epochs=2,
        finetune_epochs=2,
        samples_per_epoch=16,
        crop_size=48,
        extra_seeds=1,
        pretrain_config="tiny",
        finetune_config="tiny",
        hkh_scene_shape=(128, 128),
        submission_timing=False,
    ),
    # The user demo: about 10 minutes on 2 CPU cores, and the models learn something.
    "default": DemoSize(
        "default",
        images=25,
        # The ensemble-vs-best-member comparison is about 0.01 MCC: five 128 px scenes (82k
        # pixels, a third of one real 512 px tile) are too few to judge it; twenty cost ~20 s.
        test_images=20,
        image_size=128,
        hkh_slices=0,
        hkh_slice_size=128,
        hkh_scenes=6,
        tile_size=128,
        pretrain_epochs=8,
        # 144 optimizer steps. At 6 epochs (72 steps) whether a fold model learnt debris at all
        # was a coin toss (held-out debris IoU 0.00-0.34 over the models compared); at 12 every
        # one does (0.37-0.50) and held-out MCC rose by 0.05-0.12 (docs/benchmarks.md).
        finetune_epochs=12,
        samples_per_epoch=48,
        crop_size=96,
        extra_seeds=1,
        pretrain_config="tiny",
        finetune_config="tiny",
    ),
    # The real workflow's sizes, for a GPU: the packaged presets, 512 px, 25 images.
    "full": DemoSize(
        "full",
        images=25,
        test_images=5,
        image_size=512,
        hkh_slices=0,
        hkh_slice_size=512,
        hkh_scenes=10,
        tile_size=512,
        pretrain_epochs=40,
        finetune_epochs=60,
        samples_per_epoch=None,
        crop_size=384,
        extra_seeds=1,
        pretrain_config="hkh_pretrain",
        finetune_config="competition_finetune",
        hkh_scene_shape=(1024, 1024),
    ),
}


@dataclasses.dataclass
class DemoPaths:
    """Where every stage writes, under the demo's output folder."""

    root: Path

    @property
    def data(self) -> Path:
        return self.root / "sample_data"

    @property
    def competition(self) -> Path:
        return self.data / "competition"

    @property
    def hkh(self) -> Path:
        return self.data / "hkh"

    @property
    def prepared(self) -> Path:
        return self.root / "prepared"

    @property
    def runs(self) -> Path:
        return self.root / "runs"

    @property
    def pretrain(self) -> Path:
        return self.runs / "hkh_pretrain"

    @property
    def cv_pretrained(self) -> Path:
        return self.runs / "cv_pretrained"

    @property
    def cv_scratch(self) -> Path:
        return self.runs / "cv_scratch"

    @property
    def ensemble(self) -> Path:
        return self.root / "ensemble"

    @property
    def all_data(self) -> Path:
        return self.root / "all_data_ensemble"

    @property
    def predictions(self) -> Path:
        return self.root / "predictions"

    @property
    def evaluation(self) -> Path:
        return self.root / "evaluation"

    @property
    def submission(self) -> Path:
        return self.root / "submission"


@dataclasses.dataclass
class DemoContext:
    """What the stages share: sizes, paths, seed, and the results so far."""

    size: DemoSize
    paths: DemoPaths
    seed: int
    push_to_hub: str | None
    config_overrides: tuple[str, ...] = ()
    """``key=value`` changes (``--set`` syntax) to every preset the demo loads."""
    results: dict[str, Any] = dataclasses.field(default_factory=dict)
    outputs: dict[str, Path] = dataclasses.field(default_factory=dict)
    cv_runs: dict[str, dict[int, Any]] = dataclasses.field(default_factory=dict)
    """key -> {fold: RunResult} of each cross-validation."""

    def config(self, preset: str, **dotted: Any) -> GlacierConfig:
        """The size's preset with ``config_overrides``, then the demo's epochs, crop and
        sampling applied (the demo's sizes win where both set a key)."""
        cfg = load_config(preset, self.config_overrides, seed=self.seed, batch_size=self.size.batch_size)
        # One resumable state per run is enough for a demo: it keeps ~20 runs' disk use small.
        overrides: dict[str, Any] = {
            "data.crop_size": self.size.crop_size,
            "data.num_workers": 0,
            "checkpoints.keep_last": 1,
        }
        if self.size.samples_per_epoch is not None:
            overrides["training.sampler.samples_per_epoch"] = self.size.samples_per_epoch
        overrides.update(dotted)
        return cfg.updated(**overrides)


def stage_sample_data(ctx: DemoContext) -> str:
    from glacier.sampledata import generate_sample_data

    s = ctx.size
    generate_sample_data(
        ctx.paths.data,
        images=s.images,
        size=s.image_size,
        seed=ctx.seed,
        test_images=s.test_images,
        hkh_slices=s.hkh_slices,
        hkh_slice_size=s.hkh_slice_size,
        hkh_scenes=s.hkh_scenes,
        hkh_scene_shape=s.hkh_scene_shape,
    )
    ctx.outputs["sample data"] = ctx.paths.data
    scene = " x ".join(map(str, s.hkh_scene_shape))
    return (
        f"{s.images} training + {s.test_images} held-out test images of {s.image_size} px; "
        f"HKH: {s.hkh_scenes} raw scenes of {scene} px, {s.hkh_slices} slices -> {ctx.paths.data}"
    )


def stage_preprocess(ctx: DemoContext) -> str:
    from glacier.data.prepare import PrepareOptions, prepare_competition, prepare_hkh

    options = PrepareOptions(tile_size=ctx.size.tile_size, num_folds=NUM_FOLDS, seed=ctx.seed)
    competition = prepare_competition(
        ctx.paths.competition / "Train", ctx.paths.prepared / "competition", options, progress=False
    )
    # The Kaggle scripts' route: raw scenes + label polygons. A scene is a fold group;
    # pretraining validates on fold 0.
    hkh_options = dataclasses.replace(options, num_folds=min(NUM_FOLDS, ctx.size.hkh_scenes))
    hkh = prepare_hkh(ctx.paths.hkh, ctx.paths.prepared / "hkh", options=hkh_options, progress=False)
    ctx.results["prepared"] = {
        "competition": competition.num_tiles,
        "hkh": hkh.num_tiles,
        "fill": {"competition": competition.fill_fraction, "hkh": hkh.fill_fraction},
    }
    return (
        f"competition: {competition.num_tiles} tiles, {100 * competition.fill_fraction:.1f}% fill; "
        f"HKH (raw scenes): {hkh.num_tiles} tiles, {100 * hkh.fill_fraction:.1f}% fill"
    )


def stage_pretrain(ctx: DemoContext) -> str:
    from glacier.training.workflows import pretrain

    cfg = ctx.config(
        ctx.size.pretrain_config,
        **{
            "name": "demo_hkh_pretrain",
            "out": str(ctx.paths.pretrain),
            "data.path": str(ctx.paths.prepared / "hkh"),
            "training.epochs": ctx.size.pretrain_epochs,
        },
    )
    ctx.results.setdefault("recipe", {})["pretrain"] = _recipe(ctx.size.pretrain_config, cfg)
    result = pretrain(cfg)
    mcc = _mcc(result.best_metrics)
    ctx.results["pretrain"] = {"best_dir": str(result.best_dir), "mcc": mcc}
    ctx.outputs["pretrained model"] = result.best_dir
    return f"pretrained on HKH: validation MCC {mcc:.3f} -> {result.best_dir}"


def _finetune_config(ctx: DemoContext, name: str) -> GlacierConfig:
    return ctx.config(
        ctx.size.finetune_config,
        **{
            "name": name,
            "data.path": str(ctx.paths.prepared / "competition"),
            "training.epochs": ctx.size.finetune_epochs,
            # The presets point at the real workflow's pretrained model; the demo passes its own.
            "model.init_from": None,
        },
    )


def _cross_validate(ctx: DemoContext, key: str, out: Path, init_from: str | None) -> str:
    from glacier.training.cv import run_cross_validation

    cfg = _finetune_config(ctx, f"demo_{key}")
    if init_from is not None:  # the recipe every ensemble member trains with (not the scratch arm's)
        started = cfg.updated(**{"model.init_from": str(init_from)})
        ctx.results.setdefault("recipe", {})["finetune"] = _recipe(ctx.size.finetune_config, started)
    cv = run_cross_validation(cfg, init_from=init_from, out=out, print_fn=_quiet)
    if not cv.finished:
        raise GlacierError(f"demo: cross-validation in {out} did not finish")
    ctx.results[key] = {"summary": cv.summary, "runs": {k: str(r.best_dir) for k, r in cv.folds.items()}}
    ctx.cv_runs[key] = cv.folds
    ctx.outputs[f"CV folds ({key.removeprefix('cv_')})"] = out
    summary = cv.summary
    return (
        f"{summary['num_folds']} folds, CV MCC {summary['mean']['mcc']:.3f} +/- {summary['std']['mcc']:.3f} "
        f"-> {out / 'cv_summary.md'}"
    )


def stage_finetune_cv(ctx: DemoContext) -> str:
    return _cross_validate(ctx, "cv_pretrained", ctx.paths.cv_pretrained, ctx.results["pretrain"]["best_dir"])


def stage_scratch_cv(ctx: DemoContext) -> str:
    return _cross_validate(ctx, "cv_scratch", ctx.paths.cv_scratch, None)


def stage_ensemble(ctx: DemoContext) -> str:
    """Seed ensemble: the pretrained CV fold models are seed 1; more seeds train the same folds.
    How the members are combined and calibrated is fitted on their out-of-fold predictions."""
    from glacier.artifacts import EnsembleFolder, EnsembleMember
    from glacier.decisions.fitting import MemberRun, decide_ensemble
    from glacier.training.ensemble import member_name, train_ensemble

    members = [
        EnsembleMember(member_name(ctx.seed, k), r.best_dir, seed=ctx.seed, fold=k, metrics=r.best_metrics)
        for k, r in sorted(ctx.cv_runs["cv_pretrained"].items())
    ]
    runs = {member_name(ctx.seed, k): r.out for k, r in ctx.cv_runs["cv_pretrained"].items()}
    seeds = [ctx.seed + 1 + i for i in range(ctx.size.extra_seeds)]
    folds = sorted(ctx.cv_runs["cv_pretrained"])
    if seeds:
        extra = train_ensemble(
            _finetune_config(ctx, "demo_ensemble"),
            seeds=seeds,
            folds=folds,
            out=ctx.paths.runs / "extra_seeds",
            init_from=ctx.results["pretrain"]["best_dir"],
            print_fn=_quiet,
            fit_decisions=False,  # fitted below, on these members and the CV folds' together
        )
        if not extra.finished:
            raise GlacierError("demo: the extra ensemble seeds did not finish")
        for seed in seeds:
            for k in folds:
                r = extra.members[member_name(seed, k)]
                members.append(
                    EnsembleMember(
                        member_name(seed, k), r.best_dir, seed=seed, fold=k, metrics=r.best_metrics
                    )
                )
                runs[member_name(seed, k)] = r.out
    decisions = decide_ensemble(
        [MemberRun(m.name, m.seed, m.fold, runs[m.name]) for m in members], print_fn=_quiet
    )
    EnsembleFolder.write(
        ctx.paths.ensemble, members, extra={"demo": {"seeds": [ctx.seed, *seeds]}, **decisions}
    )
    ctx.results["ensemble"] = {
        "members": [m.name for m in members],
        "oof": decisions["oof"],
        "calibration": decisions["calibration"],
    }
    ctx.outputs["ensemble"] = ctx.paths.ensemble
    return f"{len(members)} members ({len(seeds) + 1} seeds x {len(ctx.cv_runs['cv_pretrained'])} folds) -> {ctx.paths.ensemble}"


def stage_all_data(ctx: DemoContext) -> str:
    """The final models: one per seed the ensemble's OOF fit kept, trained on every image for
    the length cross-validation chose, carrying the ensemble's rule. Each test pixel then gets
    what each OOF pixel got, one model per seed, so the rule meets the kind of prediction it
    was fitted on (a fold ensemble averages five models per seed, the OOF never does)."""
    from glacier.training.all_data import CvSource, kept_seeds, train_all_data_ensemble

    seeds = kept_seeds(CvSource.open(ctx.paths.ensemble))
    final = train_all_data_ensemble(
        _finetune_config(ctx, "demo_all_data"),
        seeds=seeds,
        from_cv=ctx.paths.ensemble,
        out=ctx.paths.all_data,
        init_from=ctx.results["pretrain"]["best_dir"],
        print_fn=_quiet,
    )
    if not final.finished:
        raise GlacierError("demo: the all-data ensemble did not finish")
    ctx.results["all_data"] = {"seeds": seeds, "members": sorted(final.members)}
    ctx.outputs["all-data ensemble"] = ctx.paths.all_data
    return f"{len(seeds)} all-data models (seeds {', '.join(map(str, seeds))}) -> {ctx.paths.all_data}"


def _best_single(ctx: DemoContext) -> tuple[str, Path]:
    """The fine-tuned fold model with the highest validation MCC (the ensemble's rival)."""
    runs = ctx.cv_runs["cv_pretrained"]
    fold = max(runs, key=lambda k: _mcc(runs[k].best_metrics))
    return f"best single model (fold {fold}, val MCC {_mcc(runs[fold].best_metrics):.3f})", runs[
        fold
    ].best_dir


def stage_predict(ctx: DemoContext) -> str:
    from glacier.predict import predict_folder

    test = ctx.paths.competition / "Test"
    name, single = _best_single(ctx)
    ctx.results["predict"] = {}
    variants = [
        ("ensemble", ctx.paths.ensemble, "ensemble, calibrated", True),
        ("ensemble_uncalibrated", ctx.paths.ensemble, "ensemble, uncalibrated (argmax of the mean)", False),
        ("best_single", single, name, False),
        ("best_single_calibrated", single, f"{name}, calibrated", True),
    ]
    if "all_data" in ctx.results:
        seeds = len(ctx.results["all_data"]["seeds"])
        variants.append(
            ("all_data", ctx.paths.all_data, f"all-data ensemble ({seeds} seeds), calibrated", True)
        )
    for key, model, label, calibrated in variants:
        summary = predict_folder(
            model,
            test,
            ctx.paths.predictions / key,
            tta=ctx.size.tta,
            device="auto",
            tile_size=ctx.size.tile_size,
            progress=False,
            calibration=calibrated,
        )
        ctx.results["predict"][key] = {"name": label, "model": str(model), **_plain(summary)}
    shipped = _shipped_key(ctx)
    ctx.outputs[f"masks ({shipped})"] = ctx.paths.predictions / shipped
    ens = ctx.results["predict"]["ensemble"]
    return (
        f"{ens['scenes']} test scenes, TTA {ctx.size.tta}, {ens['members']} members: "
        f"{ens['seconds']:.1f} s (ensemble) -> {ctx.paths.predictions}"
    )


def stage_evaluate(ctx: DemoContext) -> str:
    from glacier.evaluation import evaluate_folders

    truth = ctx.paths.competition / "Test_labels"
    ctx.results["test"] = {}
    for key, entry in ctx.results["predict"].items():
        result = evaluate_folders(
            ctx.paths.predictions / key,
            truth,
            plots_dir=ctx.paths.evaluation / key,
            json_path=ctx.paths.evaluation / key / "metrics.json",
        )
        ctx.results["test"][key] = {
            "name": entry["name"],
            "mcc": result["mcc"],
            "iou": result["iou"],
            "calibration": entry.get("calibration"),
        }
    shipped = _shipped_key(ctx)  # the pictures of what ships
    ctx.outputs[f"confusion matrix ({shipped})"] = ctx.paths.evaluation / shipped / "confusion.png"
    ctx.outputs[f"overlay PNGs ({shipped}: prediction vs truth)"] = ctx.paths.evaluation / shipped
    test = ctx.results["test"]
    return (
        f"test MCC: ensemble {test['ensemble']['mcc']:.3f} calibrated, "
        f"{test['ensemble_uncalibrated']['mcc']:.3f} uncalibrated; best single model "
        f"{test['best_single']['mcc']:.3f} ({test['best_single_calibrated']['mcc']:.3f} calibrated)"
    )


def stage_submission(ctx: DemoContext) -> str:
    from glacier.submission import export_submission
    from glacier.submission.export import shipped_models_words
    from glacier.submission.selfcheck import MAX_MISMATCH_FRACTION, PROJECTION_TILES, TIMING_TILE_SIZE

    # The exporter runs solution.py in a subprocess, as the platform does, and compares its
    # masks with glacier's predictor; a failed check raises and writes nothing. The report
    # shows the failure, and `glacier demo` exits 1 after writing it.
    try:
        report = export_submission(
            _shipped(ctx),
            ctx.paths.submission,
            tta="flip" if ctx.size.tta != "none" else "none",
            check_input=ctx.paths.competition / "Test",
            timing=ctx.size.submission_timing,
        )
    except ModelError as exc:
        ctx.results["submission"] = {"passed": False, "summary": str(exc)}
        return f"self-check FAILED: {exc}"
    projected = report.get(f"projected_seconds_{PROJECTION_TILES}_tiles")  # None when not timed
    passed = report["mismatch_fraction"] <= MAX_MISMATCH_FRACTION
    ctx.results["submission"] = {
        "passed": passed,
        "summary": (
            f"solution.py on {report['check_tiles']} test tiles {'matches' if passed else 'differs from'} "
            f"glacier predict (mismatch {report['mismatch_fraction']:.1e}); model.pth {report['size_mb']} MB, "
            f"{shipped_models_words(report)}, {report['weights_dtype']}"
        ),
        "projected_seconds": projected,
        "projection_basis": (
            f"{PROJECTION_TILES} tiles of {TIMING_TILE_SIZE} px on this machine's CPU"
            if projected is not None
            else f"not timed at the {ctx.size.name} size"
        ),
        **_plain(report),
    }
    ctx.outputs["submission"] = ctx.paths.submission
    verdict = "passed" if passed else "FAILED"
    timing = (
        f"projected {projected:.1f} s for {PROJECTION_TILES} tiles" if projected is not None else "not timed"
    )
    return f"self-check {verdict}; {timing} -> {ctx.paths.submission}"


def stage_push(ctx: DemoContext) -> str:
    from glacier.hub.push import push_folder

    url = push_folder(_shipped(ctx), ctx.push_to_hub)
    ctx.results["push"] = {"repo_id": ctx.push_to_hub, "url": url}
    return f"pushed {_shipped(ctx).name} to {ctx.push_to_hub}: {url}"


def _shipped(ctx: DemoContext) -> Path:
    """What the demo exports and pushes: the all-data final models when they were trained
    (docs/workflow.md: their rule meets the kind of prediction it was fitted on), else the
    fold ensemble."""
    return ctx.paths.all_data if _shipped_key(ctx) == "all_data" else ctx.paths.ensemble


def _shipped_key(ctx: DemoContext) -> str:
    """The test variant (``predictions/<key>``, ``evaluation/<key>``) of ``_shipped``: the one
    place that decides what ships."""
    return "all_data" if "all_data" in ctx.results else "ensemble"


STAGES: list[tuple[str, Callable[[DemoContext], str]]] = [
    ("sample data", stage_sample_data),
    ("preprocess", stage_preprocess),
    ("pretrain (HKH)", stage_pretrain),
    ("fine-tune CV (pretrained)", stage_finetune_cv),
    ("fine-tune CV (scratch)", stage_scratch_cv),
    ("seed ensemble", stage_ensemble),
    ("all-data ensemble", stage_all_data),
    ("predict test (TTA)", stage_predict),
    ("evaluate", stage_evaluate),
    ("export submission", stage_submission),
    ("push to Hub", stage_push),
]


def _quiet(message: str) -> None:
    """Progress lines of the training engine are kept short in the demo's output."""
    print(f"   {message.splitlines()[0]}")


def _recipe(preset: str, cfg: GlacierConfig) -> str:
    """The preset, what ``cfg`` (the demo's version of it) trains with, and its length."""
    from glacier.training.recipe import recipe_line

    training = cfg.training
    samples = training.sampler.samples_per_epoch
    length = f"{training.epochs} epochs" + (f" of {samples} samples" if samples else " of every tile")
    return f"`{preset}`: {recipe_line(cfg)}; {length}"


def _plain(data: dict[str, Any]) -> dict[str, Any]:
    """JSON-safe copy (paths and numpy scalars become plain values)."""
    return json.loads(json.dumps(data, default=lambda v: v.item() if hasattr(v, "item") else str(v)))


def _mcc(metrics: dict[str, Any] | None) -> float:
    return float((metrics or {}).get("mcc", float("nan")))


# ------------------------------------------------------------------------------ main
def run_demo(
    out: str | Path,
    full: bool = False,
    push_to_hub: str | None = None,
    seed: int = 0,
    size: str | None = None,
    log: Callable[[str], None] = print,
    skip: Collection[str] = (),
    test_images: int | None = None,
    extra_seeds: int | None = None,
    config_overrides: Sequence[str] = (),
    finetune_epochs: int | None = None,
) -> DemoReport:
    """Run the whole workflow on generated sample data in ``out``; write and return its report.

    ``full`` uses the real workflow's sizes (for a GPU); ``size`` picks one of ``SIZES``
    by name (``smoke`` for CI) and wins over ``full``. ``push_to_hub`` (a repo id) pushes the
    ensemble at the end. ``skip`` names stages (titles in ``STAGES``) a benchmark does not
    need; later stages must not depend on them. ``test_images`` overrides the size's count of
    held-out scenes (the first ones are the same whatever the count, and training data does
    not change); ``extra_seeds`` the count of seeds trained beside the CV's for the ensemble;
    ``finetune_epochs`` the fine-tuning length of every model (the demo's sizes win over
    ``config_overrides``, so a benchmark that varies training length sets it here).
    ``config_overrides`` (``key=value``, as ``--set``) change the recipe of every training
    stage, for benchmarks that compare recipes on the same demo.
    The report is written to ``out/report.md`` and ``out/report.json``.
    """
    name = size or ("full" if full else "default")
    if name not in SIZES:
        raise GlacierError(f"demo size {name!r} is not one of {', '.join(SIZES)}")
    demo_size = SIZES[name]
    overrides = {"test_images": test_images, "extra_seeds": extra_seeds, "finetune_epochs": finetune_epochs}
    overrides = {field: value for field, value in overrides.items() if value is not None}
    for field, value in overrides.items():
        if value < 1:
            raise GlacierError(f"demo: {field} must be at least 1, got {value}")
    demo_size = dataclasses.replace(demo_size, **overrides)
    config_overrides = tuple(config_overrides)
    for preset in {demo_size.pretrain_config, demo_size.finetune_config}:
        load_config(preset, config_overrides)  # a bad key fails here, before any output
    root = Path(out)
    if root.exists() and (not root.is_dir() or any(root.iterdir())):
        raise GlacierError(f"{root}: exists and is not empty; choose a new --out folder (or delete it)")
    root.mkdir(parents=True, exist_ok=True)
    ctx = DemoContext(demo_size, DemoPaths(root), seed, push_to_hub, config_overrides)

    timings: list[StageTiming] = []
    start = time.perf_counter()
    for title, stage in STAGES:
        if (stage is stage_push and not push_to_hub) or title in skip:
            continue
        log(f"== {title}")
        t0 = time.perf_counter()
        message = stage(ctx)
        timings.append(StageTiming(title, time.perf_counter() - t0))
        log(f"   {message} ({timings[-1].seconds:.1f} s)")
    ctx.results["outputs"] = {name: str(path) for name, path in ctx.outputs.items()}
    report = DemoReport.from_results(
        ctx.results,
        size=dataclasses.asdict(ctx.size),
        seed=seed,
        out=root,
        timings=timings,
        total_seconds=time.perf_counter() - start,
    )
    atomic.write_text(root / "report.md", report.markdown())
    atomic.write_json(root / "report.json", json.loads(json.dumps(report.to_dict())))
    return report
