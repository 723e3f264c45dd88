"""Frame sheets: strip, vertical and grid layouts, their rectangles, and splitting back."""

from __future__ import annotations

import pytest

from pixelbuild.sheets import FrameRect, assemble, assemble_frames, assemble_sheet, layout_frames, split
from tests.post.helpers import picture, rows_of


def test_strip() -> None:
    sheet = assemble([picture(["R"]), picture(["G"]), picture(["B"])])
    assert rows_of(sheet) == ["RGB"]


def test_vertical() -> None:
    assert rows_of(assemble([picture(["RR"]), picture(["GG"])], "vertical")) == ["RR", "GG"]


def test_grid_defaults_to_the_smallest_square_and_pads_between_cells() -> None:
    frames = [picture([c]) for c in "RGBYK"]
    sheet, layout = assemble_sheet(frames, "grid", padding=1)
    assert (layout.columns, layout.rows) == (3, 2)
    assert rows_of(sheet) == ["R.G.B", ".....", "Y.K.."]
    assert layout.frames[4] == FrameRect(4, 2, 2, 1, 1)


def test_grid_with_columns() -> None:
    layout = layout_frames([(2, 2)] * 5, "grid", columns=2)
    assert (layout.width, layout.height, layout.rows) == (4, 6, 3)
    assert [(r.x, r.y) for r in layout.frames] == [(0, 0), (2, 0), (0, 2), (2, 2), (0, 4)]


def test_unequal_frames_get_equal_cells_and_an_anchor() -> None:
    frames = [picture(["RR", "RR"]), picture(["G"])]
    sheet, layout = assemble_sheet(frames, "strip", anchor="bottom-center")
    assert (layout.cell_width, layout.cell_height) == (2, 2)
    assert layout.frames[1] == FrameRect(1, 2, 1, 1, 1)  # centring rounds left
    assert rows_of(sheet) == ["RR..", "RRG."]


def test_split_inverts_assemble() -> None:
    frames = [picture(["RG", "BY"]), picture(["K.", "WW"]), picture(["..", ".R"])]
    sheet, layout = assemble_sheet(frames, "grid", columns=2, padding=3)
    assert [rows_of(f) for f in split(sheet, layout)] == [rows_of(f) for f in frames]


def test_assemble_frames_uses_the_resolved_layout() -> None:
    strip = {"type": "strip", "columns": None, "padding": 0}
    assert rows_of(assemble_frames([picture(["R"]), picture(["G"])], strip)) == ["RG"]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"sizes": []}, "at least one frame"),
        ({"sizes": [(1, 1)], "layout": "spiral"}, "unknown frame layout"),
        ({"sizes": [(1, 1)], "anchor": "middle"}, "unknown anchor"),
        ({"sizes": [(1, 1)], "padding": -1}, "must not be negative"),
        ({"sizes": [(1, 1)], "layout": "grid", "columns": 0}, "at least 1"),
    ],
)
def test_layout_errors(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        layout_frames(**kwargs)  # type: ignore[arg-type]
