"""Quality benchmark: glacier's recipe against two strong baselines on held-out scenes.

    python benchmarks/quality.py                  # the issue-13 size, one seed (about 10 min alone on 2 cores)
    python benchmarks/quality.py --seeds 42,43,44 # the verdict: every arm per seed, judged on the means
    python benchmarks/quality.py --quick          # a couple of minutes: a smoke check, not a verdict
    python benchmarks/quality.py --arms glacier --set training.loss.dice_weight=0

Data: ``glacier sample-data`` writes the training scenes (``--train-seed``) and, in a second
call with another seed (``--test-seed``), the held-out scenes, which the generator draws from
its *test region* (brighter, other sun angles, warmer, more snow: see
glacier/sampledata/regions.py). The training scenes go through ``glacier preprocess``; the
held-out scenes are read as GeoTIFFs with their ``Test_labels``, as a user would.

Arms, trained on the same prepared training scenes and bands, one after the other in this
process's run so that machine load hits them alike:

- **glacier**: the shipped recipe through the real CLI (``glacier finetune --config PRESET``
  on all training scenes), its saved model predicted with ``glacier.predict.Predictor`` and
  the decision rule the model folder carries (the sampler-prior correction);
- **unet**: a plain smp U-Net (resnet18, full depth) with cross-entropy, a uniform sampler,
  flips/rotations only, Adam at a constant rate, the same optimizer steps, batch and crop;
- **hgb**: sklearn's HistGradientBoostingClassifier per pixel over the normalised bands.

Scores: sklearn's multiclass ``matthews_corrcoef`` over every held-out pixel pooled (as the
competition computes it), per-class IoU, debris recall, and seconds (wall and CPU of the
arm's process) next to the load average, since the machine may be shared.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

QUICK = {"train_images": 8, "test_images": 4, "size": 128, "steps": 40, "hgb_iter": 60}


@dataclass
class ArmResult:
    name: str
    truth: list = field(repr=False)
    pred: list = field(repr=False)
    wall_s: float
    cpu_s: float
    budget: str
    seed: int = 0


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train-images", type=int, default=12)
    parser.add_argument("--test-images", type=int, default=4)
    parser.add_argument("--size", type=int, default=160, help="Scene side in px (train and test).")
    parser.add_argument("--train-seed", type=int, default=1)
    parser.add_argument("--test-seed", type=int, default=2)
    parser.add_argument("--seeds", default="42", help="Training seeds, comma-separated: every arm "
                        "trains once per seed, and the goal is judged on the means (one seed's "
                        "difference between two networks is mostly its initialisation).")  # fmt: skip
    parser.add_argument("--preset", default="small", help="glacier config of the glacier arm.")
    parser.add_argument("--steps", type=int, default=None, help="Optimizer steps of both networks "
                        "(default: the preset's budget).")  # fmt: skip
    parser.add_argument("--batch-size", type=int, default=None, help="unet arm (default: the preset's).")
    parser.add_argument("--crop", type=int, default=None, help="unet arm crop (default: the preset's).")
    parser.add_argument("--unet-lr", type=float, default=1e-3)
    parser.add_argument("--hgb-iter", type=int, default=200)
    parser.add_argument("--arms", default="glacier,unet,hgb")
    parser.add_argument("--set", dest="overrides", action="append", default=[],
                        help="Extra --set for the glacier arm (repeatable).")  # fmt: skip
    parser.add_argument("--threads", type=int, default=2, help="CPU threads of every arm.")
    parser.add_argument("--workdir", type=Path, default=None, help="Keep data and runs here.")
    parser.add_argument("--quick", action="store_true", help=f"Small sizes: {QUICK}.")
    args = parser.parse_args(argv)
    if args.quick:
        defaults = parser.parse_args([])
        for key, value in QUICK.items():
            if getattr(args, key) == getattr(defaults, key):
                setattr(args, key, value)
    return args


def glacier_cli(*argv: str, log: Path | None = None) -> None:
    """Run ``python -m glacier ...`` (the real CLI) in a child process; fail loudly."""
    command = [sys.executable, "-m", "glacier", *argv]
    if log is None:
        done = subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    else:
        with open(log, "w") as out:
            done = subprocess.run(command, stdout=out, stderr=subprocess.STDOUT)
    if done.returncode != 0:
        tail = log.read_text()[-3000:] if log else ""
        raise SystemExit(f"glacier {' '.join(argv)} failed ({done.returncode})\n{tail}")


def make_data(args: argparse.Namespace, root: Path) -> tuple[Path, Path]:
    """Training scenes -> a prepared dataset; held-out scenes (test region, other seed) -> a folder.
    A ``--workdir`` that holds both from an earlier run with the same data options is reused."""
    prep, test_root = root / "prep", root / "test_data" / "competition"
    made = root / "data_options.txt"
    options = f"{args.train_images} {args.test_images} {args.size} {args.train_seed} {args.test_seed}"
    if made.exists() and made.read_text().strip() == options and prep.exists() and test_root.exists():
        print(f"data: reusing {prep} and {test_root}", flush=True)
        return prep, test_root
    glacier_cli("sample-data", str(root / "train_data"), "--images", str(args.train_images), "--size",
                str(args.size), "--seed", str(args.train_seed), "--test-images", "0", "--hkh-slices", "0",
                "--hkh-scenes", "0")  # fmt: skip
    glacier_cli("sample-data", str(root / "test_data"), "--images", "1", "--size", str(args.size),
                "--seed", str(args.test_seed), "--test-images", str(args.test_images), "--hkh-slices", "0",
                "--hkh-scenes", "0")  # fmt: skip
    glacier_cli("preprocess", "competition", str(root / "train_data" / "competition" / "Train"), "--out",
                str(prep), "--tile-size", str(args.size), "-q")  # fmt: skip
    made.write_text(options)
    return prep, test_root


def held_out_scenes(test_root: Path):
    """(raw image (C, H, W), truth (H, W) class indices) of every held-out scene."""
    from glacier.data.competition import find_scenes, read_scene_image
    from glacier.data.raster import read_single_band
    from glacier.domain import encoded_to_index

    scenes = []
    for scene in find_scenes(test_root / "Test", require_labels=False):
        image, _ = read_scene_image(scene)
        label_path = next((test_root / "Test_labels").glob(f"*{scene.tile_id}.tif"))
        scenes.append((image, encoded_to_index(read_single_band(label_path)[0], source=str(label_path))))
    return scenes


class Clock:
    """Wall and CPU seconds of this process and its children since it was made."""

    def __init__(self) -> None:
        self.wall, self.cpu = time.perf_counter(), self._cpu()

    @staticmethod
    def _cpu() -> float:
        own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
        return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime

    def read(self) -> tuple[float, float]:
        return time.perf_counter() - self.wall, self._cpu() - self.cpu


def preset_training(args: argparse.Namespace, num_tiles: int):
    """The glacier arm's config and its optimizer steps on ``num_tiles`` training tiles
    (``--steps`` when given, else the preset's budget, else its epochs' worth)."""
    import math

    from glacier.config import load_config

    cfg = load_config(args.preset, args.overrides)
    steps = args.steps or cfg.training.steps
    if cfg.training.epochs is not None and not args.steps:
        per_epoch = math.ceil((cfg.training.sampler.samples_per_epoch or num_tiles) / cfg.training.batch_size)
        steps = cfg.training.epochs * per_epoch
    return cfg, steps


# ------------------------------------------------------------------------------ arms
def run_glacier(args: argparse.Namespace, prep: Path, root: Path, scenes, seed: int) -> ArmResult:
    """The shipped recipe through ``glacier finetune``, trained on every training scene."""

    from glacier.data.prepared import PreparedDataset
    from glacier.decisions.loading import calibrated_models
    from glacier.predict import Predictor

    # A fresh run folder per call, so a reused --workdir keeps every earlier run.
    run_dir = Path(tempfile.mkdtemp(prefix="glacier_run_", dir=root))
    log = run_dir.with_suffix(".log")
    sets = ["data.use_all_for_training=true", *args.overrides]
    if args.steps:
        sets += [f"training.steps={args.steps}", "training.epochs=null"]
    clock = Clock()
    glacier_cli("finetune", "--config", args.preset, "--data", str(prep), "--out", str(run_dir),
                "--seed", str(seed), *(a for s in sets for a in ("--set", s)),
                log=log)  # fmt: skip
    wall, cpu = clock.read()
    print("  " + "\n  ".join(line for line in log.read_text().splitlines()
                             if line.startswith(("training ", "length:", "sampler", "completed"))))  # fmt: skip
    # With the decision rule the model folder carries, as `glacier predict` applies it (the
    # sampler-prior correction, unless --set training.sampler.prior_correction=false), but
    # without its "fill is background" step, which the baselines do not get either.
    chosen = calibrated_models(run_dir / "best")
    print(f"  decision rule: {chosen.describe()}")
    predictor = Predictor(chosen.models, tta="none", device="cpu", tile_size=None,
                          calibration=chosen.calibration)  # fmt: skip
    probs = [predictor.predict_probabilities(image) for image, _ in scenes]
    preds = [predictor.decide(p) for p in probs]
    truth = [t for _, t in scenes]
    if chosen.calibration is not None:  # the same weights without the rule, side by side
        plain = score(ArmResult("argmax", truth, [p.argmax(0) for p in probs], 0.0, 0.0, ""))
        print(
            f"  same model by plain argmax: MCC {plain['mcc']:.4f}, debris recall {plain['debris_recall']:.3f}"
        )
    budget = run_budget(run_dir, len(PreparedDataset.open(prep)))
    return ArmResult("glacier " + args.preset, truth, preds, wall, cpu, budget)


def run_budget(run_dir: Path, num_tiles: int) -> str:
    """Optimizer steps run (epochs x steps per epoch), batch and crop, from the run folder."""
    import math

    import yaml

    cfg = yaml.safe_load((run_dir / "config.yaml").read_text())
    training = cfg["training"]
    samples = training["sampler"]["samples_per_epoch"] or num_tiles
    steps = training["epochs"] * math.ceil(samples / training["batch_size"])
    return f"{steps} steps x {training['batch_size']} x {cfg['data']['crop_size']} px"


def run_unet(args: argparse.Namespace, prep: Path, scenes, seed: int) -> ArmResult:
    """A plain smp U-Net (resnet18, full depth), cross-entropy, uniform random crops."""
    import numpy as np
    import segmentation_models_pytorch as smp
    import torch

    from glacier.data.prepared import PreparedDataset
    from glacier.normalization import normalize

    prepared = PreparedDataset.open(prep)
    cfg, steps = preset_training(args, len(prepared))
    batch, crop = args.batch_size or cfg.training.batch_size, args.crop or cfg.data.crop_size
    images = normalised_tiles(prepared)
    masks = np.asarray(prepared.masks).astype(np.int64)
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    net = smp.Unet("resnet18", encoder_weights=None, in_channels=images.shape[1], classes=4)
    optimizer = torch.optim.Adam(net.parameters(), lr=args.unet_lr)
    clock = Clock()
    net.train()
    for _ in range(steps):
        x, y = uniform_batch(images, masks, batch, crop, rng)
        loss = torch.nn.functional.cross_entropy(net(x), y, ignore_index=255)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    wall, cpu = clock.read()
    net.eval()
    preds = []
    with torch.inference_mode():
        for image, _ in scenes:
            x = torch.from_numpy(pad32(normalize(image, prepared.stats)))[None]
            preds.append(net(x)[0, :, : image.shape[1], : image.shape[2]].argmax(0).numpy().astype(np.uint8))
    return ArmResult("plain U-Net r18 + CE", [t for _, t in scenes], preds, wall, cpu,
                     f"{steps} steps x {batch} x {crop} px")  # fmt: skip


def normalised_tiles(prepared):
    """Every training tile normalised as glacier normalises its inputs. Prepared format 2
    stores standardised values: read them back in raw units first (``raw_tile``)."""
    import numpy as np

    from glacier.normalization import normalize

    return np.stack([normalize(prepared.raw_tile(i), prepared.stats) for i in range(len(prepared))])


def uniform_batch(images, masks, batch: int, crop: int, rng):
    """``batch`` random crops of uniformly drawn tiles, each with a random flip/rotation."""
    import numpy as np
    import torch

    xs, ys = [], []
    for tile in rng.integers(0, len(images), batch):
        _, h, w = images[tile].shape
        top, left = rng.integers(0, h - crop + 1), rng.integers(0, w - crop + 1)
        x = images[tile][:, top : top + crop, left : left + crop]
        y = masks[tile][top : top + crop, left : left + crop]
        turns, flip = int(rng.integers(4)), bool(rng.integers(2))
        x, y = np.rot90(x, turns, axes=(1, 2)), np.rot90(y, turns)
        if flip:
            x, y = x[:, :, ::-1], y[:, ::-1]
        xs.append(np.ascontiguousarray(x))
        ys.append(np.ascontiguousarray(y))
    return torch.from_numpy(np.stack(xs)), torch.from_numpy(np.stack(ys))


def pad32(image):
    import numpy as np

    _, h, w = image.shape
    return np.pad(image, ((0, 0), (0, (-h) % 32), (0, (-w) % 32)))


def run_hgb(args: argparse.Namespace, prep: Path, scenes, seed: int) -> ArmResult:
    """sklearn's HistGradientBoostingClassifier on every labelled training pixel's bands."""
    import numpy as np
    from sklearn.ensemble import HistGradientBoostingClassifier

    from glacier.data.prepared import PreparedDataset
    from glacier.normalization import normalize

    prepared = PreparedDataset.open(prep)
    features = np.concatenate(
        [tile.reshape(len(prepared.bands), -1).T for tile in normalised_tiles(prepared)]
    )
    labels = np.asarray(prepared.masks).reshape(-1)
    keep = labels != 255
    clock = Clock()
    model = HistGradientBoostingClassifier(max_iter=args.hgb_iter, early_stopping=False, random_state=seed)
    model.fit(features[keep], labels[keep])
    wall, cpu = clock.read()
    preds = []
    for image, _ in scenes:
        pixels = normalize(image, prepared.stats).reshape(image.shape[0], -1).T
        preds.append(model.predict(pixels).reshape(image.shape[1:]).astype(np.uint8))
    return ArmResult("per-pixel HistGradientBoosting", [t for _, t in scenes], preds, wall, cpu,
                     f"{args.hgb_iter} iterations, {int(keep.sum())} pixels")  # fmt: skip


# --------------------------------------------------------------------------- scoring
def score(result: ArmResult) -> dict:
    """Pooled multiclass MCC (sklearn), per-class IoU and debris recall over held-out pixels."""
    import numpy as np
    from sklearn.metrics import confusion_matrix, matthews_corrcoef

    truth = np.concatenate([t.ravel() for t in result.truth])
    pred = np.concatenate([p.ravel() for p in result.pred])
    keep = truth != 255
    truth, pred = truth[keep], pred[keep]
    cm = confusion_matrix(truth, pred, labels=[0, 1, 2, 3])
    tp = np.diag(cm).astype(float)
    union = cm.sum(0) + cm.sum(1) - tp
    iou = [tp[k] / union[k] if union[k] else float("nan") for k in range(4)]
    recall = tp[2] / cm[2].sum() if cm[2].sum() else float("nan")
    return {"mcc": float(matthews_corrcoef(truth, pred)), "iou": iou, "debris_recall": float(recall)}


def print_table(results: list[ArmResult], args: argparse.Namespace, load: tuple) -> dict[str, dict]:
    """One row per arm and seed, then (with several seeds) each arm's mean and sample std;
    returns each arm's mean scores."""
    import statistics

    print(f"\n{args.train_images} training scenes (seed {args.train_seed}), {args.test_images} held-out "
          f"test-region scenes (seed {args.test_seed}), {args.size} px, 5 bands, {args.threads} threads, "
          f"training seeds {args.seeds}; load average {load[0]:.2f} at start, {os.getloadavg()[0]:.2f} at end")  # fmt: skip
    print("| arm | seed | MCC | IoU bg | IoU glacier | IoU debris | IoU lake | debris recall | train s (wall) "
          "| CPU s | budget |")  # fmt: skip
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    by_arm: dict[str, list[tuple[ArmResult, dict]]] = {}
    for r in results:
        s = score(r)
        by_arm.setdefault(r.name, []).append((r, s))
        ious = " | ".join("n/a" if v != v else f"{v:.3f}" for v in s["iou"])
        print(f"| {r.name} | {r.seed} | **{s['mcc']:.4f}** | {ious} | {s['debris_recall']:.3f} | {r.wall_s:.0f} "
              f"| {r.cpu_s:.0f} | {r.budget} |")  # fmt: skip
    means = {}
    for name, rows in by_arm.items():
        mcc = [s["mcc"] for _, s in rows]
        recall = [s["debris_recall"] for _, s in rows]
        means[name] = {"mcc": statistics.fmean(mcc), "debris_recall": statistics.fmean(recall),
                       "mcc_by_seed": mcc, "cpu_s": statistics.fmean(r.cpu_s for r, _ in rows),
                       "wall_s": statistics.fmean(r.wall_s for r, _ in rows)}  # fmt: skip
        if len(rows) > 1:
            print(f"| {name} | mean of {len(rows)} | **{means[name]['mcc']:.4f}** +/- {statistics.stdev(mcc):.4f} "
                  f"| | | | | {means[name]['debris_recall']:.3f} | {means[name]['wall_s']:.0f} "
                  f"| {means[name]['cpu_s']:.0f} | |")  # fmt: skip
    return means


