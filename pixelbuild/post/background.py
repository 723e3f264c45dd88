"""The remove_background op: colour key, flood fill from the border, or the source's own alpha.

Removed pixels become (0, 0, 0, 0). Colour matching is per channel (the largest RGB difference must
not exceed ``tolerance``), integer throughout.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from pixelbuild.post import PostContext, register
from pixelbuild.post.common import clear_transparent, from_array, to_array
from pixelbuild.post.params import RGBA, Bool, Choice, Color, Int, When, parse_color

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray
    from PIL import Image

    from pixelbuild.post.common import U8Array

    BoolArray = NDArray[np.bool_]

MODES = ("flood", "key", "alpha")
#: Side of the square patch at each corner whose median colour stands for that corner.
_CORNER_PATCH = 3


def _chebyshev(pixels: U8Array, colour: RGBA) -> NDArray[np.int16]:
    import numpy as np
    difference = pixels[..., :3].astype(np.int16) - np.array(colour[:3], dtype=np.int16)
    result: NDArray[np.int16] = np.abs(difference).max(axis=2)
    return result


def detect_background(pixels: U8Array, tolerance: int = 0) -> RGBA:
    """The background colour seen in the corners: each corner's 3x3 median, then the one that most
    corners agree with (within ``tolerance``); ties go to top-left, top-right, bottom-left, bottom-right."""
    import numpy as np
    height, width = pixels.shape[:2]
    size = min(_CORNER_PATCH, height, width)
    patches = [
        pixels[:size, :size],
        pixels[:size, width - size :],
        pixels[height - size :, :size],
        pixels[height - size :, width - size :],
    ]
    corners: list[RGBA] = []
    for patch in patches:
        flat = np.sort(patch.reshape(-1, 4), axis=0)
        middle = flat[(flat.shape[0] - 1) // 2]
        corners.append((int(middle[0]), int(middle[1]), int(middle[2]), int(middle[3])))

    def agrees(candidate: RGBA, other: RGBA) -> bool:
        if candidate[3] == 0 or other[3] == 0:
            return candidate[3] == other[3]
        return max(abs(a - b) for a, b in zip(candidate[:3], other[:3], strict=True)) <= tolerance

    def agreeing(candidate: RGBA) -> int:
        return sum(1 for other in corners if agrees(candidate, other))

    best = max(range(4), key=lambda i: (agreeing(corners[i]), -i))
    return corners[best]


def background_mask(pixels: U8Array, colour: RGBA, tolerance: int) -> BoolArray:
    """Pixels that count as background: already transparent, or (for a visible ``colour``) within
    ``tolerance`` of it."""
    transparent: BoolArray = pixels[..., 3] == 0
    if colour[3] == 0:
        return transparent
    return transparent | (_chebyshev(pixels, colour) <= tolerance)


def flood_from_border(mask: BoolArray) -> BoolArray:
    """The part of ``mask`` 4-connected to the image border (a flood fill seeded on every border pixel).

    Works on horizontal runs, all vectorised: runs in neighbouring rows that overlap are connected,
    components are found by minimum-label propagation with pointer jumping, and the components
    holding a border run are painted back.
    """
    import numpy as np
    height, width = mask.shape
    result = np.zeros((height, width), dtype=bool)
    if height == 0 or width == 0:
        return result
    padded = np.zeros((height, width + 2), dtype=np.int8)
    padded[:, 1:-1] = mask
    steps = np.diff(padded, axis=1)
    rows, starts = np.nonzero(steps == 1)
    _, ends = np.nonzero(steps == -1)  # row-major, so starts and ends pair up run by run
    count = starts.size
    if count == 0:
        return result
    # Keys that grow with (row, column): the runs of row r - 1 overlapping [start, end) of a run in
    # row r are the contiguous block with end > start and start < end.
    stride = width + 1
    start_keys = rows * stride + starts
    end_keys = rows * stride + ends
    low = np.searchsorted(end_keys, (rows - 1) * stride + starts, side="right")
    high = np.searchsorted(start_keys, (rows - 1) * stride + ends, side="left")
    degree = np.maximum(high - low, 0)
    source = np.repeat(np.arange(count), degree)
    first_edge = np.cumsum(degree) - degree
    target = np.arange(int(degree.sum())) - np.repeat(first_edge, degree) + np.repeat(low, degree)
    labels = np.arange(count)
    while True:
        smaller = np.minimum(labels[source], labels[target])
        updated = labels.copy()
        np.minimum.at(updated, source, smaller)
        np.minimum.at(updated, target, smaller)
        updated = updated[updated]
        if np.array_equal(updated, labels):
            break
        labels = updated
    on_border = (rows == 0) | (rows == height - 1) | (starts == 0) | (ends == width)
    reached = np.isin(labels, labels[on_border])
    marks = np.zeros(height * stride, dtype=np.int8)
    marks[start_keys[reached]] = 1
    marks[end_keys[reached]] = -1
    painted: BoolArray = np.cumsum(marks.reshape(height, stride), axis=1)[:, :width] > 0
    return painted


def _halo(pixels: U8Array, removed: BoolArray, colour: RGBA, tolerance: int) -> BoolArray:
    """Visible pixels next to (4-neighbour) a removed one and within ``tolerance`` of the background."""
    import numpy as np
    near = np.zeros_like(removed)
    near[1:] |= removed[:-1]
    near[:-1] |= removed[1:]
    near[:, 1:] |= removed[:, :-1]
    near[:, :-1] |= removed[:, 1:]
    candidates: BoolArray = near & ~removed
    if colour[3] == 0:
        return np.zeros_like(removed)
    return candidates & (_chebyshev(pixels, colour) <= tolerance)


def remove_background_pixels(
    pixels: U8Array,
    mode: str = "flood",
    colour: RGBA | None = None,
    tolerance: int = 0,
    cleanup: bool = False,
    cleanup_tolerance: int = 64,
    alpha_threshold: int = 128,
) -> U8Array:
    """Make the background of one frame transparent (see the op for the modes)."""
    import numpy as np
    result = pixels.copy()
    if mode == "alpha":
        # Hard alpha: pixel art has no partial transparency.
        visible = result[..., 3] >= alpha_threshold
        result[..., 3] = np.where(visible, 255, 0).astype(np.uint8)
        return clear_transparent(result)
    background = colour if colour is not None else detect_background(pixels, tolerance)
    mask = background_mask(pixels, background, tolerance)
    removed = flood_from_border(mask) if mode == "flood" else mask
    if cleanup:
        removed = removed | _halo(pixels, removed, background, cleanup_tolerance)
    result[removed] = 0
    return clear_transparent(result)


_BY_COLOUR = When("mode", "flood", "key")


@register(
    "remove_background",
    "Make the background transparent.",
    Choice(
        "mode",
        MODES,
        default="flood",
        description="flood: background-coloured regions connected to the image border; key: every "
        "background-coloured pixel; alpha: keep the source alpha (made hard with alpha_threshold).",
    ),
    Color("color", when=_BY_COLOUR, description="The background colour; default: detected from the corners."),
    Int(
        "tolerance",
        0,
        255,
        default=0,
        when=_BY_COLOUR,
        description="Largest per-channel difference from the background colour that still counts as background.",
    ),
    Bool(
        "cleanup",
        default=False,
        when=_BY_COLOUR,
        description="Also remove the 1-px halo: edge pixels within cleanup_tolerance of the background colour.",
    ),
    Int(
        "cleanup_tolerance",
        0,
        255,
        default=64,
        when=(_BY_COLOUR, When("cleanup", True)),
        description="cleanup: the largest per-channel difference of a halo pixel from the background colour.",
    ),
    Int(
        "alpha_threshold",
        1,
        255,
        default=128,
        when=When("mode", "alpha"),
        description="mode 'alpha': pixels with at least this alpha stay (opaque), others go.",
    ),
)
def remove_background(frames: list[Image.Image], params: Mapping[str, Any], ctx: PostContext) -> list[Image.Image]:
    """Make the background transparent: ``flood`` from the border, ``key`` everywhere, or ``alpha``.

    Without ``color`` the background is read from the corners of each frame. ``cleanup`` also removes
    the 1-px halo: edge pixels within ``cleanup_tolerance`` of the background colour.
    """
    mode = params.get("mode", "flood")
    colour = parse_color(params["color"]) if "color" in params else None
    return [
        from_array(
            remove_background_pixels(
                to_array(frame),
                mode,
                colour,
                int(params.get("tolerance", 0)),
                bool(params.get("cleanup", False)),
                int(params.get("cleanup_tolerance", 64)),
                int(params.get("alpha_threshold", 128)),
            )
        )
        for frame in frames
    ]
