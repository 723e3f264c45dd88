"""The pixelate op: downscale to a target size, or detect the pixel grid of "diffusion pixel art".

Image generators draw pixel art at a non-integer, noisy scale: "pixels" are 15 or 16 screen pixels
wide, edges are blurred and flat areas carry noise. ``detect_grid`` finds that grid from the edge
profile of each axis (the summed absolute differences between neighbouring columns, or rows): cell
boundaries make it periodic. In the profile's zero-padded spectrum the most prominent peak (against
its neighbourhood, so the sprite silhouette's broad low-frequency energy does not win) in the allowed
band gives the cell size, moved to its fundamental when it is a harmonic, and refined by a parabola;
the phase at that frequency gives the grid offset. ``pixelate`` with ``mode: auto`` then takes each
cell's dominant colour from samples of the cell's inner part (away from blurred edges).

Determinism: the edge profiles are exact integer sums; the spectral estimate is floating point, so
its result is quantised to 1/1024 px before any pixel depends on it, and all cell arithmetic after
that is integer. Two machines could only disagree if an FFT's last-bit rounding moved an estimate
across a quantisation step.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray
from PIL import Image

from pixelbuild.post import PostContext, register
from pixelbuild.post.common import (
    U8Array,
    canonical_size,
    clear_transparent,
    from_array,
    reject_unknown,
    require_bool,
    require_choice,
    require_number,
    size_pair,
    to_array,
)

#: Fixed-point denominator for grid periods and offsets (1/1024 px).
FIXED = 1024

MODES = ("auto", "nearest", "box", "mode")
_AUTO_ONLY = ("max_size", "min_cell", "max_cell", "square", "min_confidence")
_AUTO_DEFAULTS: Mapping[str, Any] = {"min_cell": 2, "max_cell": 64, "square": True, "min_confidence": 0}

#: Share of a cell (centred) that ``auto`` samples: the rest is blurred into the neighbours.
_INNER_NUM, _INNER_DEN = 3, 5
#: Samples per cell and axis are at most this many (so a cell costs at most 25 samples).
_MAX_SAMPLES = 5


@dataclass(frozen=True, slots=True)
class Axis:
    """The grid along one axis: cell size and first boundary in 1/1024 px, cell count and confidence.

    ``first`` is the first cell's left (top) edge and may be negative: the first cell can start
    outside the image. ``confidence`` is the spectral peak over the band's median: 2-3 for noise, tens
    for a clear grid (0 when the count was forced).
    """

    period: int
    first: int
    count: int
    confidence: float

    @property
    def cell(self) -> float:
        """The cell size in source pixels."""
        return self.period / FIXED


@dataclass(frozen=True, slots=True)
class Grid:
    """A detected pixel grid: one ``Axis`` per direction."""

    x: Axis
    y: Axis

    @property
    def size(self) -> tuple[int, int]:
        """The output size this grid gives: (columns, rows)."""
        return self.x.count, self.y.count


# --------------------------------------------------------------------------------------- edge profile


def edge_profiles(image: Image.Image, pixels: U8Array | None = None) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Summed absolute differences between neighbouring columns and between neighbouring rows.

    Entry ``i`` of the column profile measures the edge between columns ``i`` and ``i + 1``, that is
    at x coordinate ``i + 1``. The signal is Pillow's integer luma (plus alpha where not opaque), and
    the sums are integers, so the profiles are exact. ``pixels`` is ``image`` as an array if at hand.
    """
    rgba = image if image.mode == "RGBA" else image.convert("RGBA")
    if pixels is None:
        pixels = to_array(rgba)
    luma = np.asarray(rgba.convert("L"))
    if int(pixels[..., 3].min()) != 255:
        # Alpha edges count too; int16 holds luma + alpha (at most 510).
        signal = luma.astype(np.int16) + pixels[..., 3]
        return (
            np.abs(np.diff(signal, axis=1)).sum(axis=0, dtype=np.int64),
            np.abs(np.diff(signal, axis=0)).sum(axis=1, dtype=np.int64),
        )
    # |a - b| in uint8 as max - min: no widening of the whole image. Column sums of up to
    # 255 * height fit uint32 for any image below 16 million rows.
    right, left = luma[:, 1:], luma[:, :-1]
    across = np.maximum(right, left)
    across -= np.minimum(right, left)
    below, above = luma[1:], luma[:-1]
    down = np.maximum(below, above)
    down -= np.minimum(below, above)
    return (
        np.add.reduce(across, axis=0, dtype=np.uint32).astype(np.int64),
        np.add.reduce(down, axis=1, dtype=np.uint32).astype(np.int64),
    )


