"""Geometry ops: resize, trim, pad, canvas, scale, flip and rotate.

All are exact pixel permutations or copies (no resampling except ``resize``'s filters), so their
output is the same on every machine.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from pixelbuild.anchors import ANCHORS, anchor_offset
from pixelbuild.limits import MAX_SIDE, Size
from pixelbuild.post import PostContext, register
from pixelbuild.post.common import from_array, to_array
from pixelbuild.post.params import Bool, Choice, Color, Int, PixelSize, parse_color, size_pair

# PIL is imported where pixels are touched: loading the ops' declarations (resolve, check) never needs it.
if TYPE_CHECKING:
    from PIL import Image

#: Filter names, and the name of Pillow's ``Image.Resampling`` member for each.
_FILTERS = {"nearest": "NEAREST", "box": "BOX", "bilinear": "BILINEAR", "lanczos": "LANCZOS"}

Box = tuple[int, int, int, int]


def size_param(value: Any) -> tuple[int, int]:
    """Read a ``size`` param: an int for a square, or ``[width, height]``."""
    if isinstance(value, int):
        return value, value
    width, height = value
    return int(width), int(height)


def _sized(params: Mapping[str, Any], size: Size) -> Size:
    return size_param(params["size"])


@register(
    "resize",
    "Resample every frame to a size (smooth filters blur pixel art; prefer pixelate).",
    PixelSize("size", required=True, description="The new size in pixels."),
    Choice("filter", tuple(_FILTERS), default="nearest", description="The resampling filter."),
    output_size=_sized,
)
def resize(frames: list[Image.Image], params: Mapping[str, Any], ctx: PostContext) -> list[Image.Image]:
    """Resample every frame to ``size`` with ``filter`` (default nearest)."""
    from PIL import Image

    size = size_param(params["size"])
    resample = Image.Resampling[_FILTERS[params.get("filter", "nearest")]]
    return [frame.resize(size, resample=resample) for frame in frames]


# ------------------------------------------------------------------------------------------------ trim


def alpha_bbox(image: Image.Image) -> Box | None:
    """(left, top, right, bottom) of the pixels with non-zero alpha, or None if there are none."""
    import numpy as np
    rgba = image if image.mode == "RGBA" else image.convert("RGBA")
    alpha = np.asarray(rgba.getchannel("A"))
    columns = np.flatnonzero(alpha.any(axis=0))
    if columns.size == 0:
        return None
    rows = np.flatnonzero(alpha.any(axis=1))
    return int(columns[0]), int(rows[0]), int(columns[-1]) + 1, int(rows[-1]) + 1


def common_bbox(frames: Sequence[Image.Image]) -> Box | None:
    """The union of the frames' alpha boxes (frames of one size), or None if all are empty."""
    boxes = [box for box in (alpha_bbox(frame) for frame in frames) if box is not None]
    if not boxes:
        return None
    return (
        min(box[0] for box in boxes),
        min(box[1] for box in boxes),
        max(box[2] for box in boxes),
        max(box[3] for box in boxes),
    )


def _crop_with_margin(frame: Image.Image, box: Box | None, margin: int) -> Image.Image:
    """Cut ``box`` (None: an empty 1x1 box) out of ``frame`` with ``margin`` transparent pixels around."""
    if box is None:
        from PIL import Image

        return Image.new("RGBA", (1 + 2 * margin, 1 + 2 * margin), (0, 0, 0, 0))
    left, top, right, bottom = box
    # Image.crop pads with zeros outside the source, which is exactly a transparent margin.
    return frame.crop((left - margin, top - margin, right + margin, bottom + margin))


def _trim_size(params: Mapping[str, Any], size: Size) -> Size:
    margin = 2 * int(params.get("margin", 0))
    return size[0] + margin, size[1] + margin


@register(
    "trim",
    "Crop to the bounding box of the visible pixels.",
    Int("margin", 0, 1024, default=0, description="Transparent pixels kept around the box."),
    Bool("common", default=True, description="One box for all frames, so animation frames stay aligned."),
    output_size=_trim_size,
)
def trim(frames: list[Image.Image], params: Mapping[str, Any], ctx: PostContext) -> list[Image.Image]:
    """Crop to the alpha bounding box plus ``margin``; with ``common`` one box for all frames.

    A common box keeps animation frames aligned; it needs frames of one size (else each frame gets
    its own box). A fully transparent frame becomes a 1x1 transparent pixel (plus the margin).
    """
    margin = int(params.get("margin", 0))
    same_size = len({frame.size for frame in frames}) == 1
    if params.get("common", True) and same_size:
        box = common_bbox(frames)
        return [_crop_with_margin(frame, box, margin) for frame in frames]
    return [_crop_with_margin(frame, alpha_bbox(frame), margin) for frame in frames]


# ----------------------------------------------------------------------------------------- pad/canvas


def place(frame: Image.Image, size: tuple[int, int], position: tuple[int, int], fill: tuple[int, ...]) -> Image.Image:
    """Put ``frame`` at ``position`` on a ``size`` canvas of ``fill``; content outside is cut off.

    Pixels with any alpha replace the fill (no blending: pixel art has hard alpha edges).
    """
    import numpy as np
    canvas = np.empty((size[1], size[0], 4), dtype=np.uint8)
    canvas[...] = np.asarray(fill, dtype=np.uint8)
    source = to_array(frame)
    x, y = position
    src_x0, src_y0 = max(0, -x), max(0, -y)
    dst_x0, dst_y0 = max(0, x), max(0, y)
    width = min(frame.width - src_x0, size[0] - dst_x0)
    height = min(frame.height - src_y0, size[1] - dst_y0)
    if width > 0 and height > 0:
        patch = source[src_y0 : src_y0 + height, src_x0 : src_x0 + width]
        target = canvas[dst_y0 : dst_y0 + height, dst_x0 : dst_x0 + width]
        opaque = patch[..., 3] > 0
        target[opaque] = patch[opaque]
    return from_array(canvas)


