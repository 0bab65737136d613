"""Where glaciers are: accumulation basins high up, feeding valley tongues.

1. Drainage: a priority flood on a coarse (~64 cell) copy of the terrain gives every cell a
   downhill receiver, pits spilling over their lowest saddle, so that paths follow the
   valleys down to the image edge.
2. Basins: snow accumulates above a first equilibrium-line altitude (ELA); the ice of a
   basin leaves it along the drainage line that carries most of it. Where the largest of
   these lines cross the ELA, tongues start.
3. Tongues run down the valley floor from there for a length drawn per scene (the biggest
   basin feeds the longest tongue). Their width hardly depends on the basin (valley
   glaciers are 0.5-1.5 km wide, 3-15 km long), narrowing a little towards the snout. A
   tongue that runs into another one ends there as a tributary; below the snout of the
   others the drainage line goes on as the forefield. The terrain is carved into a
   U-shaped trough under each tongue, with lateral-moraine ridges on its lower flanks.
4. Accumulation areas: the gentle ground above a final ELA, chosen so that tongues plus
   accumulation areas cover the target share of the image.

Every tongue pixel knows its tongue and where it lies along it: 0 where the tongue
crosses the ELA, 1 at the snout (tributaries count on down the trunk): where the debris
cover of the lower tongue lies.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from glacier.sampledata.noise import blur, smooth_noise

_NEIGHBOURS = [(-1, -1), (-1, 0), (-1, 1), (0, -1), (0, 1), (1, -1), (1, 0), (1, 1)]
_COARSE_CELLS = 64
"""Cells across the drainage grid: coarse enough to be fast, fine enough to follow valleys."""
_WALL_SLOPE = np.tan(np.radians(32.0))
"""Slope of a trough's side walls (rise per run)."""
_STEEP = 42.0
"""Degrees: steeper ground above the ELA is bare rock wall, not accumulation area."""


@dataclass(frozen=True)
class TongueParameters:
    """How many tongues a scene has and how they are shaped."""

    count: int  # at most this many tongues (fewer when there are fewer ice basins)
    longest_m: float  # length of the longest tongue below the ELA (m)
    half_width_m: float  # half-width of the largest tongue where it crosses the ELA (m)
    accumulation_share: float  # share of the target ice area above the first ELA


@dataclass
class Tongue:
    """One valley tongue, as a dense polyline in full-resolution pixels."""

    path: np.ndarray  # (n, 2) float (row, col), from inside its basin down to its snout
    position: np.ndarray  # (n,) 0 up to the ELA crossing, rising to 1 at the (trunk's) snout
    half_width: np.ndarray  # (n,) px
    length: float  # px from the ELA crossing to the snout (of the trunk, for tributaries)
    tributary: bool
    forefield: np.ndarray  # (m, 2) float: the valley floor below the snout, down-valley; empty if none

    @property
    def snout(self) -> tuple[np.ndarray, np.ndarray]:
        """Snout position (row, col) and the unit down-valley direction there."""
        end = self.path[-1]
        before = self.path[max(0, len(self.path) - 12)]
        direction = end - before
        return end, direction / (np.linalg.norm(direction) + 1e-9)


@dataclass
class GlacierLayout:
    """The glaciers of one scene and the terrain they have carved."""

    elevation: np.ndarray  # m, carved: U-shaped troughs under the tongues, moraine ridges beside
    outline: np.ndarray  # bool: tongues plus accumulation areas
    accumulation: np.ndarray  # bool: ice above the ELA outside the tongues
    tongue_id: np.ndarray  # int: 1.. for the pixels of tongue k, 0 elsewhere
    tongue_position: np.ndarray  # 0..1 along the tongue (see the module docstring); 0 off tongues
    tongue_length: np.ndarray  # px, the pixel's tongue length; 0 off tongues
    flank_distance: np.ndarray  # px from the tongue's edge, outside it (for moraines); inf far away
    flank_position: np.ndarray  # position along the nearest tongue, for pixels beside it
    tongues: list[Tongue]
    ela: float  # m


