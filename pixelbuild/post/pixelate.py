"""The pixelate op: downscale to a target size, or detect the pixel grid of "diffusion pixel art".

Image generators draw pixel art at a non-integer, noisy scale: "pixels" are 15 or 16 screen pixels
wide, edges are blurred and flat areas carry noise. ``detect_grid`` finds that grid in two stages.

Candidates come from the edge profile of each axis (the summed absolute differences between
neighbouring columns, or rows): cell boundaries make it periodic. In the profile's zero-padded
spectrum the most prominent peak (against its neighbourhood, so the sprite silhouette's broad
low-frequency energy does not win) in the allowed band gives the main candidate, moved to its
fundamental when it is a harmonic and refined by a parabola; the next peaks and the main one's 1/2
and 1/3 are the others. The phase at a candidate's frequency gives the grid offset.

Verification then asks the image whether a candidate is a drawn grid: a drawn grid has its steps
(neighbour differences well above the noise, one per blurred edge) on cell boundaries and none in
cell middles; art already at one pixel per pixel, noise and photos have steps anywhere. A frame
that shows JPEG's 8x8 blocks counts only steps JPEG cannot make, so its block lattice is never taken
for the art's grid. Clean art (at most 256 colours, hard edges) must also have no run of one colour
narrower than a cell. The first candidate borne out wins (in a JPEG, one dividing the 8-px blocks
is moved to the coarsest of its multiples borne out too: art at 16 px makes 8 px look good there);
when none is, there is no grid and ``pixelate`` leaves the frames as they are (or,
with ``on_no_grid: fail``, fails the sprite). ``pixelate`` with ``mode: auto`` then takes each cell's
dominant colour from samples of the cell's inner part (away from blurred edges).

Determinism: the edge signals are exact integer sums and counts and the verification is integer
arithmetic; the spectral estimate is floating point, so its result is quantised to 1/1024 px before
any pixel depends on it, and all cell arithmetic after that is integer. Two machines could only
disagree if an FFT's last-bit rounding moved an estimate across a quantisation step.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import msgspec

from pixelbuild.limits import Size
from pixelbuild.post import PostContext, register
from pixelbuild.post.common import clear_transparent, from_array, to_array
from pixelbuild.post.params import Bool, Choice, Number, PixelSize, When, size_pair

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray
    from PIL import Image

    from pixelbuild.post.common import U8Array

#: Fixed-point denominator for grid periods and offsets (1/1024 px).
FIXED = 1024

MODES = ("auto", "nearest", "box", "mode")
#: What ``auto`` does with frames that have no grid: leave them at their size, or fail the sprite.
NO_GRID_CHOICES = ("keep", "fail")

#: Share of a cell (centred) that ``auto`` samples: the rest is blurred into the neighbours.
_INNER_NUM, _INNER_DEN = 3, 5
#: Samples per cell and axis are at most this many (so a cell costs at most 25 samples).
_MAX_SAMPLES = 5


class Axis(msgspec.Struct, frozen=True):
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


class Grid(msgspec.Struct, frozen=True):
    """A detected pixel grid: one ``Axis`` per direction."""

    x: Axis
    y: Axis

    @property
    def size(self) -> tuple[int, int]:
        """The output size this grid gives: (columns, rows)."""
        return self.x.count, self.y.count


# --------------------------------------------------------------------------------------- edge profile


class Edges(msgspec.Struct, frozen=True):
    """One frame's edge signals, per column edge (x) and per row edge (y).

    ``profile``: summed absolute differences between neighbouring columns (rows), the spectral signal.
    ``steps``: how many of those differences are steps (above ``threshold``, the largest of their
    neighbours), the verification signal; in a frame that shows JPEG's 8-px blocks (``blocky``, see
    ``_blocky``) only steps above ``JPEG_STEP`` count. ``exact``: the frame is clean art (at most 256
    colours, hard edges), where ``shortest`` is its narrowest run of one colour along a row (column).
    """

    profile_x: NDArray[np.int64]
    profile_y: NDArray[np.int64]
    steps_x: NDArray[np.int64]
    steps_y: NDArray[np.int64]
    blocky: bool
    threshold: int
    exact: bool
    shortest_x: int | None = None
    shortest_y: int | None = None


#: A neighbour difference counts as a step when above 5 times the median difference (about 3.4 noise
#: sigmas: noise crosses it for ~0.1% of pairs) and at least this many levels.
MIN_STEP = 12
#: JPEG's own block steps stay below this many levels at qualities of about 50 and up (the luma DC
#: quantiser is at most 16 there, and a block step is one or two of its steps).
JPEG_STEP = 40


def _differences(image: Image.Image, pixels: U8Array) -> tuple[NDArray[Any], NDArray[Any]]:
    """Absolute luma differences between neighbouring columns (H, W-1) and rows (H-1, W).

    Pillow's integer luma, plus alpha where not opaque (alpha edges count too; int16 holds 510).
    """
    import numpy as np
    luma = np.asarray(image.convert("L"))
    if int(pixels[..., 3].min()) != 255:
        signal = luma.astype(np.int16) + pixels[..., 3]
        return np.abs(np.diff(signal, axis=1)), np.abs(np.diff(signal, axis=0))
    # |a - b| in uint8 as max - min: no widening of the whole image.
    right, left = luma[:, 1:], luma[:, :-1]
    across = np.maximum(right, left)
    across -= np.minimum(right, left)
    below, above = luma[1:], luma[:-1]
    down = np.maximum(below, above)
    down -= np.minimum(below, above)
    return across, down


def frame_edges(image: Image.Image, pixels: U8Array | None = None) -> Edges:
    """The edge signals of one frame (``pixels``: ``image`` as an RGBA array, if at hand).

    Entry ``i`` of an x signal measures the edge between columns ``i`` and ``i + 1``, that is at x
    coordinate ``i + 1``. All sums and counts are exact integers.
    """
    import numpy as np
    rgba = image if image.mode == "RGBA" else image.convert("RGBA")
    if pixels is None:
        pixels = to_array(rgba)
    across, down = _differences(rgba, pixels)
    # Column sums of up to 510 * height fit int64 trivially; uint32 is enough for uint8 input.
    wide = np.int64 if across.dtype != np.uint8 else np.uint32
    profile_x = np.add.reduce(across, axis=0, dtype=wide).astype(np.int64)
    profile_y = np.add.reduce(down, axis=1, dtype=wide).astype(np.int64)
    # The median difference from every other row: a robust noise level (most neighbours of a
    # drawn grid lie inside one cell, so only noise separates them).
    counts = np.zeros(511, dtype=np.int64)
    for sample in (across[::2], down[::2]):
        if sample.size:
            counts += np.bincount(sample.reshape(-1), minlength=511)
    total = int(counts.sum())
    threshold = MIN_STEP
    if total:
        median = int(np.searchsorted(np.cumsum(counts), (total + 1) // 2))
        threshold = max(MIN_STEP, 5 * median)
    exact = rgba.getcolors(256) is not None
    # JPEG compresses the whole frame: blocks on either axis mean blocks on both. Exact frames (at
    # most 256 colours) are no JPEG.
    blocky = not exact and (_blocky(profile_x) or _blocky(profile_y))
    # In a JPEG, its seams and ringing sit at fixed places modulo 8 and would bear out the block grid
    # (or beat with any other): only steps JPEG cannot make count.
    step = max(threshold, JPEG_STEP) if blocky else threshold
    steps_x = _steps(across, step, 1)
    steps_y = _steps(down, step, 0)
    shortest_x = shortest_y = None
    if exact:
        packed = np.ascontiguousarray(pixels).view(np.uint32)[..., 0]
        across_change = packed[:, 1:] != packed[:, :-1]
        # A blurred edge passes through intermediate colours (three different ones in a row), a drawn
        # edge jumps: when most colour changes are such ramps, the frame is blurred, not exact. Every
        # 4th row tells the share well enough.
        some, rows = across_change[::4], packed[::4]
        ramps = some[:, 1:] & some[:, :-1] & (rows[:, 2:] != rows[:, :-2])
        exact = 2 * int(np.count_nonzero(ramps)) < int(np.count_nonzero(some))
        if exact:
            shortest_x = _shortest_run(across_change)
            shortest_y = _shortest_run((packed[1:] != packed[:-1]).T)
    return Edges(
        profile_x,
        profile_y,
        steps_x,
        steps_y,
        blocky,
        threshold,
        exact,
        shortest_x,
        shortest_y,
    )


def _steps(differences: NDArray[Any], threshold: int, along: int) -> NDArray[np.int64]:
    """How many steps each position along ``along`` has (summed over the other axis): differences above
    ``threshold`` that are the largest of their neighbours along the axis (ties: the first). A blurred
    edge gives one step, at its middle; a smooth gradient (a photo) gives one per slope, not one per
    pixel, so it cannot pile up steps where a grid would want them."""
    import numpy as np
    width = differences.shape[1]
    length = differences.shape[along]
    flat = np.flatnonzero(differences > threshold)
    if not flat.size:
        return np.zeros(length, dtype=np.int64)
    # Only the (few) differences above the threshold are compared with their neighbours.
    values = differences.reshape(-1)
    value = values[flat].astype(np.int64)
    stride = 1 if along == 1 else width
    place = flat % width if along == 1 else flat // width
    first = place == 0
    last = place == length - 1
    before = values[np.where(first, flat, flat - stride)].astype(np.int64)
    after = values[np.where(last, flat, flat + stride)].astype(np.int64)
    keep = (first | (value >= before)) & (last | (value > after))
    return np.bincount(place[keep], minlength=length).astype(np.int64)


def _blocky(profile: NDArray[np.int64]) -> bool:
    """Whether the edge profile shows JPEG's 8x8 blocks: at least 3 in 4 of its lattice lines (every
    8th, x = 0 mod 8) carry more edge than both neighbouring lines. A grid of any other cell size
    puts a boundary on a lattice line only now and then; the blocks put a seam on every one."""
    import numpy as np
    lattice = np.arange(7, profile.size - 1, 8)
    if lattice.size < 4:
        return False
    seams = (profile[lattice] > profile[lattice - 1]) & (profile[lattice] > profile[lattice + 1])
    return 4 * int(np.count_nonzero(seams)) >= 3 * lattice.size


def _shortest_run(changes: NDArray[np.bool_]) -> int:
    """The shortest distance between two colour changes in one row of ``changes`` (rows, positions):
    the narrowest run of one colour not touching the border; a large number when there is none."""
    import numpy as np
    flat = np.flatnonzero(changes)
    if flat.size < 2:
        return 1 << 30
    row, position = np.divmod(flat, changes.shape[1])
    same_row = row[1:] == row[:-1]
    gaps = np.diff(position)[same_row]
    return int(gaps.min()) if gaps.size else 1 << 30


def _spectrum(profile: NDArray[np.int64], length: int) -> NDArray[np.float64]:
    """Magnitude spectrum of the mean-free profile, zero-padded to ``length``."""
    import numpy as np
    centred = profile.astype(np.float64) - float(profile.mean()) if profile.size else np.zeros(1)
    return np.abs(np.fft.rfft(centred, n=length))


def _dft(profiles: Sequence[NDArray[np.int64]], frequencies: NDArray[np.float64]) -> NDArray[np.complex128]:
    """Each profile's Fourier sum at arbitrary frequencies (rows: profiles), positions at edge coordinates."""
    import numpy as np
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
    import numpy as np
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
    import numpy as np
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
) -> list[Grid] | None:
    """Detect the pixel grid of each frame: one cell size shared by all frames, offsets per frame.

    None when the frames have no grid (art already at one pixel per pixel, noise, a photo). ``square``
    assumes square cells (one period for both axes, more robust). ``max_size`` caps the grid count:
    a finer grid is coarsened to a whole multiple of its cell. ``size`` forces the count, leaving only
    the offset to detect (and never gives None).
    """
    return grids_from_edges(
        [frame_edges(frame) for frame in frames],
        [frame.size for frame in frames],
        min_cell=min_cell,
        max_cell=max_cell,
        square=square,
        max_size=max_size,
        size=size,
    )


