"""Where glaciers are: a minimal mass-balance and flux-routing ice model.

Above the equilibrium-line altitude (ELA) snow accumulates; the surplus flows down the
steepest descent of the (smoothed) terrain, so it gathers in valleys and feeds tongues
that reach below the ELA until melt has used it up. Tongues are widened in proportion to
the square root of their ice flux. The ELA is searched so the ice covers a target share
of the image. Along every tongue's flow lines the routing also gives how far down the
ablation zone each pixel lies (0 at the ELA, 1 at the snout): where debris-covered ice is.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from glacier.sampledata.noise import blur

_NEIGHBOURS = [(-1, -1), (-1, 0), (-1, 1), (0, -1), (0, 1), (1, -1), (1, 0), (1, 1)]
_ABLATION_RATIO = 0.25
"""Melt per metre below the ELA relative to accumulation per metre above it."""
_WIDTH_PER_SQRT_FLUX = 0.006
"""Tongue half-width in pixels per sqrt(flux in metre-pixels): ~15 px for a large basin at 512 px."""


def _receivers(elevation: np.ndarray) -> np.ndarray:
    """Flat index of each pixel's steepest-descent neighbour (itself in a pit)."""
    height, width = elevation.shape
    padded = np.pad(elevation, 1, mode="edge")
    best_drop = np.zeros(elevation.shape)
    best = np.arange(elevation.size).reshape(elevation.shape)
    rows, cols = np.mgrid[0:height, 0:width]
    for d_row, d_col in _NEIGHBOURS:
        neighbour = padded[1 + d_row : 1 + d_row + height, 1 + d_col : 1 + d_col + width]
        drop = (elevation - neighbour) / np.hypot(d_row, d_col)
        target = np.clip(rows + d_row, 0, height - 1) * width + np.clip(cols + d_col, 0, width - 1)
        better = drop > best_drop
        best_drop = np.where(better, drop, best_drop)
        best = np.where(better, target, best)
    return best.ravel()


class FlowRouting:
    """Steepest-descent routing on a fixed surface; the routing is reused for every ELA tried."""

    def __init__(self, elevation: np.ndarray):
        self.elevation = elevation
        self._receivers = _receivers(elevation).tolist()
        # Highest first: every pixel has received all its inflow before passing it on.
        self._order = np.argsort(-elevation, axis=None).tolist()

    def ice_flux(self, ela: float) -> np.ndarray:
        """Mass balance routed downhill: > 0 where ice is present (accumulation or fed tongue)."""
        balance = self.elevation - ela
        balance = np.where(balance < 0, balance * _ABLATION_RATIO, balance).ravel()
        flux, receivers = balance.tolist(), self._receivers
        for i in self._order:
            f = flux[i]
            if f > 0:
                r = receivers[i]
                if r != i:
                    flux[r] += f
        return np.asarray(flux).reshape(self.elevation.shape)

    def tongue_position(self, ela: float) -> tuple[np.ndarray, np.ndarray]:
        """Where each flow-line pixel below the ELA lies along its tongue, and that tongue's length.

        Flow lines are the pixels that carry ice (flux > 0). Two passes along them: downhill,
        the longest flow distance since the line crossed the ELA; uphill, the flow distance
        to the snout (where the ice runs out). Position = below / (below + to snout), 0 at
        the ELA rising to 1 at the snout; length (px) = below + to snout. Both are 0 off
        the flow lines and above the ELA.
        """
        height, width = self.elevation.shape
        flowing = (self.ice_flux(ela) > 0).ravel().tolist()
        below_ela = (self.elevation < ela).ravel().tolist()
        receivers = np.asarray(self._receivers)
        index = np.arange(receivers.size)
        step = np.hypot(receivers // width - index // width, receivers % width - index % width).tolist()
        receivers = receivers.tolist()
        since_ela = [0.0] * len(receivers)
        for i in self._order:  # high to low: each pixel's inflow is final before it passes on
            r = receivers[i]
            if flowing[i] and r != i and flowing[r] and below_ela[r]:
                since_ela[r] = max(since_ela[r], since_ela[i] + step[i])
        to_snout = [0.0] * len(receivers)
        for i in reversed(self._order):  # low to high: the receiver's distance is final
            r = receivers[i]
            if flowing[i] and r != i and flowing[r]:
                to_snout[i] = to_snout[r] + step[i]
        since = np.asarray(since_ela).reshape(height, width)
        length = since + np.asarray(to_snout).reshape(height, width)
        on_tongue = (since > 0) & (length > 0)
        position = np.where(on_tongue, since / np.where(on_tongue, length, 1.0), 0.0)
        return position, np.where(on_tongue, length, 0.0)

    def outline(self, ela: float) -> np.ndarray:
        """Accumulation area plus tongues widened around their flow lines."""
        flux = self.ice_flux(ela)
        glacier = flux > 0
        tongue_flux = np.where(glacier & (self.elevation < ela), flux, 0.0)
        radius = _WIDTH_PER_SQRT_FLUX * np.sqrt(tongue_flux)
        for r in (1, 2, 3, 5, 8, 12, 18, 27):
            centres = radius >= r
            if not centres.any():
                break
            glacier |= ndimage.distance_transform_edt(~centres) <= r
        return glacier


@dataclass
class GlacierLayout:
    """A glacier mask and, for every pixel of it, where it lies along its tongue."""

    outline: np.ndarray  # bool
    ela: float  # m, the mass-balance equilibrium line
    tongue_position: np.ndarray  # 0 at or above the ELA, rising to 1 at the snout
    tongue_length: np.ndarray  # px, ELA to snout along the flow line; 0 above the ELA
    accumulation: np.ndarray  # bool, ice-carrying pixels above the ELA

    def spread_to(self, glacier: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Position and length on every pixel of ``glacier``, from its nearest flow line.

        A tongue's sides take the value of the flow line they flank, so a position
        threshold cuts straight across the tongue (not along its low edges).
        """
        lines = self.tongue_length > 0
        if not lines.any():
            return np.zeros(glacier.shape), np.zeros(glacier.shape)
        rows, cols = ndimage.distance_transform_edt(~lines, return_distances=False, return_indices=True)
        on_tongue = glacier & ~self.accumulation
        return (
            np.where(on_tongue, self.tongue_position[rows, cols], 0.0),
            np.where(on_tongue, self.tongue_length[rows, cols], 0.0),
        )


def glacier_outline(elevation: np.ndarray, share: float, scale: float) -> GlacierLayout:
    """A glacier mask covering about ``share`` of the image, with positions along its tongues.

    The ELA is bisected on a grid of about 64 px (fast), then the outline is drawn at full
    resolution. Flux counts upstream pixels, so on a grid ``step`` times coarser it is
    ``step**2`` smaller and sqrt-flux widths in coarse pixels come out the same.
    """
    smooth = blur(elevation, 1.5 * scale + 0.5)
    step = max(1, int(round(min(elevation.shape) / 64)))
    coarse = FlowRouting(smooth[::step, ::step])
    low, high = float(coarse.elevation.min()), float(coarse.elevation.max())
    for _ in range(10):
        ela = (low + high) / 2
        if coarse.outline(ela).mean() > share:
            low = ela
        else:
            high = ela
    ela = (low + high) / 2
    routing = FlowRouting(smooth)
    position, length = routing.tongue_position(ela)
    accumulation = (smooth >= ela) & (routing.ice_flux(ela) > 0)
    return GlacierLayout(routing.outline(ela), ela, position, length, accumulation)