def _drainage(elevation: np.ndarray) -> tuple[list[int], list[int]]:
    """Receiver (flat index, -1 off the edge) of every cell, and the cells from low to high.

    Priority flood from the image edge: each cell drains to the neighbour through which the
    flood reached it first, so a pit drains over its lowest saddle instead of trapping flow.
    """
    height, width = elevation.shape
    flat = elevation.ravel().tolist()
    receiver = [-1] * len(flat)
    seen = bytearray(len(flat))
    heap = []
    for i in range(len(flat)):
        row, col = divmod(i, width)
        if row in (0, height - 1) or col in (0, width - 1):
            heap.append((flat[i], i))
            seen[i] = 1
    heapq.heapify(heap)
    order = []
    while heap:
        level, i = heapq.heappop(heap)
        order.append(i)
        row, col = divmod(i, width)
        for d_row, d_col in _NEIGHBOURS:
            r, c = row + d_row, col + d_col
            if 0 <= r < height and 0 <= c < width:
                j = r * width + c
                if not seen[j]:
                    seen[j] = 1
                    receiver[j] = i
                    heapq.heappush(heap, (max(flat[j], level), j))
    return receiver, order


def _densify(points: np.ndarray, spacing: float = 0.5) -> np.ndarray:
    """Resample a polyline at ``spacing`` px along its length."""
    if len(points) < 2:
        return points
    arc = np.concatenate([[0.0], np.cumsum(np.hypot(*np.diff(points, axis=0).T))])
    at = np.arange(0.0, arc[-1] + 1e-9, spacing)
    return np.stack([np.interp(at, arc, points[:, 0]), np.interp(at, arc, points[:, 1])], 1)


def _arc_length(points: np.ndarray) -> np.ndarray:
    return np.concatenate([[0.0], np.cumsum(np.hypot(*np.diff(points, axis=0).T))])


@dataclass
class _Drainage:
    """Where water (and ice) flows on a coarse copy of the terrain: cells are flat indices."""

    coarse: np.ndarray  # the blurred, subsampled elevation (m)
    step: int  # full-resolution pixels per coarse cell
    offset: int  # full-resolution pixel of the first cell's centre
    receiver: list[int]  # the downhill neighbour of each cell, -1 off the edge
    order: list[int]  # the cells from low to high

    @property
    def width(self) -> int:
        return self.coarse.shape[1]

    def to_pixels(self, cells: list[int]) -> np.ndarray:
        """(n, 2) float (row, col) full-resolution pixels of coarse cells."""
        rows, cols = np.divmod(np.asarray(cells), self.width)
        return np.stack([rows * self.step + self.offset, cols * self.step + self.offset], 1).astype(
            np.float64
        )


@dataclass
class _IceFlow:
    """How ice leaves the basins above the first ELA, along the drainage."""

    above: list[bool]  # the cell is above the first ELA
    ice: list[float]  # above-ELA cells upstream of each cell, itself included
    donor: list[int]  # the upstream neighbour that brings the most ice, -1 if none


@dataclass
class _Route:
    """A tongue's centre line on the coarse grid, before smoothing."""

    line: list[int]  # cells from inside the basin down to the snout
    crossing: int  # index in ``line`` of the gate (the first cell below the ELA)
    size: float  # the basin's ice relative to the biggest basin's, square-rooted
    join: tuple[int, int] | None  # (trunk tongue, the trunk's cell it runs into) for a tributary
    forefield: list[int]  # cells below the snout; empty for a tributary


def _coarse_drainage(elevation: np.ndarray) -> _Drainage:
    step = max(1, int(round(min(elevation.shape) / _COARSE_CELLS)))
    offset = step // 2
    coarse = blur(elevation, 0.8 * step)[offset::step, offset::step]
    receiver, order = _drainage(coarse)
    return _Drainage(coarse, step, offset, receiver, order)


def _first_ela(drain: _Drainage, share: float, params: TongueParameters, pixel_m: float) -> float:
    """The ELA above which the gentle ground (steep walls stay bare) is the accumulation share."""
    coarse = drain.coarse
    d_row, d_col = np.gradient(coarse, pixel_m * drain.step)
    gentle = np.degrees(np.arctan(np.hypot(d_row, d_col))) < _STEEP
    wanted = params.accumulation_share * share * coarse.size
    return float(np.quantile(coarse[gentle], max(0.0, 1.0 - wanted / max(gentle.sum(), 1))))