_SIDES = ("left", "top", "right", "bottom")


def _normalise_pad(params: dict[str, Any]) -> dict[str, Any]:
    # 'amount' is shorthand for the sides not given; expanded so both spellings hash the same.
    amount = params.pop("amount", 0)
    return {**{side: params.pop(side, amount) for side in _SIDES}, **params}


def _pad_size(params: Mapping[str, Any], size: Size) -> Size:
    amount = int(params.get("amount", 0))
    left, top, right, bottom = (int(params.get(side, amount)) for side in _SIDES)
    return size[0] + left + right, size[1] + top + bottom


@register(
    "pad",
    "Add transparent (or 'fill') pixels around each frame.",
    Int("amount", 0, MAX_SIDE, description="Pixels on every side not given separately (default 0)."),
    *(Int(side, 0, MAX_SIDE, description=f"Pixels on the {side} (default: amount).") for side in _SIDES),
    Color("fill", default="#00000000", description="The colour of the added pixels."),
    normalise=_normalise_pad,
    output_size=_pad_size,
)
def pad(frames: list[Image.Image], params: Mapping[str, Any], ctx: PostContext) -> list[Image.Image]:
    """Add ``left``/``top``/``right``/``bottom`` pixels of ``fill`` (default transparent) around frames."""
    amount = int(params.get("amount", 0))
    left, top, right, bottom = (int(params.get(side, amount)) for side in _SIDES)
    fill = parse_color(params.get("fill", "#00000000"))
    return [
        place(frame, (frame.width + left + right, frame.height + top + bottom), (left, top), fill) for frame in frames
    ]


@register(
    "canvas",
    "Place each frame on a canvas of a fixed size (cropping what does not fit).",
    PixelSize("size", required=True, description="The canvas size in pixels."),
    Choice(
        "anchor",
        tuple(ANCHORS),
        default="center",
        description="Where the frame sits, e.g. bottom-center for characters.",
    ),
    Color("fill", default="#00000000", description="The colour of the canvas around the frame."),
    output_size=_sized,
)
def canvas(frames: list[Image.Image], params: Mapping[str, Any], ctx: PostContext) -> list[Image.Image]:
    """Place each frame on a fixed ``size`` canvas at ``anchor`` (e.g. ``bottom-center`` for characters).

    A frame larger than the canvas is cropped around the same anchor.
    """
    size = size_pair(params["size"])
    anchor = params.get("anchor", "center")
    fill = parse_color(params.get("fill", "#00000000"))
    return [place(frame, size, anchor_offset(anchor, size, frame.size), fill) for frame in frames]


# ---------------------------------------------------------------------------------- scale/flip/rotate


def _scale_size(params: Mapping[str, Any], size: Size) -> Size:
    factor = int(params["factor"])
    return size[0] * factor, size[1] * factor


@register(
    "scale",
    "Enlarge by a whole factor, each pixel a block (for previews and UI).",
    Int("factor", 1, 64, required=True, description="Each pixel becomes a factor x factor block."),
    output_size=_scale_size,
)
def scale(frames: list[Image.Image], params: Mapping[str, Any], ctx: PostContext) -> list[Image.Image]:
    """Enlarge every frame by the integer ``factor`` with nearest neighbour (each pixel a block)."""
    factor = int(params["factor"])
    result = []
    for frame in frames:
        pixels = to_array(frame)
        result.append(from_array(pixels.repeat(factor, axis=0).repeat(factor, axis=1)))
    return result


#: Directions, and the name of Pillow's ``Image.Transpose`` member for each.
_FLIPS = {"horizontal": "FLIP_LEFT_RIGHT", "vertical": "FLIP_TOP_BOTTOM", "both": "ROTATE_180"}


@register(
    "flip",
    "Mirror every frame.",
    Choice(
        "direction", tuple(_FLIPS), default="horizontal", description="horizontal: left-right; vertical: top-bottom."
    ),
)
def flip(frames: list[Image.Image], params: Mapping[str, Any], ctx: PostContext) -> list[Image.Image]:
    """Mirror every frame: ``horizontal`` (left-right), ``vertical`` (top-bottom) or ``both``."""
    from PIL import Image

    method = Image.Transpose[_FLIPS[params.get("direction", "horizontal")]]
    return [frame.transpose(method) for frame in frames]


# Clockwise angles, as image editors name them; Pillow's ROTATE_* constants turn counter-clockwise.
_ROTATIONS = {90: "ROTATE_270", 180: "ROTATE_180", 270: "ROTATE_90"}


def _rotate_size(params: Mapping[str, Any], size: Size) -> Size:
    return (size[1], size[0]) if int(params["angle"]) in (90, 270) else size


@register(
    "rotate",
    "Turn every frame clockwise.",
    Choice("angle", tuple(_ROTATIONS), required=True, description="Degrees, clockwise."),
    output_size=_rotate_size,
)
def rotate(frames: list[Image.Image], params: Mapping[str, Any], ctx: PostContext) -> list[Image.Image]:
    """Turn every frame clockwise by ``angle`` (90, 180 or 270 degrees)."""
    from PIL import Image

    method = Image.Transpose[_ROTATIONS[int(params["angle"])]]
    return [frame.transpose(method) for frame in frames]
