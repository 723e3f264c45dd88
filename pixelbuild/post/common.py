"""Helpers shared by the ops: array conversion, colour and size params, anchors, param checks."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray
from PIL import Image

RGBA = tuple[int, int, int, int]
U8Array = NDArray[np.uint8]

TRANSPARENT: RGBA = (0, 0, 0, 0)

_HEX_COLOUR = re.compile(r"#([0-9a-fA-F]{6}|[0-9a-fA-F]{8})")

#: Where content sits on a larger canvas: (horizontal, vertical) fraction numerators over 2.
ANCHORS: Mapping[str, tuple[int, int]] = {
    "top-left": (0, 0),
    "top-center": (1, 0),
    "top-right": (2, 0),
    "center-left": (0, 1),
    "center": (1, 1),
    "center-right": (2, 1),
    "bottom-left": (0, 2),
    "bottom-center": (1, 2),
    "bottom-right": (2, 2),
}


def to_array(image: Image.Image) -> U8Array:
    """A writable (H, W, 4) uint8 copy of ``image``'s RGBA pixels."""
    rgba = image if image.mode == "RGBA" else image.convert("RGBA")
    return np.array(rgba, dtype=np.uint8)


def from_array(pixels: NDArray[Any]) -> Image.Image:
    """An RGBA image from an (H, W, 4) array (values must already lie in 0..255)."""
    return Image.fromarray(np.ascontiguousarray(pixels, dtype=np.uint8), mode="RGBA")


def clear_transparent(pixels: U8Array) -> U8Array:
    """Set the colour of fully transparent pixels to 0 in place, so invisible colour never matters."""
    pixels[pixels[..., 3] == 0] = 0
    return pixels


def parse_color(value: Any) -> RGBA:
    """Read a colour param: ``"#rrggbb"``, ``"#rrggbbaa"`` or ``[r, g, b]`` / ``[r, g, b, a]``."""
    if isinstance(value, str):
        match = _HEX_COLOUR.fullmatch(value.strip())
        if match is None:
            raise ValueError(f"'{value}' is not a colour: write '#rrggbb' or '#rrggbbaa' (quoted in YAML)")
        digits = match.group(1)
        channels = [int(digits[i : i + 2], 16) for i in range(0, len(digits), 2)]
        if len(channels) == 3:
            channels.append(255)
        return channels[0], channels[1], channels[2], channels[3]
    if isinstance(value, Sequence) and len(value) in (3, 4):
        if not all(isinstance(c, int) and not isinstance(c, bool) and 0 <= c <= 255 for c in value):
            raise ValueError(f"{list(value)} is not a colour: [r, g, b(, a)] needs integers 0..255")
        channels = [int(c) for c in value]
        if len(channels) == 3:
            channels.append(255)
        return channels[0], channels[1], channels[2], channels[3]
    if value is None:
        raise ValueError("a colour is empty: in YAML quote hex colours ('#ff0000'), '#' starts a comment")
    raise ValueError(f"{value!r} is not a colour: write '#rrggbb', '#rrggbbaa' or [r, g, b(, a)]")


def format_color(color: RGBA) -> str:
    """The canonical spelling of a colour: lowercase ``#rrggbbaa``."""
    return "#" + "".join(f"{channel:02x}" for channel in color)


def canonical_color(value: Any) -> Any:
    """``value`` as canonical ``#rrggbbaa`` when it is a valid colour, else unchanged (for the check)."""
    try:
        return format_color(parse_color(value))
    except (ValueError, TypeError):
        return value


def size_pair(value: Any, what: str = "size") -> tuple[int, int]:
    """Read an int-or-``[w, h]`` param as (width, height); raise ``ValueError`` if it is neither."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value, value
    if (
        isinstance(value, Sequence)
        and not isinstance(value, str)
        and len(value) == 2
        and all(isinstance(v, int) and not isinstance(v, bool) for v in value)
    ):
        return int(value[0]), int(value[1])
    raise ValueError(f"{what} must be an integer or [width, height], got {value!r}")


def canonical_size(value: Any) -> Any:
    """A size param as ``[w, h]`` when it is valid (so ``32`` and ``[32, 32]`` hash alike)."""
    try:
        width, height = size_pair(value)
    except ValueError:
        return value
    return [width, height]


def anchor_offset(anchor: str, outer: tuple[int, int], inner: tuple[int, int]) -> tuple[int, int]:
    """Top-left position of an ``inner``-sized box placed at ``anchor`` in an ``outer``-sized one.

    Negative when inner is larger (it gets cropped). Centring rounds toward zero: an odd leftover
    pixel goes to the right/bottom, and an odd cropped pixel comes off the right/bottom.
    """

    def offset(fraction: int, room: int) -> int:
        return (fraction * room) // 2 if room >= 0 else -((fraction * -room) // 2)

    fx, fy = ANCHORS[anchor]
    return offset(fx, outer[0] - inner[0]), offset(fy, outer[1] - inner[1])


def require_int(params: Mapping[str, Any], name: str, low: int | None = None, high: int | None = None) -> int:
    """``params[name]`` as an int within [low, high], or a ``ValueError`` naming the param."""
    value = params.get(name)
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValueError(f"'{name}' must be an integer, got {value!r}")
    if low is not None and value < low:
        raise ValueError(f"'{name}' must be at least {low}, got {value}")
    if high is not None and value > high:
        raise ValueError(f"'{name}' must be at most {high}, got {value}")
    return value


def require_number(params: Mapping[str, Any], name: str, low: float, high: float) -> float:
    """``params[name]`` as a number within [low, high], or a ``ValueError`` naming the param."""
    value = params.get(name)
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise ValueError(f"'{name}' must be a number, got {value!r}")
    if not low <= value <= high:
        raise ValueError(f"'{name}' must be between {low:g} and {high:g}, got {value}")
    return float(value)


def require_bool(params: Mapping[str, Any], name: str) -> bool:
    """``params[name]`` as a bool, or a ``ValueError`` naming the param."""
    value = params.get(name)
    if not isinstance(value, bool):
        raise ValueError(f"'{name}' must be true or false, got {value!r}")
    return value


def require_choice(params: Mapping[str, Any], name: str, choices: Iterable[Any]) -> Any:
    """``params[name]`` if it is one of ``choices``, or a ``ValueError`` listing them."""
    options = list(choices)
    value = params.get(name)
    if value not in options or isinstance(value, bool):
        listed = ", ".join(repr(option) if not isinstance(option, str) else option for option in options)
        raise ValueError(f"'{name}' must be one of {listed}, got {value!r}")
    return value


def reject_unknown(op: str, params: Mapping[str, Any], allowed: Iterable[str]) -> None:
    """Raise ``ValueError`` for params the op does not know (the schema says the same earlier)."""
    unknown = sorted(set(params) - set(allowed))
    if unknown:
        takes = ", ".join(sorted(allowed))
        raise ValueError(f"op '{op}' has no parameter '{unknown[0]}' (it takes: {takes})")
