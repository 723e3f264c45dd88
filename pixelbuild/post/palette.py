"""The palette op: reduce to N colours, or map onto a fixed palette, optionally dithered.

Colour distances, box statistics, k-means centroids (rounded integer means), dither thresholds and
diffused errors are integer arithmetic; the few floating-point steps (comparing split scores and
mix residuals) are single IEEE operations on exact integers, never order-dependent sums, so a pixel
cannot flip between machines. Fully transparent pixels are left out of palette building and come
out as (0, 0, 0, 0); other pixels keep their alpha and get a palette colour.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from fractions import Fraction
from typing import TYPE_CHECKING, Any

from pixelbuild.post import PostContext, register
from pixelbuild.post.common import clear_transparent, from_array, to_array
from pixelbuild.post.palette_files import BUILTIN_PALETTES, MAX_COLOURS, parse_palette
from pixelbuild.post.params import Choice, CountOrColors, File, Int, Number, When, parse_color

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray
    from PIL import Image

    from pixelbuild.post.common import U8Array

    IntArray = NDArray[np.int64]

#: Channel weights of the colour distance (green matters most to the eye, then blue, then red).
WEIGHTS = (2, 4, 3)

DITHERS = ("none", "ordered", "floyd-steinberg")
METHODS = ("kmeans", "median-cut")
BAYER_SIZES = (2, 4, 8)
_KMEANS_ROUNDS = 10
#: Beyond this many distinct colours, palettes are built from colours reduced to 6 bits a channel.
_MAX_DISTINCT = 1 << 15
#: Fixed-point denominator of the dither ``strength``.
_STRENGTH_ONE = 1024


# ------------------------------------------------------------------------------------------- colours


def distinct_colours(arrays: Sequence[U8Array]) -> tuple[IntArray, IntArray]:
    """The distinct RGB colours of the visible (alpha > 0) pixels, sorted, with their pixel counts."""
    import numpy as np
    packed_parts = []
    for pixels in arrays:
        visible = pixels[pixels[..., 3] > 0][:, :3].astype(np.int64)
        packed_parts.append((visible[:, 0] << 16) | (visible[:, 1] << 8) | visible[:, 2])
    packed = np.concatenate(packed_parts) if packed_parts else np.zeros(0, np.int64)
    keys, counts = np.unique(packed, return_counts=True)
    colours = np.stack([(keys >> 16) & 255, (keys >> 8) & 255, keys & 255], axis=1)
    return colours.astype(np.int64), counts.astype(np.int64)


def nearest(colours: IntArray, palette: IntArray) -> IntArray:
    """Index of the nearest palette entry (weighted squared RGB distance; ties: the lower index)."""
    import numpy as np
    if colours.shape[0] == 0:
        return np.zeros(0, dtype=np.int64)
    # |c - p|^2 = |c|^2 - 2 c.p + |p|^2 (all weighted); |c|^2 is the same for every p of a row, so
    # it is left out. Integer arithmetic keeps the comparison, ties included, exact.
    weights = np.array(WEIGHTS, dtype=np.int64)
    palette_terms = (palette * palette) @ weights
    weighted = palette * weights
    result = np.empty(colours.shape[0], dtype=np.int64)
    step = max(1, (1 << 20) // max(1, palette.shape[0]))  # bounds the distance table to a few MB
    for start in range(0, colours.shape[0], step):
        chunk = colours[start : start + step]
        distance = palette_terms[None, :] - 2 * (chunk @ weighted.T)
        result[start : start + step] = np.argmin(distance, axis=1)
    return result


def _weighted_mean(colours: IntArray, counts: IntArray) -> IntArray:
    total = int(counts.sum())
    sums: IntArray = (colours * counts[:, None]).sum(axis=0)
    return (sums + total // 2) // total


def _box_key(colours: IntArray, counts: IntArray, members: IntArray) -> tuple[int, int]:
    ranges = colours[members].max(axis=0) - colours[members].min(axis=0)
    return int(ranges.max()), int(counts[members].sum())


def median_cut(colours: IntArray, counts: IntArray, size: int) -> IntArray:
    """Split the colour set into ``size`` boxes (largest range first, at the weighted median).

    Returns each box's rounded weighted mean colour, as an (n, 3) int array with n <= size.
    """
    import numpy as np
    everything = np.arange(colours.shape[0], dtype=np.int64)
    boxes: list[tuple[tuple[int, int], IntArray]] = [(_box_key(colours, counts, everything), everything)]
    while len(boxes) < size:
        # The box with the widest channel range (then the most pixels; then the earliest) splits next.
        best = max(range(len(boxes)), key=lambda i: (boxes[i][0], -i))
        if boxes[best][0][0] == 0:
            break  # every box holds one colour
        members = boxes[best][1]
        ranges = colours[members].max(axis=0) - colours[members].min(axis=0)
        channel = int(np.argmax(ranges))
        values = colours[members, channel]
        order = np.argsort(values, kind="stable")
        members, values = members[order], values[order]
        cumulative = np.cumsum(counts[members])
        half = (int(cumulative[-1]) + 1) // 2
        # Cut between two distinct values, at the first value change after the weighted median.
        changes = np.flatnonzero(values[1:] != values[:-1]) + 1
        at = int(np.searchsorted(cumulative, half))
        after = changes[changes > at]
        cut = int(after[0]) if after.size else int(changes[-1])
        low, high = members[:cut], members[cut:]
        boxes[best : best + 1] = [
            (_box_key(colours, counts, low), low),
            (_box_key(colours, counts, high), high),
        ]
    return np.stack([_weighted_mean(colours[box], counts[box]) for _, box in boxes])


def _stats(colours: IntArray, counts: IntArray) -> IntArray:
    """Per colour: weight, weighted channel values and weighted squares (7 integer columns)."""
    import numpy as np
    weighted = colours * counts[:, None]
    return np.concatenate([counts[:, None], weighted, weighted * colours], axis=1)


def _box_error(stats: IntArray) -> tuple[Fraction, int]:
    """A box's weighted squared error (exact) and the channel holding most of it, from its summed
    ``_stats`` row."""
    total = int(stats[0])
    sums = [int(v) for v in stats[1:4]]
    squares = [int(v) for v in stats[4:7]]
    # Python ints: total * squares can pass 2**63 for large images.
    per_channel = [total * q - t * t for q, t in zip(squares, sums, strict=True)]
    channel = max(range(3), key=lambda c: (per_channel[c], -c))
    return Fraction(sum(per_channel), total), channel


def variance_cut(colours: IntArray, counts: IntArray, size: int) -> IntArray:
    """Split the colour set into ``size`` boxes: always the box with the largest squared error, on its
    worst channel, where the two halves' means are furthest apart (Otsu's between-class variance,
    cuts only between distinct values). Returns the boxes' rounded weighted means.

    Unlike the classic median cut this does not spend boxes slicing one dominant (noisy) colour.
    """
    import numpy as np
    stats = _stats(colours, counts)
    everything = np.arange(colours.shape[0], dtype=np.int64)
    whole = stats.sum(axis=0)
    boxes: list[tuple[tuple[Fraction, int], IntArray, IntArray]] = [(_box_error(whole), everything, whole)]
    while len(boxes) < size:
        best = max(range(len(boxes)), key=lambda i: (boxes[i][0][0], -i))
        (error, channel), members, total = boxes[best]
        if error == 0:
            break  # every box holds one colour
        values = colours[members, channel]
        order = np.argsort(values, kind="stable")
        members, values = members[order], values[order]
        prefix = np.cumsum(stats[members], axis=0)[:-1]
        weight_before, sum_before = prefix[:, 0], prefix[:, 1 + channel]
        weight_after, sum_after = total[0] - weight_before, total[1 + channel] - sum_before
        # w1 * w2 * (m1 - m2)^2 = (w2 * s1 - w1 * s2)^2 / (w1 * w2): exact integers, then elementwise
        # IEEE arithmetic, which is the same on every machine.
        difference = (weight_after * sum_before - weight_before * sum_after).astype(np.float64)
        score = difference * difference / (weight_before.astype(np.float64) * weight_after.astype(np.float64))
        score[values[1:] == values[:-1]] = -1.0
        cut = int(np.argmax(score)) + 1
        low_total = prefix[cut - 1]
        high_total = total - low_total
        boxes[best : best + 1] = [
            (_box_error(low_total), members[:cut], low_total),
            (_box_error(high_total), members[cut:], high_total),
        ]
    return np.stack([(box[1:4] + box[0] // 2) // box[0] for _, _, box in boxes])


def _cluster_means(colours: IntArray, counts: IntArray, assignment: IntArray, centres: IntArray) -> IntArray:
    """Rounded weighted mean of each cluster; an empty cluster keeps its centre."""
    import numpy as np
    size = centres.shape[0]
    # Float sums of integers stay exact (far below 2**53), so bincount's float weights lose nothing.
    totals = np.bincount(assignment, weights=counts, minlength=size).astype(np.int64)
    updated = centres.copy()
    filled = totals > 0
    for channel in range(3):
        sums = np.bincount(assignment, weights=colours[:, channel] * counts, minlength=size).astype(np.int64)
        updated[filled, channel] = (sums[filled] + totals[filled] // 2) // totals[filled]
    return updated


def kmeans(colours: IntArray, counts: IntArray, centres: IntArray, rounds: int = _KMEANS_ROUNDS) -> IntArray:
    """Refine ``centres`` by weighted k-means with integer (rounded) means; stops when stable."""
    import numpy as np
    assignment = nearest(colours, centres)
    for _ in range(rounds):
        centres = _cluster_means(colours, counts, assignment, centres)
        new_assignment = nearest(colours, centres)
        if np.array_equal(new_assignment, assignment):
            break
        assignment = new_assignment
    return centres


def _reduce_bits(colours: IntArray, counts: IntArray) -> tuple[IntArray, IntArray]:
    """Merge colours to 6 bits per channel (bucket centres), summing counts: bounds the work."""
    import numpy as np
    reduced = (colours >> 2 << 2) | 2
    keys = (reduced[:, 0] << 16) | (reduced[:, 1] << 8) | reduced[:, 2]
    unique, inverse = np.unique(keys, return_inverse=True)
    totals = np.zeros(unique.size, dtype=np.int64)
    np.add.at(totals, inverse.reshape(-1), counts)
    merged = np.stack([(unique >> 16) & 255, (unique >> 8) & 255, unique & 255], axis=1)
    return merged.astype(np.int64), totals


def merge_close(colours: IntArray, counts: IntArray, centres: IntArray, distance: int) -> IntArray:
    """Merge palette entries whose largest channel difference is at most ``distance``, closest pair
    first (ties: lowest indices), into their pixel-weighted mean; drop entries no colour maps to.

    Quantizing a noisy image to more colours than it has spends the spare entries on noise (a flat
    background becomes five near-identical greys); merging gives those pixels one colour back.
    """
    import numpy as np
    assignment = nearest(colours, centres)
    weight = np.bincount(assignment, weights=counts, minlength=centres.shape[0]).astype(np.int64)
    centres, weight = centres[weight > 0], weight[weight > 0]
    while centres.shape[0] > 1:
        gaps = np.abs(centres[:, None, :] - centres[None, :, :]).max(axis=2)
        np.fill_diagonal(gaps, np.iinfo(np.int64).max)
        if int(gaps.min()) > distance:
            break
        i, j = divmod(int(np.argmin(gaps)), centres.shape[0])  # row-major: lowest (i, j) first
        total = weight[i] + weight[j]
        merged = (centres[i] * weight[i] + centres[j] * weight[j] + total // 2) // total
        centres, weight = centres.copy(), weight.copy()
        centres[i], weight[i] = merged, total
        centres, weight = np.delete(centres, j, axis=0), np.delete(weight, j)
    return centres


def build_palette(arrays: Sequence[U8Array], size: int, method: str = "kmeans", min_distance: int = 0) -> IntArray:
    """An adaptive palette of at most ``size`` colours for the visible pixels of ``arrays``.

    ``kmeans``: a variance cut refined by k-means; ``median-cut``: the classic median cut. Then
    entries within ``min_distance`` are merged. Images with at most ``size`` colours keep them all.
    """
    import numpy as np
    colours, counts = distinct_colours(arrays)
    if colours.shape[0] == 0:
        return np.zeros((1, 3), dtype=np.int64)
    if colours.shape[0] <= size:
        # Already within the budget: every colour is kept, even close ones (a 16-colour sprite's
        # neighbouring shades are deliberate), so the image comes out unchanged.
        return colours
    if colours.shape[0] > _MAX_DISTINCT:
        colours, counts = _reduce_bits(colours, counts)
    if colours.shape[0] <= size:
        centres = colours
    elif method == "kmeans":
        centres = kmeans(colours, counts, variance_cut(colours, counts, size))
    else:
        centres = median_cut(colours, counts, size)
    if min_distance > 0:
        centres = merge_close(colours, counts, centres, min_distance)
        if method == "kmeans":
            centres = kmeans(colours, counts, centres)
    return np.unique(centres, axis=0)


# ------------------------------------------------------------------------------------------- mapping


def bayer_matrix(size: int) -> IntArray:
    """The ``size`` x ``size`` Bayer threshold matrix (values 0 .. size*size - 1), size a power of 2."""
    import numpy as np
    matrix = np.zeros((1, 1), dtype=np.int64)
    while matrix.shape[0] < size:
        matrix = np.block([[4 * matrix, 4 * matrix + 2], [4 * matrix + 3, 4 * matrix + 1]])
    return matrix


def _map_plain(pixels: U8Array, palette: IntArray) -> U8Array:
    """Each visible pixel's nearest palette colour, computed once per distinct colour."""
    import numpy as np
    visible = pixels[..., 3] > 0
    rgb = pixels[visible][:, :3].astype(np.int64)
    keys = (rgb[:, 0] << 16) | (rgb[:, 1] << 8) | rgb[:, 2]
    unique, inverse = np.unique(keys, return_inverse=True)
    colours = np.stack([(unique >> 16) & 255, (unique >> 8) & 255, unique & 255], axis=1)
    mapped = palette[nearest(colours, palette)][inverse.reshape(-1)]
    result = pixels.copy()
    result[..., :3][visible] = mapped.astype(np.uint8)
    return clear_transparent(result)


