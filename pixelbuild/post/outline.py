"""The outline op: a 1-px line of one colour around (outer) or along the edge of (inner) the sprite."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from pixelbuild.limits import Size
from pixelbuild.post import PostContext, register
from pixelbuild.post.common import from_array, to_array
from pixelbuild.post.params import RGBA, Bool, Choice, Color, When, parse_color

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray
    from PIL import Image

    from pixelbuild.post.common import U8Array

    BoolArray = NDArray[np.bool_]


def _neighbours(mask: BoolArray, diagonal: bool, outside: bool = False) -> BoolArray:
    """Pixels with at least one 4-neighbour (8 with ``diagonal``) set in ``mask``; beyond the image
    every pixel counts as ``outside``."""
    import numpy as np
    padded = np.pad(mask, 1, constant_values=outside)
    height, width = mask.shape
    result = np.zeros_like(mask)
    shifts = [(-1, 0), (1, 0), (0, -1), (0, 1)]
    if diagonal:
        shifts += [(-1, -1), (-1, 1), (1, -1), (1, 1)]
    for dy, dx in shifts:
        result |= padded[1 + dy : 1 + dy + height, 1 + dx : 1 + dx + width]
    return result


def outline_pixels(
    pixels: U8Array, colour: RGBA, mode: str = "outer", diagonal: bool = False, expand: bool = True
) -> U8Array:
    """Draw a 1-px outline on one frame (alpha > 0 is the sprite); see the op for the options."""
    import numpy as np
    if mode == "outer" and expand:
        pixels = np.pad(pixels, ((1, 1), (1, 1), (0, 0)))
    result = pixels.copy()
    solid = pixels[..., 3] > 0
    if mode == "outer":
        line = ~solid & _neighbours(solid, diagonal)
    else:
        # Beyond the image counts as empty, so a sprite cut by the border is outlined there too.
        line = solid & _neighbours(~solid, diagonal, outside=True)
    result[line] = np.array(colour, dtype=np.uint8)
    return result


def _size(params: Mapping[str, Any], size: Size) -> Size:
    grow = 2 if params.get("mode", "outer") == "outer" and params.get("expand", True) else 0
    return size[0] + grow, size[1] + grow


@register(
    "outline",
    "Draw a 1-px outline.",
    Color("color", default="#000000ff", description="The colour of the line."),
    Choice(
        "mode", ("outer", "inner"), default="outer", description="outer: around the sprite; inner: on its edge pixels."
    ),
    Bool("diagonal", default=False, description="Diagonal neighbours count too (a thicker-looking line)."),
    Bool(
        "expand",
        default=True,
        when=When("mode", "outer"),
        description="mode 'outer': grow the canvas by 1 px a side so the outline is never cut off.",
    ),
    output_size=_size,
)
def outline(frames: list[Image.Image], params: Mapping[str, Any], ctx: PostContext) -> list[Image.Image]:
    """A 1-px ``color`` line: ``outer`` around the sprite (growing the canvas by 1 px a side unless
    ``expand: false``) or ``inner`` on its edge pixels; ``diagonal`` also counts corner neighbours."""
    colour = parse_color(params.get("color", "#000000ff"))
    mode = params.get("mode", "outer")
    diagonal = bool(params.get("diagonal", False))
    expand = bool(params.get("expand", True))
    return [from_array(outline_pixels(to_array(frame), colour, mode, diagonal, expand)) for frame in frames]
