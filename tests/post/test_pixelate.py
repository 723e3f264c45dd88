"""pixelate: fixed-size modes pixel for pixel, and grid detection on synthetic diffusion pixel art."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image, ImageFilter

from pixelbuild.errors import PostError
from pixelbuild.post.common import to_array
from pixelbuild.post.pixelate import detect_grid
from pixelbuild.testing.degrade import load_sprites
from tests.conftest import REPO
from tests.post.helpers import LEGEND, picture, rows_of, run, run_one
from tests.post.synth import BACKGROUND, SPRITE_COLOURS, diffusion_like, random_sprite

SPRITE_PALETTE = np.vstack([SPRITE_COLOURS, BACKGROUND[None]]).astype(np.int64)


def palette_indices(pixels: np.ndarray) -> np.ndarray:
    """Index of the nearest sprite colour for every pixel (to compare noisy output with the original)."""
    difference = pixels[..., None, :3].astype(np.int64) - SPRITE_PALETTE[None, None]
    return np.asarray((difference * difference).sum(axis=-1).argmin(axis=-1))


# ------------------------------------------------------------------------------------------ fixed sizes


def test_nearest_takes_each_cell_centre() -> None:
    rows = ["RRGGBB", "RRGGBB", "KKWWYY", "KKWWYY"]
    assert run_one({"pixelate": {"mode": "nearest", "size": [3, 2]}}, *rows) == ["RGB", "KWY"]
    # 6 -> 4 columns: centres at x = 0, 2, 3, 5 (integer (2i + 1) * 6 // 8).
    assert run_one({"pixelate": {"mode": "nearest", "size": [4, 1]}}, "RGBYKW") == ["RBYW"]


def test_box_averages_each_cell_with_rounding() -> None:
    legend = {**LEGEND, "a": (10, 20, 30, 255), "b": (11, 20, 30, 255), "c": (11, 21, 31, 255)}
    (result,) = run([{"pixelate": {"mode": "box", "size": 1}}], [picture(["ab", "bc"], legend)])
    # Means (43/4, 81/4, 121/4) = (10.75, 20.25, 30.25) round to (11, 20, 30).
    assert result.getpixel((0, 0)) == (11, 20, 30, 255)


def test_box_does_not_let_transparent_pixels_add_colour() -> None:
    (result,) = run([{"pixelate": {"mode": "box", "size": 1}}], [picture(["R.", ".."])])
    assert result.getpixel((0, 0)) == (255, 0, 0, 64)


def test_mode_takes_the_most_frequent_colour() -> None:
    assert run_one({"pixelate": {"mode": "mode", "size": [2, 1]}}, "RRGG", "RBGG") == ["RG"]


def test_mode_breaks_ties_by_the_smallest_colour() -> None:
    # Two blue, two red pixels: (0, 0, 255) sorts before (255, 0, 0).
    assert run_one({"pixelate": {"mode": "mode", "size": 1}}, "RB", "BR") == ["B"]


def test_mode_counts_transparent_pixels_as_one_colour() -> None:
    legend = {**LEGEND, "x": (9, 9, 9, 0)}
    (result,) = run([{"pixelate": {"mode": "mode", "size": [2, 1]}}], [picture(["x.RR", ".RRR"], legend)])
    assert rows_of(result) == [".R"]


# --------------------------------------------------------------------------------------------- auto


def test_auto_recovers_a_clean_integer_upscale_exactly() -> None:
    small = picture(["RGB.", "KWYC", "..MR"])
    big = small.resize((small.width * 8, small.height * 8), Image.Resampling.NEAREST)
    (result,) = run(["pixelate"], [big])
    assert rows_of(result) == rows_of(small)


@pytest.mark.parametrize(
    ("sprite_size", "scale", "seed"),
    [(64, 15.7, 0), (32, 9.7, 1), (48, 6.35, 2), (24, 21.4, 3)],
)
def test_auto_recovers_diffusion_pixel_art(sprite_size: int, scale: float, seed: int) -> None:
    """A pixel sprite upscaled by a non-integer factor, blurred (radius 1), noised (sigma 6) and shifted
    by a partial cell: the detected cell is within 0.5% of the true scale, the output has the sprite's
    size, and at least 99% of its pixels have the original colour (nearest sprite colour)."""
    sprite = random_sprite(sprite_size, seed)
    crop = (int(scale * 0.3), int(scale * 0.2))
    image = diffusion_like(sprite, scale, seed=seed, noise=6.0, blur=1.0, crop=crop)
    grids = detect_grid([image])
    assert grids is not None
    (grid,) = grids
    assert grid.x.cell == pytest.approx(scale, rel=0.005)
    assert grid.y.cell == pytest.approx(scale, rel=0.005)
    assert grid.x.confidence > 10
    (result,) = run(["pixelate"], [image])
    assert result.size == (sprite_size, sprite_size)
    matching = (palette_indices(to_array(result)) == palette_indices(sprite)).mean()
    assert matching >= 0.99


def test_auto_is_not_fooled_by_the_sprite_silhouette() -> None:
    """Small cells (3.3 px): the silhouette's broad low-frequency energy is stronger in the raw spectrum
    than the grid's peak (here at ~57 px); the grid's peak is the more prominent one."""
    image = diffusion_like(random_sprite(64, 1), 3.3, seed=1, noise=6.0, blur=0.4, crop=(0, 0))
    grids = detect_grid([image])
    assert grids is not None
    assert grids[0].x.cell == pytest.approx(3.3, rel=0.005)


@pytest.mark.parametrize("side", [64, 128, 200, 512])
def test_auto_finds_no_grid_in_noise_and_leaves_it_unchanged(side: int) -> None:
    rng = np.random.default_rng(side)
    noise = Image.fromarray(rng.integers(0, 256, (side, side, 3), dtype=np.uint8)).convert("RGBA")
    assert detect_grid([noise]) is None
    (result,) = run(["pixelate"], [noise])
    assert np.array_equal(to_array(result), to_array(noise))


def test_auto_leaves_art_at_one_pixel_per_pixel_unchanged() -> None:
    native = Image.fromarray(random_sprite(64, 0)).convert("RGBA")
    assert detect_grid([native]) is None
    (kept,) = run(["pixelate"], [native])
    assert np.array_equal(to_array(kept), to_array(native))
    # The same art drawn at 9.7 px per pixel is found.
    image = diffusion_like(random_sprite(32, 1), 9.7, seed=1, crop=(2, 1))
    (result,) = run(["pixelate"], [image])
    assert result.size == (32, 32)


def test_auto_min_confidence_leaves_unclear_grids_alone() -> None:
    image = diffusion_like(random_sprite(32, 1), 9.7, seed=1, crop=(2, 1))
    grids = detect_grid([image])
    assert grids is not None
    confidence = grids[0].x.confidence
    (kept,) = run([{"pixelate": {"min_confidence": confidence + 1}}], [image])
    assert kept.size == image.size
    (result,) = run([{"pixelate": {"min_confidence": confidence - 1}}], [image])
    assert result.size == (32, 32)


def test_auto_on_no_grid_fail_fails_the_sprite() -> None:
    native = Image.fromarray(random_sprite(48, 2)).convert("RGBA")
    with pytest.raises(PostError, match="pixelate found no pixel grid in the image") as caught:
        run([{"pixelate": {"on_no_grid": "fail"}}], [native])
    assert caught.value.field == "post"


@pytest.mark.parametrize(("min_cell", "max_cell"), [(10, 20), (2, 6), (12, 64), (2, 64)])
@pytest.mark.parametrize("scale", [4.4, 7.67, 15.3, 30.2])
def test_auto_cells_stay_within_min_and_max_cell(min_cell: float, max_cell: float, scale: float) -> None:
    """Whatever the true cell, a detected one lies in [min_cell, max_cell]; and a true cell inside the
    band is found."""
    sprite = random_sprite(max(8, round(320 / scale)), 3)
    image = diffusion_like(sprite, scale, seed=3, noise=5.0, blur=0.05 * scale, crop=(1, 2))
    grids = detect_grid([image], min_cell=min_cell, max_cell=max_cell)
    if grids is not None:
        for axis in (grids[0].x, grids[0].y):
            assert min_cell <= axis.cell <= max_cell
    if min_cell * 1.01 <= scale <= max_cell / 1.01:
        assert grids is not None
        assert grids[0].x.cell == pytest.approx(scale, rel=0.01)


def jpeg_at_16(sprite: np.ndarray, seed: int) -> Image.Image:
    """The issue's case: ``sprite`` drawn at exactly 16 px per cell (its grid on the 8x8 JPEG block
    lattice), blurred, noised and saved at quality 80."""
    height, width = sprite.shape[:2]
    big = Image.fromarray(sprite).resize((16 * width, 16 * height), Image.Resampling.NEAREST)
    big = big.filter(ImageFilter.GaussianBlur(1.0))
    rng = np.random.default_rng(seed)
    noisy = np.clip(np.asarray(big).astype(np.float64) + rng.normal(0, 6, (16 * height, 16 * width, 3)), 0, 255)
    buffer = io.BytesIO()
    Image.fromarray(noisy.astype(np.uint8)).save(buffer, "JPEG", quality=80)
    return Image.open(io.BytesIO(buffer.getvalue())).convert("RGBA")


def test_auto_recovers_a_jpeg_at_16_px_per_cell() -> None:
    sprite = random_sprite(40, 9)[:16]
    (result,) = run(["pixelate"], [jpeg_at_16(sprite, 9)])
    assert result.size == (40, 16)


@pytest.mark.parametrize("name", ["pyxel_jump_cloud", "pyxel_jump_trees"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_auto_never_takes_the_jpeg_block_grid_for_the_art(name: str, seed: int) -> None:
    """Low-contrast real art at 16 px per cell, as JPEG: its 8x8 blocks outshine the art's own weak
    edges, and the detector used to lock onto them (8-px cells, twice the size). Now it finds the
    real grid or, when strong edges cannot bear any grid out, none: never the blocks."""
    sprite = load_sprites(REPO / "tests/fixtures/pixelart", [name])[name]
    grids = detect_grid([jpeg_at_16(sprite, seed)])
    if grids is not None:
        assert grids[0].size == (sprite.shape[1], sprite.shape[0])


def test_auto_leaves_a_jpeg_of_a_smooth_photo_unchanged() -> None:
    """A smooth image has no steps of its own; JPEG gives it an 8-px block lattice, which is not art."""
    rng = np.random.default_rng(4)
    field = Image.fromarray(rng.integers(0, 256, (256, 256, 3), dtype=np.uint8)).filter(ImageFilter.GaussianBlur(6))
    smooth = np.asarray(field).astype(np.float64)
    smooth = np.clip((smooth - smooth.mean()) * (60 / smooth.std()) + 128, 0, 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(smooth).save(buffer, "JPEG", quality=60)
    photo = Image.open(io.BytesIO(buffer.getvalue())).convert("RGBA")
    assert detect_grid([photo]) is None


def test_auto_with_size_forces_the_grid_count() -> None:
    image = diffusion_like(random_sprite(32, 4), 9.7, seed=4, crop=(2, 1))
    (result,) = run([{"pixelate": {"size": [32, 30]}}], [image])
    assert result.size == (32, 30)


def test_auto_max_size_coarsens_to_a_whole_multiple_of_the_cell() -> None:
    image = diffusion_like(random_sprite(32, 5), 9.7, seed=5, crop=(2, 1))
    grids = detect_grid([image], max_size=(16, 16))
    assert grids is not None
    (grid,) = grids
    assert grid.x.cell == pytest.approx(2 * 9.7, rel=0.01)
    (result,) = run([{"pixelate": {"max_size": 16}}], [image])
    # 308 px / 19.4 px = 15.9 cells: 15 or 16 whole-enough cells depending on the offset, never more.
    assert 15 <= result.width <= 16 and 15 <= result.height <= 16


def test_auto_frames_share_one_cell_size_and_output_size() -> None:
    # Two frames of one size whose grids start at different offsets.
    frames = [
        diffusion_like(random_sprite(32, 6), 9.7, seed=6, crop=(1, 2)).crop((0, 0, 300, 300)),
        diffusion_like(random_sprite(32, 7), 9.7, seed=7, crop=(4, 3)).crop((0, 0, 300, 300)),
    ]
    grids = detect_grid(frames)
    assert grids is not None
    assert grids[0].x.period == grids[1].x.period
    assert grids[0].x.first != grids[1].x.first
    results = run(["pixelate"], frames)
    assert results[0].size == results[1].size == grids[0].size


def test_auto_keeps_transparent_cells_transparent() -> None:
    small = picture(["..RR..", ".RGGR.", "..RR..", "......"])
    big = small.resize((small.width * 7, small.height * 7), Image.Resampling.NEAREST)
    (result,) = run(["pixelate"], [big])
    assert rows_of(result) == rows_of(small)


def test_auto_leaves_a_flat_image_as_it_is() -> None:
    """No step at all: no grid (it used to collapse to a few pixels)."""
    flat = Image.new("RGBA", (100, 60), (5, 6, 7, 255))
    (result,) = run(["pixelate"], [flat])
    assert np.array_equal(to_array(result), to_array(flat))
