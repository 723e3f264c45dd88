"""A slice of bench/grid_recovery.py as tests: real pixel art (tests/fixtures/pixelart) degraded as
diffusion models draw it, the clean originals, and noise."""

from __future__ import annotations

import zlib

import numpy as np
import pytest

from pixelbuild.post.common import to_array
from pixelbuild.post.pixelate import detect_grid
from pixelbuild.testing.degrade import (
    DEGRADATIONS,
    clean,
    colour_class_accuracy,
    degrade,
    load_sprites,
    noise_cases,
)
from tests.conftest import REPO
from tests.post.helpers import run

SPRITES = load_sprites(REPO / "tests/fixtures/pixelart")
SLICE = [
    "pyxel_cat_16x16",
    "pyxel_jump_cherry",
    "pyxel_jump_player",
    "pyxel_pyxel_logo_38x16",
    "pyxel_sample_skeletons",
    "ansimuz_miami_car",
]


def case(name: str, degradation: str):  # type: ignore[no-untyped-def]
    return degrade(name, SPRITES[name], degradation, zlib.crc32(f"{name}/{degradation}".encode()))


def test_the_fixtures_are_the_21_sprites_the_readme_lists() -> None:
    assert len(SPRITES) == 21
    assert all(2 <= min(sprite.shape[:2]) <= 128 for sprite in SPRITES.values())


@pytest.mark.parametrize("name", sorted(SPRITES))
def test_clean_art_at_one_pixel_per_pixel_comes_out_unchanged(name: str) -> None:
    original = clean(name, SPRITES[name]).image
    assert detect_grid([original]) is None
    (result,) = run(["pixelate"], [original])
    assert np.array_equal(to_array(result), to_array(original))


@pytest.mark.parametrize("degradation", sorted(DEGRADATIONS))
@pytest.mark.parametrize("name", SLICE)
def test_sizes_and_colours_are_recovered(name: str, degradation: str) -> None:
    drawn = case(name, degradation)
    (result,) = run(["pixelate"], [drawn.image])
    assert result.size == (drawn.original.shape[1], drawn.original.shape[0])
    # Colours are the cell's median, not the grid's business: 15 close shades at 4.4 px cells under
    # noise of sigma 8 (the car) come out 95% right, everything else 99-100%.
    assert colour_class_accuracy(to_array(result), drawn) >= 0.93


@pytest.mark.parametrize("degradation", ["jpeg", "jpeg-aligned", "all"])
@pytest.mark.parametrize("name", [*SLICE[:4], "pyxel_jump_cloud", "pyxel_jump_trees", "pyxel_sample_blasts"])
def test_jpeg_blocks_are_never_taken_for_the_grid(name: str, degradation: str) -> None:
    """Whatever the outcome on a hard case, a cell of 8.0 px comes only from art drawn at 8 px."""
    drawn = case(name, degradation)
    grids = detect_grid([drawn.image])
    if grids is not None and abs(grids[0].x.cell - 8.0) < 0.04:
        assert drawn.scale == 8.0


@pytest.mark.parametrize(("min_cell", "max_cell"), [(2, 64), (10, 20), (5, 9), (12, 40)])
@pytest.mark.parametrize("name", SLICE[:3])
def test_detected_cells_stay_within_the_band(name: str, min_cell: float, max_cell: float) -> None:
    for degradation in ("noise", "jpeg", "all"):
        grids = detect_grid([case(name, degradation).image], min_cell=min_cell, max_cell=max_cell)
        for grid in grids or []:
            assert min_cell <= grid.x.cell <= max_cell and min_cell <= grid.y.cell <= max_cell


@pytest.mark.parametrize("noise", noise_cases(), ids=lambda case: case.name)
def test_noise_and_photos_have_no_grid(noise) -> None:  # type: ignore[no-untyped-def]
    assert detect_grid([noise.image]) is None
