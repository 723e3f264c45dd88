"""Colour and size params, anchors."""

from __future__ import annotations

import pytest

from pixelbuild.anchors import anchor_offset
from pixelbuild.post.params import canonical_color, format_color, parse_color, size_pair


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("#ff8000", (255, 128, 0, 255)),
        ("#FF800080", (255, 128, 0, 128)),
        ([1, 2, 3], (1, 2, 3, 255)),
        ([1, 2, 3, 4], (1, 2, 3, 4)),
        ((0, 0, 0, 0), (0, 0, 0, 0)),
    ],
)
def test_parse_color_accepts_the_documented_forms(value: object, expected: tuple[int, ...]) -> None:
    assert parse_color(value) == expected


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("ff8000", "is not a colour"),
        ("#ff80", "is not a colour"),
        ([256, 0, 0], "integers 0..255"),
        ([1, 2], "is not a colour"),
        ([True, 0, 0], "integers 0..255"),
        (None, "quote hex colours"),
        (12, "is not a colour"),
    ],
)
def test_parse_color_rejects_other_values(value: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_color(value)


def test_canonical_color_is_lowercase_rgba_and_leaves_garbage_alone() -> None:
    assert canonical_color("#ABCDEF") == "#abcdefff"
    assert canonical_color([1, 2, 3]) == "#010203ff"
    assert format_color((1, 2, 3, 4)) == "#01020304"
    assert canonical_color("nope") == "nope"


def test_size_pair() -> None:
    assert size_pair(8) == (8, 8)
    assert size_pair([8, 4]) == (8, 4)
    with pytest.raises(ValueError, match="integer or \\[width, height\\]"):
        size_pair([8, 4, 2])
    with pytest.raises(ValueError):
        size_pair(True)


@pytest.mark.parametrize(
    ("anchor", "expected"),
    [
        ("top-left", (0, 0)),
        ("center", (1, 1)),  # (5 - 2) // 2, (4 - 1) // 2: odd leftovers go right/down
        ("bottom-center", (1, 3)),
        ("bottom-right", (3, 3)),
        ("center-left", (0, 1)),
    ],
)
def test_anchor_offset(anchor: str, expected: tuple[int, int]) -> None:
    assert anchor_offset(anchor, (5, 4), (2, 1)) == expected