def _spectrum(profile: NDArray[np.int64], length: int) -> NDArray[np.float64]:
    """Magnitude spectrum of the mean-free profile, zero-padded to ``length``."""
    centred = profile.astype(np.float64) - float(profile.mean()) if profile.size else np.zeros(1)
    return np.abs(np.fft.rfft(centred, n=length))


def _dft(profiles: Sequence[NDArray[np.int64]], frequencies: NDArray[np.float64]) -> NDArray[np.complex128]:
    """Each profile's Fourier sum at arbitrary frequencies (rows: profiles), positions at edge coordinates."""
    longest = max(profile.size for profile in profiles)
    positions = np.arange(1, longest + 1, dtype=np.float64)
    basis = np.exp(np.outer(positions, frequencies) * (-2j * math.pi))
    result = np.zeros((len(profiles), frequencies.size), dtype=np.complex128)
    for row, profile in enumerate(profiles):
        if profile.size:
            centred = profile.astype(np.float64) - float(profile.mean())
            result[row] = centred @ basis[: profile.size]
    return result


def _band(length: int, min_cell: float, max_cell: float) -> tuple[int, int]:
    """The spectrum bins of periods between ``min_cell`` and ``max_cell``."""
    low = max(1, math.ceil(length / max_cell))
    high = min(length // 2, math.floor(length / min_cell))
    return low, max(low, high)


def _prominence(spectrum: NDArray[np.float64], lobe: int) -> NDArray[np.float64]:
    """Each bin's magnitude over the mean of its surroundings (4 lobes either side, own lobe left out).

    A sprite's silhouette makes the edge profile's envelope, whose spectrum is strong but broad at
    low frequencies; a pixel grid's peak is narrow. Comparing with the neighbourhood lets the grid
    win where raw magnitude would pick the silhouette.
    """
    size = spectrum.size
    totals = np.concatenate([[0.0], np.cumsum(spectrum)])
    index = np.arange(size)

    def window(half: int) -> tuple[NDArray[np.float64], NDArray[np.int64]]:
        start = np.clip(index - half, 0, size)
        stop = np.clip(index + half + 1, 0, size)
        return totals[stop] - totals[start], stop - start

    outer_sum, outer_count = window(4 * lobe)
    inner_sum, inner_count = window(lobe)
    surroundings = (outer_sum - inner_sum) / np.maximum(outer_count - inner_count, 1)
    result: NDArray[np.float64] = spectrum - surroundings
    return result


def _interpolate(spectrum: NDArray[np.float64], peak: int) -> float:
    """The peak position in bins, refined by a parabola through the peak bin and its neighbours."""
    if not 0 < peak < spectrum.size - 1:
        return float(peak)
    left, centre, right = spectrum[peak - 1], spectrum[peak], spectrum[peak + 1]
    curvature = left - 2.0 * centre + right
    if curvature >= 0:
        return float(peak)
    return float(peak + 0.5 * (left - right) / curvature)


def _first_boundary(profile: NDArray[np.int64], period: int) -> int:
    """Where the first cell boundary lies (1/1024 px, in [0, period)) for a known period."""
    if not profile.size or not profile.any():
        return 0
    value = _dft([profile], np.array([FIXED / period]))[0, 0]
    angle = -math.atan2(value.imag, value.real)  # in (-pi, pi]
    phase = round(angle / (2.0 * math.pi) * period)
    return phase % period


def _axis(
    extent: int, period: int, boundary: int, confidence: float, count: int | None, cap: int | None = None
) -> Axis:
    """Lay cells of ``period`` through ``boundary`` over ``extent`` pixels: keep those mostly inside."""
    total = extent * FIXED
    first = boundary % period
    if count is not None:
        # A forced count: start at the boundary nearest the image edge and take ``count`` cells.
        if first * 2 > period:
            first -= period
        return Axis(period, first, count, confidence)
    if first * 2 >= period:  # the partial cell before ``first`` is at least half a cell: keep it
        first -= period
    cells = 0
    while first + (cells + 1) * period <= total or (total - (first + cells * period)) * 2 > period:
        cells += 1
    if cap is not None:
        cells = min(cells, cap)
    return Axis(period, first, max(1, cells), confidence)


def detect_grid(
    frames: Sequence[Image.Image],
    *,
    min_cell: float = 2.0,
    max_cell: float = 64.0,
    square: bool = True,
    max_size: tuple[int, int] | None = None,
    size: tuple[int, int] | None = None,
) -> list[Grid]:
    """Detect the pixel grid of each frame: one cell size shared by all frames, offsets per frame.

    ``square`` assumes square cells (one period for both axes, more robust). ``max_size`` caps the
    grid count: a finer grid is coarsened to a whole multiple of its cell. ``size`` forces the count,
    leaving only the offset to detect.
    """
    profiles = [edge_profiles(frame) for frame in frames]
    return grids_from_profiles(
        profiles,
        [frame.size for frame in frames],
        min_cell=min_cell,
        max_cell=max_cell,
        square=square,
        max_size=max_size,
        size=size,
    )


def grids_from_profiles(
    profiles: Sequence[tuple[NDArray[np.int64], NDArray[np.int64]]],
    extents: Sequence[tuple[int, int]],
    *,
    min_cell: float = 2.0,
    max_cell: float = 64.0,
    square: bool = True,
    max_size: tuple[int, int] | None = None,
    size: tuple[int, int] | None = None,
) -> list[Grid]:
    """``detect_grid`` from the frames' ``edge_profiles`` and (width, height) extents."""
    if size is not None:
        # Forced: the cell is the extent over the count (of the first frame; frames share a size).
        periods = [max(1, round(extents[0][axis] * FIXED / size[axis])) for axis in (0, 1)]
        confidences = [0.0, 0.0]
    else:
        periods, confidences = _detect_periods(profiles, extents, min_cell, max_cell, square)
    grids = []
    for (columns, rows), (width, height) in zip(profiles, extents, strict=True):
        axes = []
        for axis, profile, extent in ((0, columns, width), (1, rows, height)):
            period = periods[axis]
            boundary = _first_boundary(profile, period)
            cap = None
            if max_size is not None:
                cap = max_size[axis]
                period, boundary = _coarsen(profile, extent, period, boundary, cap)
            forced = size[axis] if size is not None else None
            axes.append(_axis(extent, period, boundary, confidences[axis], forced, cap))
        grids.append(Grid(axes[0], axes[1]))
    return grids


def _detect_periods(
    profiles: Sequence[tuple[NDArray[np.int64], NDArray[np.int64]]],
    extents: Sequence[tuple[int, int]],
    min_cell: float,
    max_cell: float,
    square: bool,
) -> tuple[list[int], list[float]]:
    """The cell size (1/1024 px) and confidence per axis, from all frames' spectra together."""
    longest = max(max(extent) for extent in extents)
    # Zero-padding to 8x the longest side samples each spectral peak finely enough that a parabola
    # through its top gives the cell size to about 0.2%.
    length = 1 << max(6, (8 * longest - 1).bit_length())
    lobe = max(1, round(length / longest))
    spectra: list[NDArray[np.float64]] = [
        np.sum([_spectrum(p[axis], length) for p in profiles], axis=0) for axis in (0, 1)
    ]
    bands = [_band(length, min_cell, max_cell) for _ in (0, 1)]
    if square:
        low, high = bands[0]
        combined = spectra[0] + spectra[1]
        period = _period(combined, low, high, length, lobe)
        confidence = _confidence(combined, low, high)
        return [period, period], [confidence, confidence]
    periods, confidences = [], []
    for axis in (0, 1):
        low, high = bands[axis]
        periods.append(_period(spectra[axis], low, high, length, lobe))
        confidences.append(_confidence(spectra[axis], low, high))
    return periods, confidences


def _coarsen(profile: NDArray[np.int64], extent: int, period: int, boundary: int, cap: int) -> tuple[int, int]:
    """The smallest whole multiple of ``period`` giving at most ``cap`` cells, with the one of its
    possible offsets whose boundaries carry the most edge (ties: the first)."""
    factor = max(1, -(-extent * FIXED // (period * cap)))
    if factor == 1:
        return period, boundary
    coarse = period * factor
    best, best_score = 0, -1
    for shift in range(factor):
        start = (boundary + shift * period) % coarse
        positions = (start + np.arange(0, extent * FIXED + coarse, coarse, dtype=np.int64) + FIXED // 2) // FIXED
        inside = positions[(positions >= 1) & (positions <= profile.size)]
        score = int(profile[inside - 1].sum())
        if score > best_score:
            best, best_score = shift, score
    return coarse, (boundary + best * period) % coarse


#: A peak at 1/k of the chosen frequency at least this strong (relative) means the chosen peak was
#: a harmonic of the real grid: sharp edges give harmonics as strong as the fundamental.
_SUBHARMONIC_SHARE = 0.5


def _period(spectrum: NDArray[np.float64], low: int, high: int, length: int, lobe: int) -> int:
    """The period (1/1024 px) of the most prominent spectral peak in bins ``low..high``, moved down
    to its fundamental when it is a harmonic."""
    if not spectrum[low : high + 1].any():
        # No edges at all (a flat image): one cell as large as the search allows.
        return round(length / low * FIXED) if low else FIXED
    score = _prominence(spectrum, lobe)
    peak = low + int(np.argmax(score[low : high + 1]))
    moved = True
    while moved:
        moved = False
        for divisor in (2, 3):
            centre = round(_interpolate(spectrum, peak) / divisor)
            # Strictly below the current peak, so the search always ends.
            start, stop = max(low, centre - lobe // 2), min(high, centre + lobe // 2, peak - 1)
            if start > stop:
                continue
            candidate = start + int(np.argmax(score[start : stop + 1]))
            if score[candidate] >= _SUBHARMONIC_SHARE * score[peak]:
                peak, moved = candidate, True
                break
    return max(FIXED, round(FIXED * length / _interpolate(spectrum, peak)))


def _confidence(spectrum: NDArray[np.float64], low: int, high: int) -> float:
    """The band's peak over its median: about 2-3 for noise, tens for a clear grid."""
    band = spectrum[low : high + 1]
    floor = float(np.median(band))
    return float(band.max() / floor) if floor > 0 else 0.0


# ---------------------------------------------------------------------------------------- cell colours


def _sample_positions(axis: Axis, extent: int) -> NDArray[np.int64]:
    """(count, samples) pixel indices inside each cell's central part, clamped to the image."""
    samples = max(1, min(_MAX_SAMPLES, (axis.period * _INNER_NUM) // (_INNER_DEN * FIXED)))
    span = axis.period * _INNER_NUM // _INNER_DEN
    cells = np.arange(axis.count, dtype=np.int64)
    centres = axis.first + cells * axis.period + axis.period // 2
    offsets = ((2 * np.arange(samples, dtype=np.int64) - (samples - 1)) * span) // (2 * samples)
    positions: NDArray[np.int64] = np.clip((centres[:, None] + offsets[None, :]) // FIXED, 0, extent - 1)
    return positions


def _middle(stack: list[U8Array]) -> U8Array:
    """Element-wise median of equally shaped arrays: an odd-even transposition sort, then the middle.

    A sorting network over whole arrays costs a few vectorised min/max calls, where ``np.median``
    or ``np.partition`` over thousands of tiny groups would pay per-group overhead.
    """
    values = list(stack)
    for round_index in range(len(values)):
        for i in range(round_index % 2, len(values) - 1, 2):
            low = np.minimum(values[i], values[i + 1])
            values[i + 1] = np.maximum(values[i], values[i + 1])
            values[i] = low
    return values[(len(values) - 1) // 2]


def grid_colours(pixels: U8Array, grid: Grid) -> U8Array:
    """Each cell's dominant colour, from samples of the cell's inner part (clear of blurred edges).

    Per channel, the median of the sample rows' medians: a robust estimate that vectorises well.
    Fully transparent cells come out as (0, 0, 0, 0).
    """
    height, width = pixels.shape[:2]
    xs = _sample_positions(grid.x, width)
    ys = _sample_positions(grid.y, height)
    packed = np.ascontiguousarray(pixels).reshape(-1).view(np.uint32)
    # samples[row, col, sample_y, sample_x, channel]
    index = ys[:, None, :, None] * width + xs[None, :, None, :]
    samples = packed[index].view(np.uint8).reshape(*index.shape, 4)
    transparent = samples[..., 3] == 0
    if transparent.any():
        # Invisible samples alternate between black and white so they do not drag the colour median
        # of the visible samples one way (the alpha median still decides whether the cell is empty).
        sample_y, sample_x = samples.shape[2:4]
        parity = (np.arange(sample_y)[:, None] + np.arange(sample_x)[None, :]) % 2
        extreme = np.where(parity == 0, 0, 255).astype(np.uint8)
        samples = samples.copy()
        samples[..., :3] = np.where(transparent[..., None], extreme[..., None], samples[..., :3])
    # Sample axes first, so that each sample's plane is one contiguous block for the network.
    planes = np.ascontiguousarray(np.moveaxis(samples, (2, 3), (0, 1)))
    row_medians = _middle([planes[:, i] for i in range(planes.shape[1])])
    result = np.ascontiguousarray(_middle(list(row_medians)))
    return clear_transparent(result)


# -------------------------------------------------------------------------------------- fixed sizes


def _edges(extent: int, count: int) -> NDArray[np.int64]:
    """Integer cell boundaries splitting ``extent`` pixels into ``count`` cells (each non-empty if
    count <= extent)."""
    return (np.arange(count + 1, dtype=np.int64) * extent) // count


def downscale_nearest(pixels: U8Array, size: tuple[int, int]) -> U8Array:
    """Pick the pixel at each target cell's centre (integer arithmetic)."""
    height, width = pixels.shape[:2]
    xs = ((2 * np.arange(size[0], dtype=np.int64) + 1) * width) // (2 * size[0])
    ys = ((2 * np.arange(size[1], dtype=np.int64) + 1) * height) // (2 * size[1])
    return np.ascontiguousarray(pixels[ys[:, None], xs[None, :]])


def downscale_box(pixels: U8Array, size: tuple[int, int]) -> U8Array:
    """Average each cell, colour weighted by alpha so transparent pixels add no colour (rounded)."""
    height, width = pixels.shape[:2]
    if size[0] > width or size[1] > height:
        return downscale_nearest(pixels, size)
    data = pixels.astype(np.int64)
    alpha = data[..., 3:4]
    weighted = np.concatenate([data[..., :3] * alpha, alpha], axis=2)
    x_edges, y_edges = _edges(width, size[0]), _edges(height, size[1])
    sums = np.add.reduceat(np.add.reduceat(weighted, y_edges[:-1], axis=0), x_edges[:-1], axis=1)
    areas = np.outer(np.diff(y_edges), np.diff(x_edges))[..., None]
    alpha_sum = sums[..., 3:4]
    colour = (sums[..., :3] + alpha_sum // 2) // np.maximum(alpha_sum, 1)
    mean_alpha = (alpha_sum + areas // 2) // areas
    result = np.concatenate([colour, mean_alpha], axis=2).astype(np.uint8)
    return clear_transparent(result)


def downscale_mode(pixels: U8Array, size: tuple[int, int]) -> U8Array:
    """The most frequent exact colour of each cell (ties: the smallest RGBA value)."""
    height, width = pixels.shape[:2]
    if size[0] > width or size[1] > height:
        return downscale_nearest(pixels, size)
    clean = clear_transparent(pixels.copy())
    x_cells = np.repeat(np.arange(size[0], dtype=np.uint64), np.diff(_edges(width, size[0])))
    y_cells = np.repeat(np.arange(size[1], dtype=np.uint64), np.diff(_edges(height, size[1])))
    cell = y_cells[:, None] * np.uint64(size[0]) + x_cells[None, :]
    packed = clean.view(">u4")[..., 0].astype(np.uint64)  # RGBA big-endian: sorts by R, G, B, A
    keys, counts = np.unique(((cell << np.uint64(32)) | packed).ravel(), return_counts=True)
    cells = keys >> np.uint64(32)
    # Within each cell, the highest count first, then the smallest colour (keys are sorted by colour).
    order = np.lexsort((keys, -counts, cells))
    _, first = np.unique(cells[order], return_index=True)
    winners = (keys[order][first] & np.uint64(0xFFFFFFFF)).astype(">u4")
    result: U8Array = winners.view(np.uint8).reshape(size[1], size[0], 4).copy()
    return result


# ------------------------------------------------------------------------------------------------ op


def _normalise(params: dict[str, Any]) -> dict[str, Any]:
    for key in ("size", "max_size"):
        if key in params:
            params[key] = canonical_size(params[key])
    if params.get("mode") == "auto":
        for key, value in _AUTO_DEFAULTS.items():
            params.setdefault(key, value)
    return params


def _check(params: Mapping[str, Any]) -> None:
    reject_unknown("pixelate", params, ("mode", "size", *_AUTO_ONLY))
    mode = require_choice(params, "mode", MODES)
    if "size" in params:
        width, height = size_pair(params["size"])
        if not (1 <= width <= 4096 and 1 <= height <= 4096):
            raise ValueError(f"pixelate size must be 1..4096 per side, got {width}x{height}")
    if mode != "auto":
        if "size" not in params:
            raise ValueError(f"pixelate mode '{mode}' needs 'size' (an integer or [width, height])")
        stray = [key for key in _AUTO_ONLY if key in params]
        if stray:
            raise ValueError(f"'{stray[0]}' only applies to pixelate mode 'auto', not '{mode}'")
        return
    if "size" in params and "max_size" in params:
        raise ValueError("give pixelate either 'size' (forces the grid count) or 'max_size' (caps it)")
    if "max_size" in params:
        width, height = size_pair(params["max_size"], "max_size")
        if width < 1 or height < 1:
            raise ValueError(f"max_size must be positive, got {width}x{height}")
    min_cell = require_number(params, "min_cell", 1.0, 1024.0)
    max_cell = require_number(params, "max_cell", 1.0, 4096.0)
    if min_cell >= max_cell:
        raise ValueError(f"min_cell ({min_cell:g}) must be smaller than max_cell ({max_cell:g})")
    require_bool(params, "square")
    confidence = require_number(params, "min_confidence", 0.0, 1000.0)
    if confidence and "size" in params:
        raise ValueError("'min_confidence' does not apply when 'size' forces the grid")


@register("pixelate", check=_check, defaults={"mode": "auto"}, normalise=_normalise)
def pixelate(frames: list[Image.Image], params: Mapping[str, Any], ctx: PostContext) -> list[Image.Image]:
    """Downscale to one image pixel per art pixel: to ``size``, or to the detected grid (``auto``).

    With ``min_confidence``, frames whose grid is less clear than that are left as they are (an image
    that is already one pixel per art pixel has no grid to find).
    """
    mode = params.get("mode", "auto")
    size = size_pair(params["size"]) if "size" in params else None
    if mode != "auto":
        assert size is not None
        function = {"nearest": downscale_nearest, "box": downscale_box, "mode": downscale_mode}[mode]
        return [from_array(function(to_array(frame), size)) for frame in frames]
    # Frames of one size share a cell size; a batch of mixed sizes is detected per size group.
    groups: dict[tuple[int, int], list[int]] = {}
    for index, frame in enumerate(frames):
        groups.setdefault(frame.size, []).append(index)
    outputs: dict[int, Image.Image] = {}
    for indices in groups.values():
        group = [frames[i] for i in indices]
        arrays = [to_array(frame) for frame in group]
        grids = grids_from_profiles(
            [edge_profiles(frame, pixels) for frame, pixels in zip(group, arrays, strict=True)],
            [frame.size for frame in group],
            min_cell=float(params.get("min_cell", 2)),
            max_cell=float(params.get("max_cell", 64)),
            square=bool(params.get("square", True)),
            max_size=size_pair(params["max_size"]) if "max_size" in params else None,
            size=size,
        )
        # Frames of one animation keep one output size: the first frame's grid count.
        count_x, count_y = grids[0].size
        if min(grids[0].x.confidence, grids[0].y.confidence) < float(params.get("min_confidence", 0)):
            for index in indices:
                outputs[index] = frames[index].copy()
            continue
        for index, pixels, grid in zip(indices, arrays, grids, strict=True):
            same = Grid(
                Axis(grid.x.period, grid.x.first, count_x, grid.x.confidence),
                Axis(grid.y.period, grid.y.first, count_y, grid.y.confidence),
            )
            outputs[index] = from_array(grid_colours(pixels, same))
    return [outputs[index] for index in range(len(frames))]