def grids_from_edges(
    edges: Sequence[Edges],
    extents: Sequence[tuple[int, int]],
    *,
    min_cell: float = 2.0,
    max_cell: float = 64.0,
    square: bool = True,
    max_size: tuple[int, int] | None = None,
    size: tuple[int, int] | None = None,
) -> list[Grid] | None:
    """``detect_grid`` from the frames' ``frame_edges`` and (width, height) extents."""
    if size is not None:
        # Forced: the cell is the extent over the count (of the first frame; frames share a size).
        periods = [max(1, round(extents[0][axis] * FIXED / size[axis])) for axis in (0, 1)]
        confidences = [0.0, 0.0]
    else:
        found = _detect_periods(edges, extents, min_cell, max_cell, square)
        if found is None:
            return None
        periods, confidences = found
    grids = []
    for frame, (width, height) in zip(edges, extents, strict=True):
        axes = []
        for axis, profile, extent in ((0, frame.profile_x, width), (1, frame.profile_y, height)):
            period = periods[axis]
            boundary = _first_boundary(profile, period)
            cap = None
            if max_size is not None:
                cap = max_size[axis]
                period, boundary = _coarsen(profile, extent, period, boundary, cap)
            forced = size[axis] if size is not None else None
            axes.append(_axis(extent, period, boundary, confidences[axis], forced, cap))
        grids.append(Grid(axes[0], axes[1]))
    if size is None and not all(_reproduces(frame, grid) for frame, grid in zip(edges, grids, strict=True)):
        return None
    return grids