def _mixes(colours: IntArray, palette: IntArray, strength: int) -> tuple[IntArray, IntArray, IntArray, IntArray]:
    """For each colour: its nearest palette entry A, the entry B that best completes a mix with A,
    and the share of B as the fraction ``share / scale`` (0 when the colour is A itself)."""
    import numpy as np
    first = nearest(colours, palette)
    count = colours.shape[0]
    best_second = first.copy()
    best_share = np.zeros(count, dtype=np.int64)
    best_scale = np.ones(count, dtype=np.int64)
    best_residual = np.full(count, np.inf)
    weights = np.array(WEIGHTS, dtype=np.int64)
    step = max(1, (1 << 18) // max(1, palette.shape[0]))
    for start in range(0, count, step):
        a = palette[first[start : start + step]]  # (k, 3)
        offset = colours[start : start + step] - a  # c - A
        direction = palette[None, :, :] - a[:, None, :]  # B - A, (k, m, 3)
        along = (direction * offset[:, None, :] * weights).sum(axis=2)  # (c - A).(B - A), weighted
        length = (direction * direction * weights).sum(axis=2)  # |B - A|^2, weighted
        along = np.clip(along, 0, length)
        safe = np.maximum(length, 1)
        # Squared distance from c to the mix A + t (B - A), t = along / length (elementwise IEEE
        # arithmetic on exact integers: the same on every machine).
        own = (offset * offset * weights).sum(axis=1).astype(np.float64)
        residual = own[:, None] - along.astype(np.float64) ** 2 / safe.astype(np.float64)
        residual[length == 0] = np.inf
        choice = np.argmin(residual, axis=1)
        rows = np.arange(choice.size)
        chosen = residual[rows, choice]
        better = chosen < best_residual[start : start + step]
        span = slice(start, start + step)
        best_second[span] = np.where(better, choice, best_second[span])
        best_share[span] = np.where(better, along[rows, choice], 0)
        best_scale[span] = np.where(better, safe[rows, choice], 1)
        best_residual[span] = np.where(better, chosen, best_residual[span])
    share = np.minimum(best_share * strength // _STRENGTH_ONE, best_scale)
    return first, best_second, share, best_scale


def _map_ordered(pixels: U8Array, palette: IntArray, size: int, strength: int) -> U8Array:
    """Ordered dithering by mixing: each colour lies between its nearest palette entry and a second
    one; the Bayer threshold of each pixel picks the second where its share exceeds the threshold.

    A colour already in the palette has a share of 0 and is never patterned; a colour halfway
    between two entries becomes their even checkerboard.
    """
    import numpy as np
    height, width = pixels.shape[:2]
    visible = pixels[..., 3] > 0
    rgb = pixels[..., :3].astype(np.int64)
    keys = (rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]
    unique, inverse = np.unique(keys[visible], return_inverse=True)
    colours = np.stack([(unique >> 16) & 255, (unique >> 8) & 255, unique & 255], axis=1)
    first, second, share, scale = _mixes(colours, palette, strength)
    cells = size * size
    matrix = bayer_matrix(size)
    thresholds = np.tile(matrix, (height // size + 1, width // size + 1))[:height, :width][visible]
    inverse = inverse.reshape(-1)
    # Pick the second entry where (threshold + 1/2) / cells < share / scale, in integers.
    use_second = (2 * thresholds + 1) * scale[inverse] < 2 * cells * share[inverse]
    index = np.where(use_second, second[inverse], first[inverse])
    result = pixels.copy()
    result[..., :3][visible] = palette[index].astype(np.uint8)
    return clear_transparent(result)


def _fill_transparent(rgb: U8Array, visible: NDArray[np.bool_]) -> U8Array:
    """``rgb`` with each invisible pixel given the colour of the nearest visible pixel before it in its
    row (after it for a row's leading ones; 0 for an empty row), so diffused error flows through
    transparent areas as if the sprite went on, instead of meeting an arbitrary colour."""
    import numpy as np
    width = visible.shape[1]
    columns = np.where(visible, np.arange(width)[None, :], -1)
    before = np.maximum.accumulate(columns, axis=1)
    after = np.minimum.accumulate(np.where(visible, np.arange(width)[None, :], width)[:, ::-1], axis=1)[:, ::-1]
    source = np.where(before >= 0, before, np.minimum(after, width - 1))
    filled = np.take_along_axis(rgb, source[..., None], axis=1)
    filled[~visible.any(axis=1)] = 0
    return filled


def _map_floyd_steinberg(pixels: U8Array, palette: IntArray, strength: int) -> U8Array:
    """Floyd-Steinberg error diffusion (7, 3, 5, 1)/16 in raster order, by Pillow's C implementation.

    Colours are scaled so that Pillow's plain RGB distance is the weighted one. ``strength`` scales each
    pixel's offset from its nearest palette colour before diffusion: 0 is plain mapping, 1 classic
    dithering. Transparent pixels stay transparent; the error flows through them (see
    ``_fill_transparent``). Pillow's arithmetic is integer, so the result is the same on every machine.
    """
    import numpy as np
    visible = pixels[..., 3] > 0
    if not visible.any():
        return clear_transparent(pixels.copy())
    target = np.ascontiguousarray(pixels[..., :3])
    if strength != _STRENGTH_ONE:
        plain = _map_plain(pixels, palette)[..., :3].astype(np.int64)
        offset = ((target.astype(np.int64) - plain) * strength + _STRENGTH_ONE // 2) // _STRENGTH_ONE
        target = np.clip(plain + offset, 0, 255).astype(np.uint8)
    if not visible.all():
        target = _fill_transparent(target, visible)
    # Per-channel factors that turn the weighted colour distance into a plain Euclidean one, so that Pillow's
    # error diffusion (which measures plain RGB distance) picks colours as ``nearest`` does; a lookup table
    # (Pillow's ``point``) applies them faster than float arithmetic.
    scale = np.sqrt(np.array(WEIGHTS, dtype=np.int64) / max(WEIGHTS))
    table = np.rint(np.arange(256)[None, :] * scale[:, None]).astype(np.uint8)
    from PIL import Image

    scaled = Image.fromarray(target, mode="RGB").point(table.reshape(-1).tolist())
    swatch = Image.new("P", (1, 1))
    swatch.putpalette(table[np.arange(3)[None, :], palette].reshape(-1).tolist())
    indices = np.asarray(scaled.quantize(palette=swatch, dither=Image.Dither.FLOYDSTEINBERG))
    result = pixels.copy()
    result[..., :3] = palette.astype(np.uint8)[indices]
    return clear_transparent(result)


def map_to_palette(
    pixels: U8Array, palette: IntArray, dither: str = "none", *, bayer: int = 4, strength: float = 1.0
) -> U8Array:
    """Replace every visible pixel's colour by a palette colour (alpha kept), with optional dithering."""
    strength_fixed = round(strength * _STRENGTH_ONE)
    if dither == "ordered":
        return _map_ordered(pixels, palette, bayer, strength_fixed)
    if dither == "floyd-steinberg":
        return _map_floyd_steinberg(pixels, palette, strength_fixed)
    return _map_plain(pixels, palette)


# ------------------------------------------------------------------------------------------------ op


def fixed_palette(params: Mapping[str, Any], ctx: PostContext) -> IntArray | None:
    """The palette named by ``preset``, ``file`` or a ``colors`` list, or None for an adaptive one."""
    import numpy as np
    if "preset" in params:
        colours: Sequence[tuple[int, int, int]] = BUILTIN_PALETTES[params["preset"]]
    elif "file" in params:
        colours = parse_palette(params["file"], ctx.read_file(params["file"]))
    elif isinstance(params.get("colors"), list):
        colours = [parse_color(value)[:3] for value in params["colors"]]
    else:
        return None
    return np.array(colours, dtype=np.int64).reshape(-1, 3)


def _check_files(params: Mapping[str, Any], read_file: Callable[[str], bytes]) -> None:
    """Parse the palette file, if any, so a malformed one is reported at check time."""
    if isinstance(params.get("file"), str):
        parse_palette(params["file"], read_file(params["file"]))


_ADAPTIVE = When("colors", integer=True, text="'colors' is a number of colours")


@register(
    "palette",
    "Reduce to a number of colours or map onto a fixed palette (one palette for all frames); give exactly one "
    "of colors, preset and file.",
    CountOrColors(
        "colors",
        2,
        MAX_COLOURS,
        description="A number of colours (an adaptive palette) or a list of colours (a fixed palette).",
    ),
    Choice("preset", tuple(BUILTIN_PALETTES), description="A built-in palette."),
    File(
        "file",
        description="A palette file in the project, relative to the manifest file that names it ('..' may climb "
        "while the file stays inside the project): .hex (Lospec), .gpl (GIMP/Aseprite), .pal (JASC or RIFF), "
        ".txt (Paint.NET), or a .png/.gif swatch.",
    ),
    Choice("dither", DITHERS, default="none", description="Dithering between palette colours."),
    Choice("bayer", BAYER_SIZES, default=4, when=When("dither", "ordered"), description="The Bayer matrix size."),
    Number(
        "strength",
        0,
        4,
        default=1.0,
        when=When("dither", "ordered", "floyd-steinberg"),
        description="Dither strength (1 = the palette's typical colour spacing).",
    ),
    Choice(
        "palette_from",
        ("all", "first"),
        default="all",
        when=_ADAPTIVE,
        description="Adaptive palettes: built from all frames, or from the first frame only.",
    ),
    Choice(
        "method",
        METHODS,
        default="kmeans",
        when=_ADAPTIVE,
        description="Adaptive palettes: variance cut refined by k-means, or the classic median cut.",
    ),
    Int(
        "min_distance",
        0,
        255,
        default=8,
        when=_ADAPTIVE,
        description="Adaptive palettes: merge colours whose largest channel difference is at most this (0: never), "
        "so noise does not take palette entries. Only when the image has more colours than 'colors': one that "
        "already fits is left unchanged.",
    ),
    exactly_one=(("colors", "preset", "file"),),
    check_files=_check_files,
)
def palette(frames: list[Image.Image], params: Mapping[str, Any], ctx: PostContext) -> list[Image.Image]:
    """Quantize to ``colors`` colours or map onto a fixed palette; one palette for all frames."""
    arrays = [to_array(frame) for frame in frames]
    colours = fixed_palette(params, ctx)
    if colours is None:
        # Palette built before dithering and shared by every frame, so colours do not flicker.
        source = arrays[:1] if params.get("palette_from", "all") == "first" else arrays
        colours = build_palette(
            source, int(params["colors"]), params.get("method", "kmeans"), int(params.get("min_distance", 8))
        )
    dither = params.get("dither", "none")
    bayer = int(params.get("bayer", 4))
    strength = float(params.get("strength", 1.0))
    return [from_array(map_to_palette(a, colours, dither, bayer=bayer, strength=strength)) for a in arrays]
