"""Training augmentation for multispectral tiles: spatial transforms and per-band gain/offset noise.

Applied to the *normalised* image (NaN already 0), so interpolation never spreads NaN and
the constant fill of warped corners (0) is the band mean; the mask is warped with
nearest-neighbour interpolation and filled with the ignore index.

Written with numpy and OpenCV rather than albumentations: flips and 90-degree rotations are
free views of the (C, H, W) array here, where albumentations needs a channel-last copy and
splits images of more than four bands for OpenCV, which made a 512 px, 5-band sample
three times slower than the 150 tiles/s per worker we aim for. Its pixel-level transforms
would also be wrong for this data (they clip floats to [0, 1], RandomGamma makes NaN of
negative values); the photometric part below is per-band gain and offset noise.

Every call takes an explicit seed, so a (seed, epoch, index) triple fixes the result.
"""

from __future__ import annotations

import cv2
import numpy as np

from glacier.domain import IGNORE_INDEX


class TileAugmentation:
    """Random dihedral transform (flips, 90-degree rotations), a small affine warp, band noise.

    ``image`` is (C, H, W) float32 (normalised), ``mask`` (H, W) uint8; returns the same shapes.
    """

    def __init__(
        self,
        affine_p: float = 0.3,
        scale: tuple[float, float] = (0.9, 1.1),
        rotate: tuple[float, float] = (-15.0, 15.0),
        translate: float = 0.05,
        band_noise_p: float = 0.5,
        gain_std: float = 0.05,
        offset_std: float = 0.05,
    ) -> None:
        self.affine_p = affine_p
        self.scale = scale
        self.rotate = rotate
        self.translate = translate
        self.band_noise_p = band_noise_p
        self.gain_std = gain_std
        self.offset_std = offset_std

    def __call__(
        self, image: np.ndarray, mask: np.ndarray, seed: np.random.SeedSequence | int
    ) -> tuple[np.ndarray, np.ndarray]:
        rng = np.random.default_rng(seed)
        # One of the 8 symmetries of the square. OpenCV rotates and flips each band in one
        # cache-friendly pass; numpy's rot90 views would need a strided copy, 3x slower.
        turns, flip = int(rng.integers(4)), bool(rng.random() < 0.5)
        fresh = bool(turns or flip)  # whether `image` is ours to change in place
        if fresh:
            image = _dihedral(np.asarray(image, dtype=np.float32), turns, flip)
            mask = _dihedral(np.ascontiguousarray(mask, dtype=np.uint8)[None], turns, flip)[0]
        image = np.ascontiguousarray(image, dtype=np.float32)
        mask = np.ascontiguousarray(mask, dtype=np.uint8)
        if rng.random() < self.affine_p:
            image, mask = self._affine(image, mask, rng)
            fresh = True
        if self.band_noise_p > 0 and rng.random() < self.band_noise_p:
            bands = image.shape[0]
            gain = 1.0 + rng.normal(0.0, self.gain_std, bands)
            offset = rng.normal(0.0, self.offset_std, bands)
            if not fresh:
                image = image.copy()  # never change the caller's array
            for band in range(bands):  # in place, band by band: one pass over memory each
                image[band] *= np.float32(gain[band])
                image[band] += np.float32(offset[band])
            no_data = mask == IGNORE_INDEX
            if no_data.any():
                np.copyto(image, 0.0, where=no_data[None])  # no-data stays exactly 0 (the band mean)
        return image, mask

    def _affine(self, image: np.ndarray, mask: np.ndarray, rng: np.random.Generator):
        h, w = mask.shape
        angle = rng.uniform(*self.rotate)
        scale = rng.uniform(*self.scale)
        shift = rng.uniform(-self.translate, self.translate, 2) * (w, h)
        matrix = cv2.getRotationMatrix2D((w / 2 - 0.5, h / 2 - 0.5), angle, scale)
        matrix[:, 2] += shift
        warped = np.empty_like(image)
        for band in range(image.shape[0]):  # OpenCV warps at most 4 channels at once
            cv2.warpAffine(
                image[band], matrix, (w, h), dst=warped[band], flags=cv2.INTER_LINEAR,
                borderMode=cv2.BORDER_CONSTANT, borderValue=0.0,
            )  # fmt: skip
        mask = cv2.warpAffine(
            mask,
            matrix,
            (w, h),
            flags=cv2.INTER_NEAREST,
            borderMode=cv2.BORDER_CONSTANT,
            borderValue=IGNORE_INDEX,
        )
        return warped, mask


