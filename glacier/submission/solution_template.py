"""GlacierHack submission: glacier segmentation masks for every tile of the band folders.

Written by ``glacier export-submission``; everything it needs to know (architectures, band
order, normalisation, class values, test-time augmentation, weights, the decision rule
fitted on out-of-fold predictions) is in ``model.pth``. It runs where only torch, numpy,
tifffile, OpenCV and segmentation_models_pytorch (0.3.x) exist, on Python 3.9 or newer.

The platform imports this file and calls ``maskgeration(imagepath, model_path)``, where
``imagepath`` maps band folder names ("Band1" ... "Band5") to folder paths, and receives
``{"001": mask}`` for ``img001.tif``: uint8 (H, W) masks with values 0/85/170/255.

By hand:  python solution.py --imagepath Test --output masks [--model model.pth]
"""

import argparse
import contextlib
import os
import re

import cv2
import numpy as np
import segmentation_models_pytorch as smp
import tifffile
import torch

PACKAGE_FORMAT = "glacier-submission"
PACKAGE_VERSION = 2
TIFF_SUFFIXES = (".tif", ".tiff")
GDAL_NODATA_TAG = 42113

# (quarter turns of torch.rot90 over (H, W), then a flip of W), in the order glacier's
# predict uses (glacier/predict/tta.py): the same order gives the same sums.
TTA_TRANSFORMS = {
    "none": [(0, False)],
    "flip": [(0, False), (0, True), (2, True)],
    "d4": [(k, flip) for flip in (False, True) for k in range(4)],
}
_DIGITS = re.compile(r"\d+(?:_\d+)*")
TINY = np.float32(1e-12)


def tile_id(file_name):
    """'img001.tif' -> '001': the last run of digit groups of the file's stem."""
    stem = os.path.basename(file_name).split(".", 1)[0]
    runs = _DIGITS.findall(stem)
    return runs[-1] if runs else stem


# ------------------------------------------------------------------------------ model
def load_package(model_path, device):
    """Read model.pth and build each ensemble member; returns (package, members)."""
    package = torch.load(model_path, map_location="cpu")
    if not isinstance(package, dict) or package.get("format") != PACKAGE_FORMAT:
        raise ValueError(
            f"{model_path}: not a glacier submission package (export it with glacier export-submission)"
        )
    if int(package.get("format_version", 0)) > PACKAGE_VERSION:
        raise ValueError(f"{model_path}: package format is newer than this solution.py; export both together")
    members = []
    for member in package["members"]:
        net = smp.create_model(member["architecture"], encoder_weights=None, **member["kwargs"])
        # Weights may be stored in float16 to stay under the size limit: compute in float32.
        state = {
            key: value.float() if value.is_floating_point() else value
            for key, value in member["state_dict"].items()
        }
        net.load_state_dict(state, strict=True)
        mean = np.asarray(member["mean"], dtype=np.float32)[:, None, None]
        std = np.asarray(member["std"], dtype=np.float32)[:, None, None]
        std = np.where(std > 0, std, 1.0).astype(np.float32)
        members.append((net.to(device).eval(), mean, std, float(member.get("weight", 1.0))))
    return package, members


# ----------------------------------------------------------------------------- images
def find_tiles(imagepath, band_folders):
    """[(tile id, file name of the first band, [path per band])], sorted by tile id."""
    missing = [name for name in band_folders if name not in imagepath]
    if missing:
        raise ValueError(f"band folder(s) {missing} missing from imagepath (got {sorted(imagepath)})")
    by_band = []
    for name in band_folders:
        folder = imagepath[name]
        files = sorted(f for f in os.listdir(folder) if f.lower().endswith(TIFF_SUFFIXES))
        by_band.append({tile_id(f): os.path.join(folder, f) for f in files})
    tiles = []
    for tid in sorted(by_band[0]):
        lacking = [band_folders[i] for i, files in enumerate(by_band) if tid not in files]
        if lacking:
            raise ValueError(f"tile {tid} is missing from band folder(s) {lacking}")
        tiles.append((tid, os.path.basename(by_band[0][tid]), [files[tid] for files in by_band]))
    return tiles


def read_band(path):
    """One band as float32 (H, W); the GeoTIFF nodata value becomes NaN."""
    with tifffile.TiffFile(path) as tif:
        page = tif.pages[0]
        data = page.asarray()
        nodata_tag = page.tags.get(GDAL_NODATA_TAG)
    data = np.squeeze(data)
    if data.ndim != 2:
        raise ValueError(f"{path}: expected one band, got an array of shape {data.shape}")
    band = data.astype(np.float32)
    if nodata_tag is not None:
        try:
            nodata = float(str(nodata_tag.value).strip("\x00 "))
        except ValueError:
            nodata = None
        if nodata is not None:
            band[data == nodata] = np.nan
    return band


