"""remove_background: key, flood (4-connected, enclosed regions kept), alpha, detection, halo cleanup."""

from __future__ import annotations

from collections import deque

import numpy as np
import pytest

from pixelbuild.post.background import detect_background, flood_from_border
from pixelbuild.post.common import to_array
from tests.post.helpers import LEGEND, picture, rows_of, run

RING = ["WWWWW", "WKKKW", "WKWKW", "WKKKW", "WWWWW"]


def apply(entry: object, rows: list[str], legend: dict[str, tuple[int, int, int, int]] = LEGEND) -> list[str]:
    (result,) = run([entry], [picture(rows, legend)])
    return rows_of(result, legend)


def test_key_removes_every_background_pixel() -> None:
    assert apply({"remove_background": {"mode": "key"}}, RING) == [
        ".....",
        ".KKK.",
        ".K.K.",
        ".KKK.",
        ".....",
    ]


def test_flood_keeps_enclosed_background_coloured_regions() -> None:
    assert apply("remove_background", RING) == [".....", ".KKK.", ".KWK.", ".KKK.", "....."]


def test_flood_does_not_leak_through_diagonal_gaps() -> None:
    rows = ["WWWWW", "WKKWW", "WKWKW", "WKKKW", "WWWWW"]
    assert apply("remove_background", rows) == [".....", ".KK..", ".KWK.", ".KKK.", "....."]


def test_tolerance_removes_noisy_background() -> None:
    legend = {**LEGEND, "a": (200, 203, 197, 255), "b": (195, 200, 206, 255), "s": (150, 150, 150, 255)}
    rows = ["abab", "bssa", "abab"]
    # b is 9 levels (blue) away from a.
    loose = {"remove_background": {"color": "#c8cbc5", "tolerance": 9}}
    assert apply(loose, rows, legend) == ["....", ".ss.", "...."]
    strict = {"remove_background": {"color": "#c8cbc5", "tolerance": 8}}
    assert apply(strict, rows, legend) == [".b.b", "bss.", ".b.b"]


def test_background_is_detected_from_the_agreeing_corners() -> None:
    rows = ["KWWW", "WWRW", "WWWW"]
    assert apply("remove_background", rows) == ["K...", "..R.", "...."]
    assert detect_background(to_array(picture(rows))) == (255, 255, 255, 255)


def test_corner_ties_go_to_the_top_left() -> None:
    assert detect_background(to_array(picture(["GGWW", "GGWW", "GGWW", "GGWW"]))) == (0, 255, 0, 255)


def test_explicit_colour() -> None:
    rows = ["GGW", "GKW"]
    assert apply({"remove_background": {"mode": "key", "color": "#00ff00"}}, rows) == ["..W", ".KW"]


def test_transparent_background_matches_only_transparent_pixels() -> None:
    rows = ["....", ".KK.", ".KR.", "...."]
    assert apply("remove_background", rows) == rows


def test_alpha_mode_makes_alpha_hard() -> None:
    legend = {
        **LEGEND,
        "a": (10, 20, 30, 100),
        "b": (10, 20, 30, 200),
        "h": (10, 20, 30, 255),
        "z": (9, 9, 9, 0),
    }
    assert apply({"remove_background": {"mode": "alpha"}}, ["zabh"], legend) == ["..hh"]
    assert apply({"remove_background": {"mode": "alpha", "alpha_threshold": 50}}, ["zabh"], legend) == [".hhh"]


def test_cleanup_removes_the_light_halo_next_to_the_background_only() -> None:
    legend = {**LEGEND, "l": (220, 220, 220, 255)}
    rows = ["WWWWWWW", "WlKKKlW", "WlKlKlW", "WlKKKlW", "WWWWWWW"]
    assert apply("remove_background", rows, legend) == [".......", ".lKKKl.", ".lKlKl.", ".lKKKl.", "......."]
    cleaned = apply({"remove_background": {"cleanup": True}}, rows, legend)
    assert cleaned == [".......", "..KKK..", "..KlK..", "..KKK..", "......."]
    strict = apply({"remove_background": {"cleanup": True, "cleanup_tolerance": 20}}, rows, legend)
    assert strict == [".......", ".lKKKl.", ".lKlKl.", ".lKKKl.", "......."]


def reference_flood(mask: np.ndarray) -> np.ndarray:
    """Pixel-by-pixel breadth-first flood from every border pixel of ``mask``."""
    height, width = mask.shape
    reached = np.zeros_like(mask)
    queue: deque[tuple[int, int]] = deque()
    for y in range(height):
        for x in range(width):
            if mask[y, x] and (y in (0, height - 1) or x in (0, width - 1)):
                reached[y, x] = True
                queue.append((y, x))
    while queue:
        y, x = queue.popleft()
        for ny, nx in ((y - 1, x), (y + 1, x), (y, x - 1), (y, x + 1)):
            if 0 <= ny < height and 0 <= nx < width and mask[ny, nx] and not reached[ny, nx]:
                reached[ny, nx] = True
                queue.append((ny, nx))
    return reached


@pytest.mark.parametrize("seed", range(16))
def test_run_based_flood_matches_a_pixel_flood(seed: int) -> None:
    rng = np.random.default_rng(seed)
    shape = (int(rng.integers(1, 60)), int(rng.integers(1, 60)))
    mask = rng.random(shape) < rng.uniform(0.3, 0.75)
    assert np.array_equal(flood_from_border(mask), reference_flood(mask))


def spiral(size: int) -> np.ndarray:
    """A one-pixel corridor winding inwards from the border: the longest path a flood can take."""
    walls = np.zeros((size, size), dtype=bool)
    top, left, bottom, right = 1, 0, size - 1, size - 1
    while top <= bottom and left <= right:
        walls[top, left : right + 1] = True
        walls[top : bottom + 1, right] = True
        walls[bottom, left + 2 : right + 1] = True
        walls[top + 2 : bottom + 1, left + 2] = True
        top, left, bottom, right = top + 4, left + 4, bottom - 4, right - 4
    return ~walls


def test_flood_follows_a_long_winding_corridor() -> None:
    mask = spiral(41)
    mask[0, :] = True
    mask[17:24, 17:24] = False  # a walled pocket in the middle...
    mask[19:22, 19:22] = True  # ...holding pixels the flood must not reach
    flooded = flood_from_border(mask)
    assert np.array_equal(flooded, reference_flood(mask))
    assert flooded[0, 0] and flooded[18, 16] and not flooded[20, 20]


def test_flood_of_nothing_and_everything() -> None:
    assert not flood_from_border(np.zeros((3, 4), dtype=bool)).any()
    assert flood_from_border(np.ones((3, 4), dtype=bool)).all()
    enclosed = np.zeros((3, 3), dtype=bool)
    enclosed[1, 1] = True
    assert not flood_from_border(enclosed).any()
