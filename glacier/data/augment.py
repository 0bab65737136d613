"""Training augmentation for multispectral tiles: spatial transforms (albumentations) and
per-band gain/offset noise (numpy).

Applied to the *normalised* image (NaN already 0), so interpolation never spreads NaN and
the constant fill of rotated corners (0) is the band mean; the mask is transformed with
nearest-neighbour interpolation and filled with the ignore index. Albumentations'
pixel-level transforms assume [0, 1] or uint8 images (they clip floats, and RandomGamma
turns negatives into NaN), so none are used: the photometric part is our own numpy code.

Every call takes an explicit seed, so a (seed, epoch, index) triple fixes the result.
"""

from __future__ import annotations

import albumentations as A
import cv2
import numpy as np

from glacier.domain import IGNORE_INDEX


class TileAugmentation:
    """Flips, 90-degree rotations and a small affine warp; optional per-band gain/offset noise.

    ``image`` is (C, H, W) float32 (normalised), ``mask`` (H, W) uint8; returns the same.
    """

    def __init__(
        self,
        affine_p: float = 0.3,
        scale: tuple[float, float] = (0.9, 1.1),
        rotate: tuple[float, float] = (-15.0, 15.0),
        band_noise_p: float = 0.5,
        gain_std: float = 0.05,
        offset_std: float = 0.05,
    ) -> None:
        self.transforms = [
            A.HorizontalFlip(p=0.5),
            A.VerticalFlip(p=0.5),
            A.RandomRotate90(p=0.75),
            A.Affine(
                scale=scale,
                rotate=rotate,
                translate_percent=(-0.05, 0.05),
                interpolation=cv2.INTER_LINEAR,
                mask_interpolation=cv2.INTER_NEAREST,
                border_mode=cv2.BORDER_CONSTANT,
                fill=0.0,
                fill_mask=IGNORE_INDEX,
                p=affine_p,
            ),
        ]
        self.compose = A.Compose(self.transforms)
        self.band_noise_p = band_noise_p
        self.gain_std = gain_std
        self.offset_std = offset_std

    def __call__(
        self, image: np.ndarray, mask: np.ndarray, seed: np.random.SeedSequence | int
    ) -> tuple[np.ndarray, np.ndarray]:
        sequence = seed if isinstance(seed, np.random.SeedSequence) else np.random.SeedSequence(seed)
        children = sequence.spawn(len(self.transforms) + 1)
        # One seed per transform: seeding the Compose alone gives every transform the same
        # stream, and the horizontal and vertical flips would always fire together.
        for transform, child in zip(self.transforms, children, strict=False):
            transform.set_random_seed(int(child.generate_state(1)[0]))
        out = self.compose(image=np.ascontiguousarray(image.transpose(1, 2, 0)), mask=mask)
        image = np.ascontiguousarray(out["image"].transpose(2, 0, 1), dtype=np.float32)
        mask = out["mask"]
        rng = np.random.default_rng(children[-1])
        if self.band_noise_p > 0 and rng.random() < self.band_noise_p:
            bands = image.shape[0]
            gain = 1.0 + rng.normal(0.0, self.gain_std, bands).astype(np.float32)
            offset = rng.normal(0.0, self.offset_std, bands).astype(np.float32)
            valid = mask != IGNORE_INDEX  # no-data pixels stay exactly 0 (the mean)
            image = np.where(valid, image * gain[:, None, None] + offset[:, None, None], image).astype(
                np.float32
            )
        return image, mask