class AlbumentationsAugmentation:
    """Any albumentations pipeline on (C, H, W) tiles: ``data.augment_backend: albumentations``.

    Default pipeline: the same spatial transforms as TileAugmentation (dihedral flips and
    rotations, a small affine warp with the mask warped nearest-neighbour and filled with the
    ignore index). Pass your own ``A.Compose`` of *spatial* transforms to change it; avoid
    albumentations' pixel-level transforms on this data (they clip floats to [0, 1], and
    RandomGamma turns negative values into NaN). Seeded per sample through
    ``set_random_seed``, so a (seed, epoch, index) triple fixes the result here too.
    """

    def __init__(self, transform=None) -> None:
        import albumentations as A

        self.transform = transform or A.Compose(
            [
                A.HorizontalFlip(p=0.5),
                A.RandomRotate90(p=1.0),
                A.Affine(
                    scale=(0.9, 1.1),
                    rotate=(-15.0, 15.0),
                    translate_percent=(-0.05, 0.05),
                    interpolation=cv2.INTER_LINEAR,
                    mask_interpolation=cv2.INTER_NEAREST,
                    fill=0.0,
                    fill_mask=IGNORE_INDEX,
                    p=0.3,
                ),
            ]
        )

    def __call__(
        self, image: np.ndarray, mask: np.ndarray, seed: np.random.SeedSequence | int
    ) -> tuple[np.ndarray, np.ndarray]:
        self.transform.set_random_seed(int(np.random.default_rng(seed).integers(2**31)))
        # albumentations works on channel-last arrays.
        out = self.transform(image=np.ascontiguousarray(image.transpose(1, 2, 0)), mask=mask)
        image = np.ascontiguousarray(out["image"].transpose(2, 0, 1), dtype=np.float32)
        return image, np.ascontiguousarray(out["mask"], dtype=np.uint8)


def build_augmentation(enabled: bool, backend: str = "numpy"):
    """The training augmentation a config asks for (``data.augment``, ``data.augment_backend``)."""
    if not enabled:
        return None
    if backend == "albumentations":
        return AlbumentationsAugmentation()
    return TileAugmentation()


# `np.rot90(band, turns)` then (if flip) a left-right flip, as at most two OpenCV calls per
# band, each one cache-friendly pass (numpy's rot90 views would need a strided copy).
_DIHEDRAL_OPS = {
    (0, True): (("flip", 1),),
    (1, False): (("rotate", cv2.ROTATE_90_COUNTERCLOCKWISE),),
    (1, True): (("transpose", None), ("flip", -1)),
    (2, False): (("flip", -1),),
    (2, True): (("flip", 0),),
    (3, False): (("rotate", cv2.ROTATE_90_CLOCKWISE),),
    (3, True): (("transpose", None),),
}


def _dihedral(stack: np.ndarray, turns: int, flip: bool) -> np.ndarray:
    """One of the square's 8 symmetries applied to every band of a (C, H, W) array."""
    ops = _DIHEDRAL_OPS.get((turns, flip))
    if ops is None:
        return stack
    c, h, w = stack.shape
    out = np.empty((c, w, h) if turns % 2 else (c, h, w), dtype=stack.dtype)
    for band, dst in zip(stack, out, strict=True):
        for i, (name, arg) in enumerate(ops):
            target = dst if i == len(ops) - 1 else None
            if name == "flip":
                band = cv2.flip(band, arg, dst=target)
            elif name == "rotate":
                band = cv2.rotate(band, arg, dst=target)
            else:
                band = cv2.transpose(band, dst=target)
    return out
