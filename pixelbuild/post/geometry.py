"""Geometry ops: resize, trim, pad, canvas, scale, flip and rotate.

All are exact pixel permutations or copies (no resampling except ``resize``'s filters), so their
output is the same on every machine.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from PIL import Image

from pixelbuild.limits import MAX_SIDE, Size
from pixelbuild.post import PostContext, register
from pixelbuild.post.common import (
    ANCHORS,
    anchor_offset,
    canonical_color,
    canonical_size,
    from_array,
    parse_color,
    reject_unknown,
    require_bool,
    require_choice,
    require_int,
    size_pair,
    to_array,
)

_FILTERS = {
    "nearest": Image.Resampling.NEAREST,
    "box": Image.Resampling.BOX,
    "bilinear": Image.Resampling.BILINEAR,
    "lanczos": Image.Resampling.LANCZOS,
}

Box = tuple[int, int, int, int]


def size_param(value: Any) -> tuple[int, int]:
    """Read a ``size`` param: an int for a square, or ``[width, height]``."""
    if isinstance(value, int):
        return value, value
    width, height = value
    return int(width), int(height)


def _normalise_sized(params: dict[str, Any]) -> dict[str, Any]:
    if "size" in params:
        params["size"] = canonical_size(params["size"])
    return params


def _check_size(params: Mapping[str, Any], op: str) -> tuple[int, int]:
    if "size" not in params:
        raise ValueError(f"op '{op}' needs 'size' (an integer or [width, height])")
    width, height = size_pair(params["size"])
    if width < 1 or height < 1:
        raise ValueError(f"{op} size must be positive, got {width}x{height}")
    if width > MAX_SIDE or height > MAX_SIDE:
        raise ValueError(f"{op} size must be at most {MAX_SIDE} per side, got {width}x{height}")
    return width, height


def _check_resize(params: Mapping[str, Any]) -> None:
    reject_unknown("resize", params, ("size", "filter"))
    _check_size(params, "resize")
    require_choice(params, "filter", _FILTERS)


def _sized(params: Mapping[str, Any], size: Size) -> Size:
    return size_param(params["size"])


@register("resize", check=_check_resize, defaults={"filter": "nearest"}, normalise=_normalise_sized, output_size=_sized)
def resize(frames: list[Image.Image], params: Mapping[str, Any], ctx: PostContext) -> list[Image.Image]:
    """Resample every frame to ``size`` with ``filter`` (default nearest)."""
    size = size_param(params["size"])
    resample = _FILTERS[params.get("filter", "nearest")]
    return [frame.resize(size, resample=resample) for frame in frames]


# ------------------------------------------------------------------------------------------------ trim


def alpha_bbox(image: Image.Image) -> Box | None:
    """(left, top, right, bottom) of the pixels with non-zero alpha, or None if there are none."""
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
        return Image.new("RGBA", (1 + 2 * margin, 1 + 2 * margin), (0, 0, 0, 0))
    left, top, right, bottom = box
    # Image.crop pads with zeros outside the source, which is exactly a transparent margin.
    return frame.crop((left - margin, top - margin, right + margin, bottom + margin))


def _check_trim(params: Mapping[str, Any]) -> None:
    reject_unknown("trim", params, ("margin", "common"))
    require_int(params, "margin", 0, 1024)
    require_bool(params, "common")


def _trim_size(params: Mapping[str, Any], size: Size) -> Size:
    margin = 2 * int(params.get("margin", 0))
    return size[0] + margin, size[1] + margin


@register("trim", check=_check_trim, defaults={"margin": 0, "common": True}, output_size=_trim_size)
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
    for side in _SIDES:
        params.setdefault(side, amount)
    params["fill"] = canonical_color(params.get("fill", "#00000000"))
    return params


def _check_pad(params: Mapping[str, Any]) -> None:
    reject_unknown("pad", params, (*_SIDES, "amount", "fill"))
    for side in _SIDES:
        if side in params:
            require_int(params, side, 0, MAX_SIDE)
    if "amount" in params:
        require_int(params, "amount", 0, MAX_SIDE)
    parse_color(params.get("fill", "#00000000"))


def _pad_size(params: Mapping[str, Any], size: Size) -> Size:
    amount = int(params.get("amount", 0))
    left, top, right, bottom = (int(params.get(side, amount)) for side in _SIDES)
    return size[0] + left + right, size[1] + top + bottom


@register("pad", check=_check_pad, defaults={"fill": "#00000000"}, normalise=_normalise_pad, output_size=_pad_size)
def pad(frames: list[Image.Image], params: Mapping[str, Any], ctx: PostContext) -> list[Image.Image]:
    """Add ``left``/``top``/``right``/``bottom`` pixels of ``fill`` (default transparent) around frames."""
    amount = int(params.get("amount", 0))
    left, top, right, bottom = (int(params.get(side, amount)) for side in _SIDES)
    fill = parse_color(params.get("fill", "#00000000"))
    return [
        place(frame, (frame.width + left + right, frame.height + top + bottom), (left, top), fill) for frame in frames
    ]


def _normalise_canvas(params: dict[str, Any]) -> dict[str, Any]:
    params = _normalise_sized(params)
    params["fill"] = canonical_color(params["fill"])
    return params


def _check_canvas(params: Mapping[str, Any]) -> None:
    reject_unknown("canvas", params, ("size", "anchor", "fill"))
    _check_size(params, "canvas")
    require_choice(params, "anchor", ANCHORS)
    parse_color(params.get("fill"))


@register(
    "canvas",
    check=_check_canvas,
    defaults={"anchor": "center", "fill": "#00000000"},
    normalise=_normalise_canvas,
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


def _check_scale(params: Mapping[str, Any]) -> None:
    reject_unknown("scale", params, ("factor",))
    if "factor" not in params:
        raise ValueError("op 'scale' needs 'factor' (a whole number such as 2)")
    require_int(params, "factor", 1, 64)


def _scale_size(params: Mapping[str, Any], size: Size) -> Size:
    factor = int(params["factor"])
    return size[0] * factor, size[1] * factor


@register("scale", check=_check_scale, output_size=_scale_size)
def scale(frames: list[Image.Image], params: Mapping[str, Any], ctx: PostContext) -> list[Image.Image]:
    """Enlarge every frame by the integer ``factor`` with nearest neighbour (each pixel a block)."""
    factor = int(params["factor"])
    result = []
    for frame in frames:
        pixels = to_array(frame)
        result.append(from_array(pixels.repeat(factor, axis=0).repeat(factor, axis=1)))
    return result


_FLIPS = {
    "horizontal": (Image.Transpose.FLIP_LEFT_RIGHT,),
    "vertical": (Image.Transpose.FLIP_TOP_BOTTOM,),
    "both": (Image.Transpose.ROTATE_180,),
}


def _check_flip(params: Mapping[str, Any]) -> None:
    reject_unknown("flip", params, ("direction",))
    require_choice(params, "direction", _FLIPS)


@register("flip", check=_check_flip, defaults={"direction": "horizontal"})
def flip(frames: list[Image.Image], params: Mapping[str, Any], ctx: PostContext) -> list[Image.Image]:
    """Mirror every frame: ``horizontal`` (left-right), ``vertical`` (top-bottom) or ``both``."""
    (method,) = _FLIPS[params.get("direction", "horizontal")]
    return [frame.transpose(method) for frame in frames]


# Clockwise angles, as image editors name them; Pillow's ROTATE_* constants turn counter-clockwise.
_ROTATIONS = {
    90: Image.Transpose.ROTATE_270,
    180: Image.Transpose.ROTATE_180,
    270: Image.Transpose.ROTATE_90,
}


def _check_rotate(params: Mapping[str, Any]) -> None:
    reject_unknown("rotate", params, ("angle",))
    if "angle" not in params:
        raise ValueError("op 'rotate' needs 'angle' (90, 180 or 270 degrees clockwise)")
    require_choice(params, "angle", _ROTATIONS)


def _rotate_size(params: Mapping[str, Any], size: Size) -> Size:
    return (size[1], size[0]) if int(params["angle"]) in (90, 270) else size


@register("rotate", check=_check_rotate, output_size=_rotate_size)
def rotate(frames: list[Image.Image], params: Mapping[str, Any], ctx: PostContext) -> list[Image.Image]:
    """Turn every frame clockwise by ``angle`` (90, 180 or 270 degrees)."""
    method = _ROTATIONS[int(params["angle"])]
    return [frame.transpose(method) for frame in frames]