def read_image(paths):
    bands = [read_band(p) for p in paths]
    for path, band in zip(paths, bands):  # noqa: B905 (Python 3.9 has no zip(strict=))
        if band.shape != bands[0].shape:
            raise ValueError(f"{path}: shape {band.shape} differs from {paths[0]} {bands[0].shape}")
    return np.stack(bands)


def fill_pixels(image):
    """Where a (C, H, W) image holds no data: every band 0, or any band NaN (glacier/data/fill.py)."""
    return np.isnan(image).any(axis=0) | (image == 0).all(axis=0)


def pad_to_multiple(image, stride):
    """Reflect-pad (C, H, W) at the bottom and right to multiples of ``stride``."""
    height, width = image.shape[-2:]
    pad_h, pad_w = (-height) % stride, (-width) % stride
    # Reflection needs two pixels along an axis; a one-pixel axis is repeated instead.
    if pad_h:
        image = np.pad(image, [(0, 0), (0, pad_h), (0, 0)], mode="reflect" if height > 1 else "edge")
    if pad_w:
        image = np.pad(image, [(0, 0), (0, 0), (0, pad_w)], mode="reflect" if width > 1 else "edge")
    return image


# ------------------------------------------------------------------------- prediction
def apply_transform(x, transform):
    k, flip = transform
    if k:
        x = torch.rot90(x, k, dims=(-2, -1))
    if flip:
        x = torch.flip(x, dims=(-1,))
    return x


def invert_transform(x, transform):
    k, flip = transform
    if flip:
        x = torch.flip(x, dims=(-1,))
    if k:
        x = torch.rot90(x, -k, dims=(-2, -1))
    return x


def tta_probabilities(net, x, transforms):
    """Softmax averaged over the transformed copies; copies of one shape share one forward."""
    batch = x.shape[0]
    groups = {}
    for transform in transforms:
        shape = tuple(x.shape[-2:]) if transform[0] % 2 == 0 else tuple(x.shape[-2:])[::-1]
        groups.setdefault(shape, []).append(transform)
    total = None
    for group in groups.values():
        stacked = torch.cat([apply_transform(x, t) for t in group], dim=0)
        probs = torch.softmax(net(stacked).float(), dim=1)
        for i, transform in enumerate(group):
            restored = invert_transform(probs[i * batch : (i + 1) * batch], transform)
            total = restored if total is None else total + restored
    return total / len(transforms)


def autocast(device):
    if device.type != "cuda":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.autocast("cuda", dtype=dtype)


# ------------------------------------------------------------------ the decision rule
# glacier/decisions/rule.py, line for line: the same float32 operations in the same order.
def sharpen(probs, temperature):
    """Probabilities (K, ...) at ``temperature``: ``p ** (1 / T)`` renormalised over classes."""
    if temperature == 1.0:
        return probs
    powered = np.power(np.maximum(probs, TINY), np.float32(1.0 / temperature))
    return powered / powered.sum(axis=0, keepdims=True)


def add_member(total, probs, weight, temperature, combine):
    """Add one member's (K, ...) float32 probabilities, weighted, to the running ``total``."""
    probs = sharpen(probs, temperature)
    if combine == "log_probability":
        probs = np.log(np.maximum(probs, TINY))
    term = probs * np.float32(weight)
    return term if total is None else total + term


def combined_probabilities(total, weight_sum, combine):
    """The ensemble's (K, ...) probabilities from the members' weighted ``total``."""
    mean = total / np.float32(weight_sum)
    if combine == "log_probability":
        mean = np.exp(mean - mean.max(axis=0, keepdims=True))
        mean = mean / mean.sum(axis=0, keepdims=True)
    return mean


def class_scores(probs, log_bias):
    """``log p_k + log_bias[k]`` for (K, ...) probabilities."""
    bias = np.asarray(log_bias, dtype=np.float32).reshape((-1,) + (1,) * (probs.ndim - 1))
    return np.log(np.maximum(probs, TINY)) + bias


def remove_small_components(indices, scores, min_component):
    """Hand every 8-connected component of class k smaller than ``min_component[k]`` pixels to
    each pixel's best-scoring other class (classes in index order, one pass)."""
    out = indices.copy()
    for k, size in enumerate(min_component):
        if size <= 1:
            continue
        _, labels, stats, _ = cv2.connectedComponentsWithStats((out == k).astype(np.uint8), connectivity=8)
        small = np.flatnonzero(stats[1:, cv2.CC_STAT_AREA] < size) + 1
        if small.size == 0:
            continue
        region = np.isin(labels, small)
        others = scores[:, region].copy()
        others[k] = -np.inf
        out[region] = others.argmax(axis=0).astype(out.dtype)
    return out


