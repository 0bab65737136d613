"""Training augmentation for multispectral tiles, aimed at a test region the model never saw.

Applied to the *normalised* image (NaN already 0), so interpolation never spreads NaN and
the constant fill of warped corners (0) is the band mean; the mask is warped with
nearest-neighbour interpolation and filled with the ignore index. Per sample, in order:

- geometry: one of the square's 8 symmetries, and (``affine_p``) a warp with log-uniform
  scale jitter (``scale``), rotation and shift (the most expensive step: 5 bands of 512 px
  take about 10 ms, so it stays at 0.3);
- radiometry (``photometric_p``), what differs between regions and dates: a per-image gain
  (``gain``, about +-15%) and offset (``offset``, a share of the band mean) in *raw* units
  on reflectance bands, from the dataset statistics (``x' = g x + o`` is, in z-space,
  ``z' = g z + ((g - 1) mean + o) / std``), each band jittered on top; bands that are not
  reflectances (thermal, indices, elevation) shift by ``shift_std`` standard deviations
  instead (3 K on a 10 K spread), since a 15% gain in kelvin would be 40 K;
- sensor noise (``noise_p``), a slight blur (``blur_p``) and coarse dropout (``dropout_p``:
  rectangles set to the band mean; the labels stay, so they must be read from context).

No-data pixels (mask = ignore) stay exactly 0 throughout.

Written with numpy and OpenCV rather than albumentations: flips and 90-degree rotations are
free views of the (C, H, W) array here, where albumentations needs a channel-last copy and
splits images of more than four bands for OpenCV, which made a 512 px, 5-band sample
three times slower than the 150 tiles/s per worker we aim for. Its pixel-level transforms
would also be wrong for this data (they clip floats to [0, 1], RandomGamma makes NaN of
negative values). The noise is read from a fixed bank at random offsets rather than drawn
per sample: drawing 1.3 million normals costs more than the rest of the augmentation.

Every call takes an explicit seed, so a (seed, epoch, index) triple fixes the result.
"""

from __future__ import annotations

import cv2
import numpy as np

from glacier.domain import IGNORE_INDEX, REFLECTANCE_BANDS
from glacier.normalization import BandStats

_NOISE_BANK_SEED = 20240613