def print_goal(means: dict[str, dict]) -> None:
    """Issue 13's goal on the arms' means, with the seeds in which glacier is not below the U-Net."""
    names = {name.split()[0]: name for name in means}
    if not {"glacier", "per-pixel", "plain"} <= set(names):
        return
    a, b, c = (means[names[k]] for k in ("glacier", "plain", "per-pixel"))
    wins = sum(x >= y for x, y in zip(a["mcc_by_seed"], b["mcc_by_seed"], strict=True))
    print(f"\ngoal (means): glacier - HGB = {a['mcc'] - c['mcc']:+.4f} (>= +0.03), glacier - U-Net = "
          f"{a['mcc'] - b['mcc']:+.4f} (>= 0; not below it in {wins} of {len(a['mcc_by_seed'])} seeds), "
          f"glacier debris recall {a['debris_recall']:.3f} (>= 0.6), glacier {a['wall_s'] / 60:.1f} min wall, "
          f"{a['cpu_s'] / 60:.1f} CPU min (<= 10 min on 2 cores)")  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    os.environ["OMP_NUM_THREADS"] = str(args.threads)  # before torch or sklearn start their pools
    import torch

    torch.set_num_threads(args.threads)
    load = os.getloadavg()
    seeds = [int(seed) for seed in args.seeds.split(",")]
    with tempfile.TemporaryDirectory(prefix="glacier_quality_") as tmp:
        root = args.workdir or Path(tmp)
        root.mkdir(parents=True, exist_ok=True)
        prep, test_root = make_data(args, root)
        scenes = held_out_scenes(test_root)
        arms = {"glacier": lambda seed: run_glacier(args, prep, root, scenes, seed),
                "unet": lambda seed: run_unet(args, prep, scenes, seed),
                "hgb": lambda seed: run_hgb(args, prep, scenes, seed)}  # fmt: skip
        results = []
        for seed in seeds:  # seeds outermost: a run stopped early has every arm of its first seeds
            for name in args.arms.split(","):
                print(f"arm {name}, seed {seed} ...", flush=True)
                result = arms[name](seed)
                result.seed = seed
                results.append(result)
                s = score(result)  # as each arm ends: a run stopped early keeps what it measured
                print(f"  {result.name}: MCC {s['mcc']:.4f}, debris recall {s['debris_recall']:.3f}, "
                      f"{result.wall_s:.0f} s wall, {result.cpu_s:.0f} CPU s", flush=True)  # fmt: skip
        print_goal(print_table(results, args, load))


if __name__ == "__main__":
    main()
