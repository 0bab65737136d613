"""Prediction throughput at 512 px: one model, batched vs looped flip TTA, a 5-member ensemble, the soup.

    python benchmarks/predict_throughput.py                      # resnet34 U-Net (the default model)
    python benchmarks/predict_throughput.py --encoder resnet18 --tiles 2 --device cpu

All figures come from one run on the same tiles: tiles/s of the whole Predictor (normalise,
pad, forward, softmax, average) and, for TTA, the forward-level ratio of one batched forward
over the stacked copies versus a Python loop of one forward per copy (the same transforms).
Random-initialised weights: speed does not depend on what the weights are.
"""

from __future__ import annotations

import argparse
import time
from types import SimpleNamespace

import numpy as np
import torch

from glacier.config import ModelConfig
from glacier.domain import COMPETITION_BANDS
from glacier.models import build_model
from glacier.normalization import BandStats
from glacier.predict import Predictor, resolve_device, soup_models
from glacier.predict.tta import TTA_TRANSFORMS, apply_transform, invert_transform, tta_probabilities


def loop_tta_probabilities(forward, x: torch.Tensor, mode: str) -> torch.Tensor:
    """The baseline: one forward per transformed copy."""
    transforms = TTA_TRANSFORMS[mode]
    total = None
    for transform in transforms:
        probs = torch.softmax(forward(apply_transform(x, transform)).float(), dim=1)
        restored = invert_transform(probs, transform)
        total = restored if total is None else total + restored
    return total / len(transforms)


def timed(fn, repeats: int, device: torch.device) -> float:
    """Seconds per call after one warm-up call."""
    fn()
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - start) / repeats


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--encoder", default="resnet34")
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--tiles", type=int, default=4, help="tiles per measurement")
    parser.add_argument("--batch", type=int, default=2, help="tiles per forward in the TTA comparison")
    parser.add_argument("--members", type=int, default=5)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    cfg = ModelConfig(architecture="Unet", encoder=args.encoder)
    stats = BandStats(COMPETITION_BANDS, (0.0,) * 5, (1.0,) * 5)
    meta = SimpleNamespace(normalization=stats)
    torch.manual_seed(0)
    members = [build_model(cfg, COMPETITION_BANDS).eval() for _ in range(args.members)]
    rng = np.random.default_rng(0)
    tiles = [rng.standard_normal((5, args.size, args.size)).astype(np.float32) for _ in range(args.tiles)]
    print(
        f"device {device}, {args.encoder} U-Net, {args.size} px tiles, {args.tiles} tiles per figure, "
        f"torch threads {torch.get_num_threads()}"
    )

    def throughput(models, tta: str) -> float:
        predictor = Predictor([(m, meta) for m in models], tta=tta, device=device, tile_size=None)
        seconds = timed(lambda: [predictor.predict_probabilities(t) for t in tiles], 1, device)
        return args.tiles / seconds

    single = throughput(members[:1], "none")
    print(f"one model, no TTA:           {single:7.2f} tiles/s")
    flip = throughput(members[:1], "flip")
    print(f"one model, flip TTA (x3):    {flip:7.2f} tiles/s")

    # TTA at the forward level: batched (one forward over 3 x batch) vs a loop of 3 forwards.
    model = members[0].to(device)
    x = torch.from_numpy(np.stack(tiles[: args.batch])).to(device)
    autocast = (
        torch.autocast("cuda", dtype=torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16)
        if device.type == "cuda"
        else torch.autocast("cpu", enabled=False)
    )
    with torch.inference_mode(), autocast:
        batched = timed(lambda: tta_probabilities(model, x, "flip"), 2, device)
        looped = timed(lambda: loop_tta_probabilities(model, x, "flip"), 2, device)
        difference = (
            (tta_probabilities(model, x, "flip") - loop_tta_probabilities(model, x, "flip")).abs().max()
        )
    print(
        f"flip TTA on a batch of {args.batch}: batched {batched:.3f} s, loop {looped:.3f} s, "
        f"speed-up {looped / batched:.2f}x (max |difference| {float(difference):.1e})"
    )

    ensemble = throughput(members, "none")
    print(f"{args.members}-member ensemble, no TTA: {ensemble:7.2f} tiles/s")
    start = time.perf_counter()
    soup = soup_models(members)
    soup_seconds = time.perf_counter() - start
    souped = throughput([soup], "none")
    print(
        f"soup of {args.members} members, no TTA: {souped:7.2f} tiles/s (soup built in {soup_seconds:.2f} s)"
    )


if __name__ == "__main__":
    main()