class TileAugmentation:
    """Geometric, radiometric and sensor augmentation of a normalised (C, H, W) tile.

    ``image`` is (C, H, W) float32 (normalised), ``mask`` (H, W) uint8; returns the same
    shapes. ``stats`` (the statistics the image was normalised with) lets gain and offset
    act in raw units on reflectance bands; without them every band gets the z-space jitter
    and shift only. Probabilities of 0 turn a part off.
    """

    def __init__(
        self,
        stats: BandStats | None = None,
        *,
        affine_p: float = 0.3,
        scale: tuple[float, float] = (0.75, 1.33),
        rotate: tuple[float, float] = (-20.0, 20.0),
        translate: float = 0.05,
        photometric_p: float = 0.8,
        gain: float = 0.15,
        offset: float = 0.05,
        band_gain_std: float = 0.03,
        band_offset_std: float = 0.05,
        shift_std: float = 0.3,
        noise_p: float = 0.25,
        noise_std: tuple[float, float] = (0.02, 0.1),
        blur_p: float = 0.1,
        blur_sigma: tuple[float, float] = (0.4, 1.0),
        dropout_p: float = 0.25,
        dropout_holes: tuple[int, int] = (1, 4),
        dropout_size: tuple[float, float] = (0.05, 0.2),
    ) -> None:
        self.stats = stats
        self.affine_p, self.scale, self.rotate, self.translate = affine_p, scale, rotate, translate
        self.photometric_p, self.gain, self.offset = photometric_p, gain, offset
        self.band_gain_std, self.band_offset_std, self.shift_std = band_gain_std, band_offset_std, shift_std
        self.noise_p, self.noise_std = noise_p, noise_std
        self.blur_p, self.blur_sigma = blur_p, blur_sigma
        self.dropout_p, self.dropout_holes, self.dropout_size = dropout_p, dropout_holes, dropout_size
        self._noise_bank: np.ndarray | None = None

    @classmethod
    def basic(cls, stats: BandStats | None = None) -> TileAugmentation:
        """The augmentation before issue 13: flips, rotations, a mild warp, +-5% z-space band noise."""
        return cls(
            stats, affine_p=0.3, scale=(0.9, 1.1), rotate=(-15.0, 15.0), photometric_p=0.5, gain=0.0,
            offset=0.0, band_gain_std=0.05, band_offset_std=0.05, shift_std=0.0, noise_p=0.0, blur_p=0.0,
            dropout_p=0.0,
        )  # fmt: skip

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_noise_bank": None}  # each DataLoader worker makes its own

    def __call__(
        self, image: np.ndarray, mask: np.ndarray, seed: np.random.SeedSequence | int
    ) -> tuple[np.ndarray, np.ndarray]:
        rng = np.random.default_rng(seed)
        # One of the 8 symmetries of the square. OpenCV rotates and flips each band in one
        # cache-friendly pass; numpy's rot90 views would need a strided copy, 3x slower.
        turns, flip = int(rng.integers(4)), bool(rng.random() < 0.5)
        if turns or flip:
            image = _dihedral(np.asarray(image, dtype=np.float32), turns, flip)
            mask = _dihedral(np.ascontiguousarray(mask, dtype=np.uint8)[None], turns, flip)[0]
        else:
            image = np.array(image, dtype=np.float32)  # never change the caller's array
        mask = np.ascontiguousarray(mask, dtype=np.uint8)
        if rng.random() < self.affine_p:
            image, mask = self._affine(image, mask, rng)
        changed = False
        radiometry = self._radiometry(image.shape[0], rng) if rng.random() < self.photometric_p else None
        noise = self._noise(image.shape, rng) if rng.random() < self.noise_p else None
        if radiometry is not None or noise is not None:
            _scale_shift_add(image, radiometry, noise)
            changed = True
        if rng.random() < self.blur_p:
            sigma = rng.uniform(*self.blur_sigma)
            for band in image:  # a 3 x 3 kernel: a slight blur, and 2.5x cheaper than the full one
                cv2.GaussianBlur(band, (3, 3), sigma, dst=band)
            changed = True
        if rng.random() < self.dropout_p:
            self._dropout(image, rng)
        if changed:
            no_data = mask == IGNORE_INDEX
            if no_data.any():
                np.copyto(image, 0.0, where=no_data[None])  # no-data stays exactly 0 (the band mean)
        return image, mask

    def _radiometry(self, bands: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """Per-band ``(a, c)`` of ``z' = a z + c``: raw gain and offset on reflectance bands,
        a z-space jitter and shift on the others."""
        gain = rng.uniform(1.0 - self.gain, 1.0 + self.gain)
        offset = rng.uniform(-self.offset, self.offset)
        band_gain = 1.0 + rng.normal(0.0, self.band_gain_std, bands)
        band_offset = rng.normal(0.0, self.band_offset_std, bands)
        shift = rng.normal(0.0, self.shift_std, bands)
        scale, add = band_gain.copy(), band_offset + shift
        for b in range(bands):
            if self.stats is not None and self.stats.bands[b] in REFLECTANCE_BANDS:
                mean, std = self.stats.mean[b], self.stats.std[b] or 1.0
                scale[b] = gain * band_gain[b]
                add[b] = ((scale[b] - 1.0) * mean + (offset + band_offset[b]) * mean) / std
        return scale, add

    def _noise(self, shape: tuple[int, ...], rng: np.random.Generator) -> tuple[float, list[np.ndarray]]:
        """Gaussian noise: its standard deviation and, per band, a random window of a fixed
        bank of normals (``shape`` is the image's (C, H, W))."""
        bands, h, w = shape
        bank = self._bank(h, w)
        windows = []
        for _ in range(bands):
            y, x = int(rng.integers(bank.shape[0] - h + 1)), int(rng.integers(bank.shape[1] - w + 1))
            windows.append(bank[y : y + h, x : x + w])
        return float(rng.uniform(*self.noise_std)), windows

    def _bank(self, h: int, w: int) -> np.ndarray:
        if self._noise_bank is None or self._noise_bank.shape[0] < 2 * h or self._noise_bank.shape[1] < 2 * w:
            rng = np.random.default_rng(_NOISE_BANK_SEED)
            self._noise_bank = rng.standard_normal((2 * h, 2 * w), dtype=np.float32)
        return self._noise_bank

    def _dropout(self, image: np.ndarray, rng: np.random.Generator) -> None:
        """``dropout_holes`` rectangles of ``dropout_size`` (share of each side) set to 0."""
        _, h, w = image.shape
        for _ in range(int(rng.integers(self.dropout_holes[0], self.dropout_holes[1] + 1))):
            hh = max(1, int(h * rng.uniform(*self.dropout_size)))
            ww = max(1, int(w * rng.uniform(*self.dropout_size)))
            top, left = int(rng.integers(h - hh + 1)), int(rng.integers(w - ww + 1))
            image[:, top : top + hh, left : left + ww] = 0.0

    def _affine(self, image: np.ndarray, mask: np.ndarray, rng: np.random.Generator):
        h, w = mask.shape
        angle = rng.uniform(*self.rotate)
        scale = float(np.exp(rng.uniform(np.log(self.scale[0]), np.log(self.scale[1]))))
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


def build_augmentation(
    enabled: bool, backend: str = "numpy", stats: BandStats | None = None, level: str = "region"
):
    """The training augmentation a config asks for (``data.augment``, ``data.augment_backend``,
    ``data.augment_level``); ``stats`` are the statistics the images are normalised with
    (raw-unit gain and offset)."""
    if not enabled:
        return None
    if backend == "albumentations":
        return AlbumentationsAugmentation()
    return TileAugmentation.basic(stats) if level == "basic" else TileAugmentation(stats)


def _scale_shift_add(
    image: np.ndarray,
    radiometry: tuple[np.ndarray, np.ndarray] | None,
    noise: tuple[float, list[np.ndarray]] | None,
) -> None:
    """``band = a * band + c (+ std * noise)`` in place: one OpenCV pass per band."""
    for b, band in enumerate(image):
        a, c = (float(radiometry[0][b]), float(radiometry[1][b])) if radiometry is not None else (1.0, 0.0)
        if noise is not None:
            cv2.addWeighted(band, a, noise[1][b], noise[0], c, dst=band)
        else:
            cv2.addWeighted(band, a, band, 0.0, c, dst=band)


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
