"""Geometry ops, pixel for pixel: trim, pad, canvas, scale, flip, rotate, resize."""

from __future__ import annotations

from PIL import Image

from pixelbuild.post import load_ops
from tests.post.helpers import NO_FILES, picture, rows_of, run, run_one


def test_trim_crops_to_the_visible_pixels() -> None:
    assert run_one("trim", "......", "..RG..", "..B...", "......") == ["RG", "B."]


def test_trim_margin_keeps_transparent_pixels_around() -> None:
    assert run_one({"trim": {"margin": 1}}, "......", "......", "...R..", "......") == ["...", ".R.", "..."]


def test_trim_margin_beyond_the_image_pads_transparently() -> None:
    assert run_one({"trim": {"margin": 2}}, "R.", "..") == [".....", ".....", "..R..", ".....", "....."]


def test_trim_uses_one_box_for_all_frames_so_animations_stay_aligned() -> None:
    first = picture(["R....", ".....", "....."])
    second = picture([".....", ".....", "...G."])
    a, b = run(["trim"], [first, second])
    assert rows_of(a) == ["R...", "....", "...."]
    assert rows_of(b) == ["....", "....", "...G"]


def test_trim_per_frame_when_not_common() -> None:
    first = picture(["R....", ".....", "....."])
    second = picture([".....", ".....", "..GG."])
    a, b = run([{"trim": {"common": False}}], [first, second])
    assert rows_of(a) == ["R"]
    assert rows_of(b) == ["GG"]


def test_trim_of_an_empty_frame_gives_one_transparent_pixel() -> None:
    # The op on its own: a chain refuses a sprite with no visible pixel (tests/post/test_degenerate.py).
    (result,) = load_ops()["trim"].function([picture(["...", "..."])], {"margin": 0, "common": True}, NO_FILES)
    assert rows_of(result) == ["."]


def test_pad_adds_sides() -> None:
    assert run_one({"pad": {"left": 1, "top": 0, "right": 2, "bottom": 1}}, "RG") == [".RG..", "....."]


def test_pad_amount_and_fill() -> None:
    assert run_one({"pad": {"amount": 1, "fill": "#ffffff"}}, "R.") == ["WWWW", "WRWW", "WWWW"]


def test_canvas_bottom_center_anchor() -> None:
    assert run_one({"canvas": {"size": [5, 3], "anchor": "bottom-center"}}, "RG") == [
        ".....",
        ".....",
        ".RG..",
    ]


def test_canvas_center_rounds_odd_leftovers_down() -> None:
    assert run_one({"canvas": {"size": [4, 3]}}, "R") == ["....", ".R..", "...."]


def test_canvas_crops_a_larger_frame_around_the_anchor() -> None:
    assert run_one({"canvas": {"size": [2, 1], "anchor": "center"}}, "RGBY", "KWKW") == ["GB"]
    assert run_one({"canvas": {"size": [2, 1], "anchor": "bottom-right"}}, "RGBY", "KWKW") == ["KW"]


def test_canvas_fill_shows_through_transparent_pixels_only() -> None:
    assert run_one({"canvas": {"size": [3, 1], "anchor": "top-left", "fill": [0, 0, 0]}}, "R.") == ["RKK"]


def test_scale_repeats_each_pixel() -> None:
    assert run_one({"scale": {"factor": 2}}, "RG", "B.") == ["RRGG", "RRGG", "BB..", "BB.."]


def test_flip() -> None:
    assert run_one("flip", "RGB", "K..") == ["BGR", "..K"]
    assert run_one({"flip": {"direction": "vertical"}}, "RGB", "K..") == ["K..", "RGB"]
    assert run_one({"flip": {"direction": "both"}}, "RGB", "K..") == ["..K", "BGR"]


def test_rotate_is_clockwise() -> None:
    assert run_one({"rotate": {"angle": 90}}, "RG", "B.") == ["BR", ".G"]
    assert run_one({"rotate": {"angle": 180}}, "RG", "B.") == [".B", "GR"]
    assert run_one({"rotate": {"angle": 270}}, "RG", "B.") == ["G.", "RB"]


def test_resize_nearest_still_works() -> None:
    assert run_one({"resize": {"size": [2, 1]}}, "RRGG", "RRGG") == ["RG"]


def test_geometry_ops_apply_to_every_frame() -> None:
    frames = [picture(["RG"]), picture(["BY"])]
    assert [rows_of(f) for f in run(["flip"], frames)] == [["GR"], ["YB"]]
    assert all(f.mode == "RGBA" for f in run([{"scale": {"factor": 1}}], [Image.new("RGB", (1, 1))]))