def _ice_flow(drain: _Drainage, ela: float) -> _IceFlow:
    above = (drain.coarse.ravel() > ela).tolist()
    ice = [float(a) for a in above]
    donor = [-1] * len(ice)
    for i in reversed(drain.order):  # high to low: a cell's inflow is complete before it passes on
        r = drain.receiver[i]
        if r >= 0:
            ice[r] += ice[i]
            if donor[r] < 0 or ice[i] > ice[donor[r]]:
                donor[r] = i
    return _IceFlow(above, ice, donor)


def _trace_route(
    gate: int, length: float, size: float, drain: _Drainage, flow: _IceFlow, taken: dict[int, int]
) -> _Route | None:
    """Up from a gate into its basin, down the valley for ``length`` cells (or into a tongue
    already traced), then the forefield below the snout; None if the tongue is too short."""
    line, upstream = [gate], flow.donor[gate]
    while upstream >= 0 and flow.above[upstream] and len(line) < 0.3 * length + 2:
        line.insert(0, upstream)  # up into the basin: the tongue's source
        upstream = flow.donor[upstream]
    crossing, travelled, cell, join = len(line) - 1, 0.0, gate, None
    while travelled < length:
        nxt = drain.receiver[cell]
        if nxt < 0:
            break
        if nxt in taken:
            join = (taken[nxt], nxt)
            break
        travelled += 1.0 if abs(nxt - cell) in (1, drain.width) else 2**0.5
        line.append(nxt)
        cell = nxt
    if len(line) - crossing < 3:
        return None
    # The forefield: the valley below the snout, where the glacier reached not long ago.
    below_snout = [cell]
    while join is None and len(below_snout) < 0.3 * length + 3:
        nxt = drain.receiver[below_snout[-1]]
        if nxt < 0 or nxt in taken:
            break
        below_snout.append(nxt)
    return _Route(line, crossing, size, join, below_snout if join is None else [])


def _trace_routes(
    drain: _Drainage, flow: _IceFlow, params: TongueParameters, pixel_m: float, rng: np.random.Generator
) -> list[_Route]:
    """The tongues' coarse centre lines, from the gates that carry the most ice."""
    ice = flow.ice
    # Gates: the first below-ELA cell of a line that leaves ice, ranked by the ice it carries.
    gates = [
        i for i in range(len(ice)) if not flow.above[i] and flow.donor[i] >= 0 and flow.above[flow.donor[i]]
    ]
    gates.sort(key=lambda i: (-ice[i], i))
    min_ice = max(2.0, 0.008 * sum(flow.above))  # smaller basins feed no tongue
    taken: dict[int, int] = {}  # coarse cell -> tongue index, for cells on a tongue's centre line
    routes: list[_Route] = []
    biggest = ice[gates[0]] if gates else 1.0
    length_factors = rng.uniform(0.75, 1.0, size=params.count)
    for gate in gates:
        if len(routes) >= params.count or ice[gate] < min_ice:
            break
        if gate in taken:
            continue
        size = (ice[gate] / biggest) ** 0.5
        length_factor = length_factors[len(routes)]
        length = params.longest_m / pixel_m * length_factor * max(size, 0.2) ** 0.5 / drain.step  # in cells
        route = _trace_route(gate, length, size, drain, flow, taken)
        if route is None:
            continue
        for c in route.line:
            taken.setdefault(c, len(routes))
        routes.append(route)
    return routes


