"""Anchors: where a smaller box sits in a larger one (a frame on a canvas, a frame in a sheet cell)."""

from __future__ import annotations

from collections.abc import Mapping

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


def anchor_offset(anchor: str, outer: tuple[int, int], inner: tuple[int, int]) -> tuple[int, int]:
    """Top-left position of an ``inner``-sized box placed at ``anchor`` in an ``outer``-sized one.

    Negative when inner is larger (it gets cropped). Centring rounds toward zero: an odd leftover
    pixel goes to the right/bottom, and an odd cropped pixel comes off the right/bottom.
    """

    def offset(fraction: int, room: int) -> int:
        return (fraction * room) // 2 if room >= 0 else -((fraction * -room) // 2)

    fx, fy = ANCHORS[anchor]
    return offset(fx, outer[0] - inner[0]), offset(fy, outer[1] - inner[1])
