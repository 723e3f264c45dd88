"""Geometry ops: resize (more in later issues: trim, pad, scale, flip, rotate)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from PIL import Image

from pixelbuild.post import PostContext, register

_FILTERS = {
    "nearest": Image.Resampling.NEAREST,
    "box": Image.Resampling.BOX,
    "bilinear": Image.Resampling.BILINEAR,
    "lanczos": Image.Resampling.LANCZOS,
}


def size_param(value: Any) -> tuple[int, int]:
    """Read a ``size`` param: an int for a square, or ``[width, height]``."""
    if isinstance(value, int):
        return value, value
    width, height = value
    return int(width), int(height)


def _check_resize(params: Mapping[str, Any]) -> None:
    width, height = size_param(params["size"])
    if width < 1 or height < 1:
        raise ValueError(f"resize size must be positive, got {width}x{height}")


@register("resize", check=_check_resize)
def resize(frames: list[Image.Image], params: Mapping[str, Any], ctx: PostContext) -> list[Image.Image]:
    """Resample every frame to ``size`` with ``filter`` (default nearest)."""
    size = size_param(params["size"])
    resample = _FILTERS[params.get("filter", "nearest")]
    return [frame.resize(size, resample=resample) for frame in frames]