def _tongue(
    route: _Route, tongues: list[Tongue], drain: _Drainage, params: TongueParameters, pixel_m: float
) -> Tongue:
    """A coarse route as a smooth full-resolution tongue (``tongues``: those made before it)."""
    points = drain.to_pixels(route.line)
    joined = None  # (trunk, index of the trunk's path point this tongue runs into)
    if route.join is not None:
        trunk, cell = route.join
        target = np.array(divmod(cell, drain.width), np.float64) * drain.step + drain.offset
        joined = (trunk, int(np.argmin(np.hypot(*(tongues[trunk].path - target).T))))
        points = np.vstack([points, tongues[trunk].path[joined[1]]])  # end on the trunk's line
    smooth = ndimage.gaussian_filter1d(points, 1.2, axis=0, mode="nearest")
    smooth[0], smooth[-1] = points[0], points[-1]
    crossing_point = smooth[route.crossing]
    path = _densify(smooth)
    arc = _arc_length(path)
    start = arc[int(np.argmin(np.hypot(*(path - crossing_point).T)))]
    below = np.clip(arc - start, 0.0, None)
    if joined is None:
        total = max(arc[-1] - start, 1.0)
    else:  # a tributary counts on down its trunk, so debris lies where the trunk's does
        trunk_tongue = tongues[joined[0]]
        remaining = (1.0 - trunk_tongue.position[joined[1]]) * trunk_tongue.length
        total = max(arc[-1] - start + remaining, 1.0)
    position = below / total
    taper = 1.0 - 0.15 * np.clip(below / max(arc[-1] - start, 1.0), 0, 1)
    # Valley glaciers are about as wide whatever their basin: bigger basins make longer tongues.
    half_width = params.half_width_m / pixel_m * max(route.size, 0.4) ** 0.25 * taper
    forefield = np.empty((0, 2))
    if len(route.forefield) > 1:
        below_points = drain.to_pixels(route.forefield)
        below_points[0] = path[-1]
        forefield = _densify(ndimage.gaussian_filter1d(below_points, 1.0, axis=0, mode="nearest"))
    return Tongue(path, position, half_width, float(total), joined is not None, forefield)


def _route_tongues(
    elevation: np.ndarray, share: float, params: TongueParameters, pixel_m: float, rng: np.random.Generator
) -> tuple[list[Tongue], float]:
    """Tongue centre lines (full-resolution pixels) and the first ELA."""
    drain = _coarse_drainage(elevation)
    ela = _first_ela(drain, share, params, pixel_m)
    routes = _trace_routes(drain, _ice_flow(drain, ela), params, pixel_m, rng)
    tongues: list[Tongue] = []
    for route in routes:
        tongues.append(_tongue(route, tongues, drain, params, pixel_m))
    return tongues, ela


@dataclass
class _TongueRaster:
    """Per-pixel tongue fields (see GlacierLayout) and the terrain carved under the tongues."""

    carved: np.ndarray
    tongue_id: np.ndarray
    position: np.ndarray
    length: np.ndarray
    flank_distance: np.ndarray
    flank_position: np.ndarray


def _path_surface(tongues: list[Tongue], elevation: np.ndarray, scale_px: float) -> np.ndarray:
    """The glacier surface along each centre line: the smoothed valley floor, never rising downhill."""
    shape = elevation.shape
    floor = blur(elevation, 4.0 * scale_px + 0.5)
    surface = []
    for t in tongues:
        r = np.clip(np.round(t.path[:, 0]).astype(int), 0, shape[0] - 1)
        c = np.clip(np.round(t.path[:, 1]).astype(int), 0, shape[1] - 1)
        surface.append(np.minimum.accumulate(floor[r, c]))
    return np.concatenate(surface)