def fill_holes(indices, max_hole):
    """Give class k every 4-connected region of other classes that class k encloses (it
    does not touch the image border) and that is smaller than ``max_hole[k]`` pixels."""
    out = indices.copy()
    height, width = out.shape
    for k, size in enumerate(max_hole):
        if size <= 0:
            continue
        _, labels, stats, _ = cv2.connectedComponentsWithStats((out != k).astype(np.uint8), connectivity=4)
        x, y = stats[:, cv2.CC_STAT_LEFT], stats[:, cv2.CC_STAT_TOP]
        w, h = stats[:, cv2.CC_STAT_WIDTH], stats[:, cv2.CC_STAT_HEIGHT]
        inside = (x > 0) & (y > 0) & (x + w < width) & (y + h < height)
        enclosed = inside & (stats[:, cv2.CC_STAT_AREA] < size)
        enclosed[0] = False  # label 0: class k itself
        out[enclosed[labels]] = k
    return out


def decide(probs, log_bias, min_component, max_hole):
    """(K, H, W) combined probabilities -> uint8 (H, W) class indices."""
    scores = class_scores(probs, log_bias)
    indices = scores.argmax(axis=0).astype(np.uint8)
    indices = remove_small_components(indices, scores, min_component)
    return fill_holes(indices, max_hole)


def predict_image(image, package, members, device):
    """Raw (C, H, W) float32 image -> uint8 (H, W) mask in the package's class values."""
    height, width = image.shape[-2:]
    transforms = TTA_TRANSFORMS[package["tta"]]
    fill = fill_pixels(image)
    rule = package.get("calibration")
    total, weight_sum = None, 0.0
    for net, mean, std, weight in members:
        normalised = np.nan_to_num((image - mean) / std, nan=0.0, posinf=0.0, neginf=0.0)
        normalised[:, fill] = 0.0  # fill (no data) is the band mean in every band, as in training
        padded = pad_to_multiple(normalised, int(package["stride"]))
        x = torch.from_numpy(np.ascontiguousarray(padded[None])).to(device)
        with torch.inference_mode(), autocast(device):
            probs = tta_probabilities(net, x, transforms).float().cpu()[0, :, :height, :width]
        if rule is not None:
            total = add_member(total, probs.numpy(), weight, rule["temperature"], rule["combine"])
            weight_sum += weight
        else:
            total = probs if total is None else total + probs
    if rule is not None:
        probs = combined_probabilities(total, weight_sum, rule["combine"])
        indices = decide(probs, rule["log_bias"], rule["min_component"], rule["max_hole"])
    else:
        indices = (total / len(members)).numpy().argmax(axis=0)
    indices[fill] = 0  # fill is background, after the decision
    values = np.asarray(package["class_values"], dtype=np.uint8)
    return values[indices]


def predict_tiles(imagepath, model_path):
    """[(tile id, input file name, mask)] for every tile of the band folders in ``imagepath``."""
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    package, members = load_package(model_path, device)
    results = []
    for tid, name, paths in find_tiles(imagepath, package["band_folders"]):
        image = read_image(paths)
        if image.shape[0] != len(package["band_folders"]):
            raise ValueError(
                f"tile {tid}: {image.shape[0]} bands read, the model takes {len(package['band_folders'])}"
            )
        results.append((tid, name, predict_image(image, package, members, device)))
    return results


def maskgeration(imagepath, model_path):
    """The platform's entry point: {tile id ("001"): uint8 (H, W) mask with values 0/85/170/255}."""
    return {tid: mask for tid, _, mask in predict_tiles(imagepath, model_path)}


def main():
    parser = argparse.ArgumentParser(description="Predict glacier masks for a folder of band folders.")
    parser.add_argument("--imagepath", required=True, help="folder holding Band1 ... Band5")
    parser.add_argument("--output", required=True, help="folder to write the masks to (input file names)")
    parser.add_argument(
        "--model", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "model.pth")
    )
    args = parser.parse_args()
    imagepath = {
        name: os.path.join(args.imagepath, name)
        for name in sorted(os.listdir(args.imagepath))
        if os.path.isdir(os.path.join(args.imagepath, name))
    }
    os.makedirs(args.output, exist_ok=True)
    results = predict_tiles(imagepath, args.model)
    for _, name, mask in results:
        tifffile.imwrite(os.path.join(args.output, name), mask)
    print(f"wrote {len(results)} masks to {args.output}")


if __name__ == "__main__":
    main()
