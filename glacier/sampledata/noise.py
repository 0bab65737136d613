"""Random fields: fractal (power-law) noise by spectral synthesis, and smooth noise.

Everything takes an explicit ``numpy.random.Generator`` so that a seed fixes every array.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage


def fractal_noise(rng: np.random.Generator, shape: tuple[int, int], beta: float = 2.0) -> np.ndarray:
    """Zero-mean, unit-std noise whose power spectrum falls as ``1 / f**beta``.

    beta ~2 looks like rough terrain, ~3 like smooth hills or cloud fields. The field is
    synthesised a quarter larger than ``shape`` and cropped, so its FFT periodicity does
    not show as matching opposite edges.
    """
    height, width = shape
    big_h, big_w = int(height * 1.25) + 2, int(width * 1.25) + 2
    fy = np.fft.fftfreq(big_h)[:, None]
    fx = np.fft.rfftfreq(big_w)[None, :]
    freq = np.sqrt(fx**2 + fy**2)
    freq[0, 0] = 1.0  # the mean is removed below anyway; avoid dividing by zero
    spectrum = np.fft.rfft2(rng.standard_normal((big_h, big_w))) * freq ** (-beta / 2)
    spectrum[0, 0] = 0.0
    field = np.fft.irfft2(spectrum, s=(big_h, big_w))[:height, :width]
    return (field - field.mean()) / (field.std() + 1e-12)


def smooth_noise(rng: np.random.Generator, shape: tuple[int, int], sigma: float) -> np.ndarray:
    """Gaussian-blurred white noise, rescaled to unit std: blobs about ``sigma`` pixels wide."""
    field = ndimage.gaussian_filter(rng.standard_normal(shape), max(sigma, 0.3), mode="reflect")
    return (field - field.mean()) / (field.std() + 1e-12)


def rescale(values: np.ndarray, low_q: float = 0.5, high_q: float = 99.5) -> np.ndarray:
    """Map the ``low_q``..``high_q`` percentile range of ``values`` onto 0..1 (clipped)."""
    low, high = np.percentile(values, [low_q, high_q])
    return np.clip((values - low) / (high - low + 1e-12), 0.0, 1.0)


def blur(values: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur with edge reflection (a no-op for a tiny sigma)."""
    if sigma < 0.3:
        return values
    return ndimage.gaussian_filter(values, sigma, mode="reflect")


def threshold_for_share(score: np.ndarray, share: float, where: np.ndarray | None = None) -> float:
    """The threshold above which ``share`` of ``score`` (within ``where``) lies."""
    values = score[where] if where is not None else score.ravel()
    if values.size == 0 or share <= 0:
        return float("inf")
    return float(np.quantile(values, 1.0 - min(share, 1.0)))