def _rasterize_tongues(
    tongues: list[Tongue],
    elevation: np.ndarray,
    edge_noise: np.ndarray,
    moraine_height: float,
    pixel_m: float,
) -> _TongueRaster:
    """Every pixel's nearest centre-line point decides its tongue, position and the trough depth."""
    shape = elevation.shape
    scale_px = 30.0 / pixel_m
    points = np.concatenate([t.path for t in tongues])
    ids = np.concatenate([np.full(len(t.path), k + 1) for k, t in enumerate(tongues)])
    along = np.concatenate([t.position for t in tongues])
    widths = np.concatenate([t.half_width for t in tongues])
    lengths = np.concatenate([np.full(len(t.path), t.length) for t in tongues])
    surface = _path_surface(tongues, elevation, scale_px)
    index_image = np.full(shape, -1)
    r = np.clip(np.round(points[:, 0]).astype(int), 0, shape[0] - 1)
    c = np.clip(np.round(points[:, 1]).astype(int), 0, shape[1] - 1)
    index_image[r, c] = np.arange(len(points))  # later (lower, tributary) points win ties
    distance, (near_r, near_c) = ndimage.distance_transform_edt(index_image < 0, return_indices=True)
    nearest = index_image[near_r, near_c]
    half_width = widths[nearest] * (1.0 + 0.12 * edge_noise)
    inside = distance <= half_width
    tongue_id, position, length = np.zeros(shape, np.int32), np.zeros(shape), np.zeros(shape)
    tongue_id[inside] = ids[nearest][inside]
    position[inside] = along[nearest][inside]
    length[inside] = lengths[nearest][inside]
    beyond = np.clip(distance - half_width, 0.0, None)
    flank_distance = np.where(distance <= half_width + 12 * scale_px, beyond, np.inf)
    flank_position = np.where(np.isfinite(flank_distance), along[nearest], 0.0)
    # A U-shaped trough: flat floor under the ice, walls rising beside it.
    trough = surface[nearest] + np.maximum(distance - 0.8 * half_width, 0.0) * pixel_m * _WALL_SLOPE
    # Blur the cut, not the terrain: the trough's rim stays smooth, with no cast-shadow stripes
    # from where the nearest centre-line point jumps.
    cut = blur(np.maximum(elevation - trough, 0.0), 1.5 * scale_px + 0.5)
    carved = elevation - cut
    # Lateral moraine ridges along the lower tongue, just outside the ice.
    ridge_width = 2.0 * scale_px + 0.5
    ridge = np.exp(-(((beyond - ridge_width) / ridge_width) ** 2)) * np.clip(along[nearest] * 2 - 0.4, 0, 1)
    carved = carved + moraine_height * np.where(distance > half_width, ridge, 0.0)
    return _TongueRaster(carved, tongue_id, position, length, flank_distance, flank_position)


def _no_tongues(elevation: np.ndarray) -> _TongueRaster:
    shape = elevation.shape
    zeros = np.zeros(shape)
    return _TongueRaster(
        elevation.copy(), np.zeros(shape, np.int32), zeros, zeros.copy(), np.full(shape, np.inf), zeros.copy()
    )


def _accumulation_areas(
    rng: np.random.Generator,
    carved: np.ndarray,
    tongue: np.ndarray,
    share: float,
    ela0: float,
    pixel_m: float,
) -> tuple[np.ndarray, float]:
    """The gentle ground above the final ELA, the remaining share of the ice; and that ELA."""
    shape = carved.shape
    scale_px = 30.0 / pixel_m
    d_row, d_col = np.gradient(carved, pixel_m)
    gentle = np.degrees(np.arctan(np.hypot(d_row, d_col))) < _STEEP
    score = carved + 60.0 * smooth_noise(rng, shape, 5 * scale_px + 0.5)
    wanted = share * tongue.size - tongue.sum()
    candidates = score[gentle & ~tongue]
    if wanted > 0 and candidates.size:
        # Never below the ELA the tongues start from: they would drown in accumulation area.
        ela = max(float(np.quantile(candidates, max(0.0, 1.0 - wanted / candidates.size))), ela0)
        accumulation = gentle & ~tongue & (score > ela)
    else:
        ela, accumulation = float(carved.max()), np.zeros(shape, bool)
    return ndimage.binary_closing(accumulation, iterations=1) & ~tongue, ela


def glacier_layout(
    rng: np.random.Generator, elevation: np.ndarray, share: float, params: TongueParameters, pixel_m: float
) -> GlacierLayout:
    """Tongues and accumulation areas covering about ``share`` of the image; carves the terrain."""
    scale_px = 30.0 / pixel_m  # pixels per 30 m: lengths in pixels scale with it
    tongues, ela0 = _route_tongues(elevation, share, params, pixel_m, rng)
    edge_noise = smooth_noise(rng, elevation.shape, 3.0 * scale_px + 0.5)
    moraine_height = rng.uniform(25.0, 70.0)
    if tongues:
        raster = _rasterize_tongues(tongues, elevation, edge_noise, moraine_height, pixel_m)
    else:
        raster = _no_tongues(elevation)
    tongue = raster.tongue_id > 0
    accumulation, ela = _accumulation_areas(rng, raster.carved, tongue, share, ela0, pixel_m)
    return GlacierLayout(
        elevation=raster.carved,
        outline=tongue | accumulation,
        accumulation=accumulation,
        tongue_id=raster.tongue_id,
        tongue_position=raster.position,
        tongue_length=raster.length,
        flank_distance=raster.flank_distance,
        flank_position=raster.flank_position,
        tongues=tongues,
        ela=ela,
    )
