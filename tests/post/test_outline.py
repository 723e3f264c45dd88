"""outline: outer and inner lines, diagonal neighbours, canvas growth."""

from __future__ import annotations

from tests.post.helpers import run_one


def test_outer_outline_grows_the_canvas_and_rings_the_sprite() -> None:
    assert run_one("outline", "R") == [".K.", "KRK", ".K."]


def test_outer_outline_with_diagonals() -> None:
    assert run_one({"outline": {"diagonal": True}}, "R") == ["KKK", "KRK", "KKK"]


def test_outer_outline_without_expanding_is_cut_at_the_border() -> None:
    assert run_one({"outline": {"expand": False, "color": "#ffffff"}}, "R..", "...") == ["RW.", "W.."]


def test_outline_only_fills_transparent_pixels() -> None:
    assert run_one({"outline": {"expand": False}}, "....", ".RG.", "....") == [".KK.", "KRGK", ".KK."]


def test_inner_outline_recolours_edge_pixels() -> None:
    assert run_one({"outline": {"mode": "inner", "color": [0, 0, 255]}}, "....", ".RRR", ".RRR", ".RRR") == [
        "....",
        ".BBB",
        ".BRB",
        ".BBB",
    ]


def test_inner_outline_diagonal_counts_corner_neighbours() -> None:
    rows = ["RRRR", "RRRR", "RRRR", "RRR."]
    assert run_one({"outline": {"mode": "inner"}}, *rows) == ["KKKK", "KRRK", "KRRK", "KKK."]
    assert run_one({"outline": {"mode": "inner", "diagonal": True}}, *rows) == [
        "KKKK",
        "KRRK",
        "KRKK",
        "KKK.",
    ]