def _detect_periods(
    edges: Sequence[Edges],
    extents: Sequence[tuple[int, int]],
    min_cell: float,
    max_cell: float,
    square: bool,
) -> tuple[list[int], list[float]] | None:
    """The cell size (1/1024 px) and spectral confidence per axis, from all frames together; None when
    no candidate period is borne out by the frames' steps (see ``_verified``)."""
    import numpy as np
    longest = max(max(extent) for extent in extents)
    # Zero-padding to 8x the longest side samples each spectral peak finely enough that a parabola
    # through its top gives the cell size to about 0.2%.
    length = 1 << max(6, (8 * longest - 1).bit_length())
    lobe = max(1, round(length / longest))
    spectra: list[NDArray[np.float64]] = [
        np.sum([_spectrum(e.profile_x if axis == 0 else e.profile_y, length) for e in edges], axis=0) for axis in (0, 1)
    ]
    low, high = _band(length, min_cell, max_cell)
    # Every cell must fit at least twice into the frame: one cell is no grid.
    smallest = min(min(extent) for extent in extents)
    band = (round(min_cell * FIXED), round(min(max_cell, smallest / 2) * FIXED))
    groups = [(0, 1)] if square else [(0,), (1,)]
    periods, confidences = [0, 0], [0.0, 0.0]
    for axes in groups:
        spectrum = np.sum([spectra[axis] for axis in axes], axis=0)
        chosen = _verified(edges, axes, _candidates(spectrum, low, high, length, lobe), band)
        if chosen is None:
            return None
        confidence = _confidence(spectrum, low, high)
        for axis in axes:
            periods[axis], confidences[axis] = chosen, confidence
    return periods, confidences


def _candidates(spectrum: NDArray[np.float64], low: int, high: int, length: int, lobe: int) -> list[int]:
    """Periods (1/1024 px) worth verifying, most likely first: the most prominent peak moved to its
    fundamental (``_period``), the next most prominent peaks, and the main one's 1/2 and 1/3."""
    import numpy as np
    prominence = _prominence(spectrum, lobe)
    main = _period(spectrum, low, high, length, lobe, prominence)
    found = [main]
    if spectrum[low : high + 1].any():
        score = prominence[low : high + 1].copy()
        for _ in range(3):
            peak = int(np.argmax(score))
            if score[peak] <= 0:
                break
            found.append(max(FIXED, round(FIXED * length / _interpolate(spectrum, low + peak))))
            score[max(0, peak - lobe) : peak + lobe + 1] = -np.inf
    return [*found, main // 2, main // 3]


#: A grid is borne out when steps are at most this dense (in percent) in the middle of cells as on
#: their boundaries. Drawn grids measure 0-20 (noise and JPEG ringing give a few mid-cell steps);
#: art at one pixel per pixel, noise and photos 30-100, as their steps fall anywhere.
_MID_SHARE = 25
#: A coarser multiple of a borne-out grid must do better still: it merges cells, losing detail if wrong.
_COARSER_SHARE = 10
#: At least this many steps must lie on the boundaries of all frames together.
_MIN_STEPS = 96
#: Multiples of a borne-out grid to try (a spectrum can peak on a harmonic, or on JPEG's 8-px blocks).
_MULTIPLES = (4, 3, 2)


def _verified(
    edges: Sequence[Edges], axes: Sequence[int], candidates: Sequence[int], band: tuple[int, int]
) -> int | None:
    """The first candidate period whose grid the frames' steps bear out; None when none is. In a JPEG,
    a period that divides the 8-px blocks is moved to the coarsest of its multiples borne out too.

    A drawn grid puts its steps on cell boundaries (blur spreads them by at most a fifth of a cell)
    and leaves cell middles flat, noise aside; art already at one pixel per pixel, noise and photos
    have steps anywhere. So a period is borne out when steps in the middle fifth-to-half of cells
    are much sparser than near boundaries (``_MID_SHARE``), with enough steps to judge
    (``_MIN_STEPS``). In a frame that shows JPEG's 8-px blocks, only steps JPEG cannot make count
    (``JPEG_STEP``): its seams and ringing sit at fixed places modulo 8 and would bear out the block
    grid (or beat with any other), so a compressed frame's grid must show in strong edges.
    """
    for period in candidates:
        if band[0] <= period <= band[1] and _borne_out(edges, axes, period, _MID_SHARE):
            if any(frame.blocky for frame in edges) and _on_block_lattice(period):
                for factor in _MULTIPLES:
                    coarse = period * factor
                    if coarse <= band[1] and _borne_out(edges, axes, coarse, _COARSER_SHARE):
                        return coarse
            return period
    return None


def _on_block_lattice(period: int) -> bool:
    """Whether cells of ``period`` (1/1024 px) divide JPEG's 8-px blocks (8, 4, 8/3, 2 px, within 1%):
    a spectrum peak there may be the blocks' seams and ringing rather than the art's grid."""
    parts = 8 * FIXED / period
    return round(parts) >= 1 and abs(parts - round(parts)) <= 0.01 * parts


def _borne_out(edges: Sequence[Edges], axes: Sequence[int], period: int, share: int) -> bool:
    """Whether steps in cell middles are at most ``share`` percent as dense as near boundaries."""
    import numpy as np
    near_steps = near_places = mid_steps = mid_places = 0
    for frame in edges:
        for axis in axes:
            profile = frame.profile_x if axis == 0 else frame.profile_y
            first = _first_boundary(profile, period)
            steps = frame.steps_x if axis == 0 else frame.steps_y
            positions = np.arange(1, steps.size + 1, dtype=np.int64) * FIXED
            phase = (positions - first) % period
            distance = np.minimum(phase, period - phase)
            near = distance < max(period * 22 // 100, FIXED)
            mid = distance >= max(period * 30 // 100, 3 * FIXED // 4)
            near_steps += int(steps[near].sum())
            near_places += int(near.sum())
            mid_steps += int(steps[mid].sum())
            mid_places += int(mid.sum())
    if near_steps < _MIN_STEPS or not mid_places:
        return False
    # mid density <= share% of near density, in integers.
    return 100 * mid_steps * near_places <= share * near_steps * mid_places


def _reproduces(edges: Edges, grid: Grid) -> bool:
    """For exact frames (clean art: at most 256 colours, hard edges), whether no run of one colour is
    narrower than a cell: a clean upscale (cells of floor or ceil of the period) never has one, while
    art at one pixel per pixel has 1-pixel features whatever cell is guessed. Other frames pass."""
    if edges.shortest_x is None or edges.shortest_y is None:
        return True
    pairs = ((edges.shortest_x, grid.x), (edges.shortest_y, grid.y))
    return all(shortest * FIXED > axis.period - FIXED for shortest, axis in pairs)


def _coarsen(profile: NDArray[np.int64], extent: int, period: int, boundary: int, cap: int) -> tuple[int, int]:
    """The smallest whole multiple of ``period`` giving at most ``cap`` cells, with the one of its
    possible offsets whose boundaries carry the most edge (ties: the first)."""
    import numpy as np
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


def _period(
    spectrum: NDArray[np.float64],
    low: int,
    high: int,
    length: int,
    lobe: int,
    score: NDArray[np.float64] | None = None,
) -> int:
    """The period (1/1024 px) of the most prominent spectral peak in bins ``low..high``, moved down
    to its fundamental when it is a harmonic (``score``: the spectrum's ``_prominence``, if at hand)."""
    import numpy as np
    if not spectrum[low : high + 1].any():
        # No edges at all (a flat image): one cell as large as the search allows.
        return round(length / low * FIXED) if low else FIXED
    if score is None:
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
    import numpy as np
    band = spectrum[low : high + 1]
    floor = float(np.median(band))
    return float(band.max() / floor) if floor > 0 else 0.0


# ---------------------------------------------------------------------------------------- cell colours


def _sample_positions(axis: Axis, extent: int) -> NDArray[np.int64]:
    """(count, samples) pixel indices inside each cell's central part, clamped to the image."""
    import numpy as np
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
    import numpy as np
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
    import numpy as np
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
    import numpy as np
    return (np.arange(count + 1, dtype=np.int64) * extent) // count


def downscale_nearest(pixels: U8Array, size: tuple[int, int]) -> U8Array:
    """Pick the pixel at each target cell's centre (integer arithmetic)."""
    import numpy as np
    height, width = pixels.shape[:2]
    xs = ((2 * np.arange(size[0], dtype=np.int64) + 1) * width) // (2 * size[0])
    ys = ((2 * np.arange(size[1], dtype=np.int64) + 1) * height) // (2 * size[1])
    return np.ascontiguousarray(pixels[ys[:, None], xs[None, :]])


def downscale_box(pixels: U8Array, size: tuple[int, int]) -> U8Array:
    """Average each cell, colour weighted by alpha so transparent pixels add no colour (rounded)."""
    import numpy as np
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
    import numpy as np
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


def _check(params: Mapping[str, Any]) -> None:
    """What the declarations cannot say: a cell range that is a range, a confidence that can matter."""
    if params.get("mode") != "auto":
        return
    if params["min_cell"] >= params["max_cell"]:
        raise ValueError(f"min_cell ({params['min_cell']:g}) must be smaller than max_cell ({params['max_cell']:g})")
    if params["min_confidence"] and "size" in params:
        raise ValueError("'min_confidence' does not apply when 'size' forces the grid")


def _output_size(params: Mapping[str, Any], size: Size) -> Size:
    # A forced grid count is the output size; a detected grid has at most one cell per source pixel,
    # and a frame whose grid is unclear stays as it is.
    if "size" not in params:
        return size
    width, height = size_pair(params["size"])
    if params.get("mode", "auto") != "auto":
        return width, height
    return max(width, size[0]), max(height, size[1])


_AUTO = When("mode", "auto")


@register(
    "pixelate",
    "Downscale to one pixel per art pixel: to 'size', or to the grid detected in the image (mode 'auto').",
    Choice(
        "mode",
        MODES,
        default="auto",
        description="auto: detect the pixel grid and take each cell's dominant colour; nearest: the cell-centre "
        "pixel; box: the cell's mean; mode: the cell's most frequent colour.",
    ),
    PixelSize(
        "size",
        high=4096,
        required=When("mode", "nearest", "box", "mode"),
        description="Output size in pixels (required except in mode 'auto', where it forces the grid count).",
    ),
    PixelSize(
        "max_size",
        when=_AUTO,
        description="mode 'auto': the largest grid count allowed (cells are at least image size / max_size).",
    ),
    Number(
        "min_cell",
        1,
        1024,
        default=2,
        when=_AUTO,
        description="mode 'auto': the smallest cell size searched, in source pixels.",
    ),
    Number(
        "max_cell",
        1,
        4096,
        default=64,
        when=_AUTO,
        description="mode 'auto': the largest cell size searched, in source pixels.",
    ),
    Bool(
        "square",
        default=True,
        when=_AUTO,
        description="mode 'auto': assume square cells (one cell size for both axes; more robust).",
    ),
    Number(
        "min_confidence",
        0,
        1000,
        default=0,
        when=_AUTO,
        description="mode 'auto': leave frames unchanged when the detected grid's confidence (spectral peak over "
        "median: 2-3 for noise, tens for a clear grid) is below this; 0 pixelates every frame that has a grid.",
    ),
    Choice(
        "on_no_grid",
        NO_GRID_CHOICES,
        default="keep",
        when=_AUTO,
        description="mode 'auto': what to do with frames that have no pixel grid (art already at one pixel per "
        "pixel, noise, a photo): keep leaves them at their size, fail fails the sprite.",
    ),
    at_most_one=(("size", "max_size"),),
    check=_check,
    output_size=_output_size,
)
def pixelate(frames: list[Image.Image], params: Mapping[str, Any], ctx: PostContext) -> list[Image.Image]:
    """Downscale to one image pixel per art pixel: to ``size``, or to the detected grid (``auto``).

    Frames without a grid (already one pixel per art pixel, noise) are left as they are, or with
    ``on_no_grid: fail`` fail the sprite. With ``min_confidence``, frames whose grid is less clear
    than that are left as they are too.
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
        grids = grids_from_edges(
            [frame_edges(frame, pixels) for frame, pixels in zip(group, arrays, strict=True)],
            [frame.size for frame in group],
            min_cell=float(params.get("min_cell", 2)),
            max_cell=float(params.get("max_cell", 64)),
            square=bool(params.get("square", True)),
            max_size=size_pair(params["max_size"]) if "max_size" in params else None,
            size=size,
        )
        if grids is None:
            if params.get("on_no_grid", "keep") == "fail":
                from pixelbuild.errors import PostError

                which = "the image"
                if len(frames) > 1:
                    which = f"frame {indices[0] + 1} ({group[0].width}x{group[0].height})"
                raise PostError(
                    f"pixelate found no pixel grid in {which} between min_cell {params.get('min_cell', 2)} and "
                    f"max_cell {params.get('max_cell', 64)} px: it looks like art at one pixel per pixel, or noise; "
                    "check the generation, set min_cell/max_cell around the cell size, or give 'size'"
                )
            for index in indices:
                outputs[index] = frames[index].copy()
            continue
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
