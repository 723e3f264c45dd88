"""The palette op: adaptive palettes, fixed palettes, dithering, alpha, and frames sharing one palette."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from pixelbuild.post.common import to_array
from pixelbuild.post.palette import bayer_matrix, build_palette
from pixelbuild.post.palette_files import BUILTIN_PALETTES
from tests.post.helpers import LEGEND, Files, picture, rows_of, run, run_one
from tests.post.synth import BACKGROUND, SPRITE_COLOURS, diffusion_like, random_sprite


def colours_of(*frames: Image.Image) -> set[tuple[int, ...]]:
    """The distinct RGBA values of the frames together."""
    return {tuple(int(v) for v in px) for f in frames for px in to_array(f).reshape(-1, 4)}


def grey(value: int, alpha: int = 255) -> tuple[int, int, int, int]:
    return (value, value, value, alpha)


def test_few_colours_are_kept_exactly() -> None:
    rows = ["RGBY", "KWgo"]
    assert run_one({"palette": {"colors": 8}}, *rows) == rows


def test_an_image_within_the_colour_budget_is_unchanged_despite_min_distance() -> None:
    """A 16-colour sprite with close shades (4 levels apart, within the default min_distance of 8)
    keeps every colour: merging is only for images with more colours than asked for."""
    rng = np.random.default_rng(3)
    shades = np.array([(40 + 4 * i, 60 + 4 * i, 90 + 3 * i, 255) for i in range(16)], dtype=np.uint8)
    pixels = shades[rng.integers(0, 16, (12, 12))]
    pixels[0, 0, 3] = 128  # alpha is kept as well
    image = Image.fromarray(pixels, mode="RGBA")
    (result,) = run([{"palette": {"colors": 16}}], [image])
    assert np.array_equal(to_array(result), pixels)
    # With one colour more than the budget, close shades do get merged.
    (fewer,) = run([{"palette": {"colors": 15}}], [image])
    assert len(colours_of(fewer)) < 16


def test_adaptive_palette_uses_cluster_means() -> None:
    legend = {**LEGEND, "a": grey(0), "b": grey(10), "c": grey(240), "d": grey(250)}
    (result,) = run([{"palette": {"colors": 2}}], [picture(["abcd", "abcd"], legend)])
    assert rows_of(result, {"x": grey(5), "y": grey(245)}) == ["xxyy", "xxyy"]


def test_adaptive_palette_is_not_spent_on_a_noisy_dominant_colour() -> None:
    """A noisy flat background covering most of the picture must not take the place of real colours:
    every sprite colour gets a palette entry within 3 levels, and the near-duplicates are merged."""
    sprite = random_sprite(64, 0)
    (small,) = run(["pixelate"], [diffusion_like(sprite, 15.7, seed=0, crop=(4, 3))])
    true_colours = np.unique(sprite.reshape(-1, 3), axis=0).astype(np.int64)
    palette = build_palette([to_array(small)], 16, "kmeans", min_distance=8)
    assert len(palette) == len(true_colours)
    for colour in true_colours:
        assert np.abs(palette - colour).max(axis=1).min() <= 3
    # Without merging, the spare entries go to background noise instead.
    assert len(build_palette([to_array(small)], 16, "kmeans", min_distance=0)) == 16


def test_images_with_very_many_colours_are_reduced_deterministically() -> None:
    # 65536 distinct colours: past the limit where palettes are built from 6-bit colours.
    index = np.arange(1 << 16)
    pixels = np.zeros((256, 256, 4), dtype=np.uint8)
    pixels[..., 0] = (index & 255).reshape(256, 256)
    pixels[..., 1] = (index >> 8).reshape(256, 256)
    pixels[..., 2] = ((index * 37) & 255).reshape(256, 256)
    pixels[..., 3] = 255
    image = Image.fromarray(pixels)
    assert len(np.unique(pixels.reshape(-1, 4), axis=0)) > 1 << 15
    (first,) = run([{"palette": {"colors": 12}}], [image])
    (second,) = run([{"palette": {"colors": 12}}], [image.copy()])
    assert 2 <= len(colours_of(first)) <= 12
    assert np.array_equal(to_array(first), to_array(second))


def test_median_cut_method_gives_at_most_n_colours() -> None:
    rng = np.random.default_rng(3)
    pixels = rng.integers(0, 256, (16, 16, 4), dtype=np.uint8)
    pixels[..., 3] = 255
    (result,) = run([{"palette": {"colors": 5, "method": "median-cut"}}], [Image.fromarray(pixels)])
    assert 2 <= len(colours_of(result)) <= 5


def test_preset_maps_to_the_nearest_preset_colour() -> None:
    legend = {**LEGEND, "a": (250, 5, 70, 255), "b": (40, 170, 250, 255), "c": (2, 2, 2, 255)}
    (result,) = run([{"palette": {"preset": "pico-8"}}], [picture(["abc"], legend)])
    assert [result.getpixel((x, 0)) for x in range(3)] == [
        (255, 0, 77, 255),
        (41, 173, 255, 255),
        (0, 0, 0, 255),
    ]


@pytest.mark.parametrize(
    ("name", "count"),
    [("pico-8", 16), ("db16", 16), ("db32", 32), ("endesga-32", 32), ("gameboy", 4), ("nes", 55)],
)
def test_builtin_palettes(name: str, count: int) -> None:
    colours = BUILTIN_PALETTES[name]
    assert len(colours) == count == len(set(colours))


def test_builtin_palette_spot_checks() -> None:
    assert BUILTIN_PALETTES["pico-8"][8] == (0xFF, 0x00, 0x4D)
    assert BUILTIN_PALETTES["db16"][0] == (0x14, 0x0C, 0x1C)
    assert BUILTIN_PALETTES["db32"][-1] == (0x8A, 0x6F, 0x30)
    assert BUILTIN_PALETTES["endesga-32"][0] == (0xBE, 0x4A, 0x2F)
    assert BUILTIN_PALETTES["gameboy"] == (
        (0x0F, 0x38, 0x0F),
        (0x30, 0x62, 0x30),
        (0x8B, 0xAC, 0x0F),
        (0x9B, 0xBC, 0x0F),
    )
    assert BUILTIN_PALETTES["nes"][0] == (0x7C, 0x7C, 0x7C)


def test_colour_list_palette() -> None:
    # Magenta is nearer blue (red weighs 2, blue 3 in the distance); orange is nearer red.
    assert run_one({"palette": {"colors": ["#ff0000", [0, 0, 255]]}}, "RMBo") == ["RBBR"]


def test_palette_file_is_read_through_the_context() -> None:
    files = Files({"art/two.hex": b"000000\nffffff\n"})
    legend = {**LEGEND, "d": grey(100)}
    (result,) = run([{"palette": {"file": "art/two.hex"}}], [picture(["dRW"], legend)], files.context)
    assert rows_of(result) == ["KKW"]
    assert files.read == ["art/two.hex"]


def test_alpha_is_kept_and_transparent_pixels_do_not_pull_the_palette() -> None:
    pixels = np.zeros((10, 10, 4), dtype=np.uint8)
    pixels[...] = (255, 0, 0, 0)  # invisible red everywhere...
    pixels[0, :5] = (0, 0, 250, 255)
    pixels[0, 5:] = (0, 250, 0, 120)  # ...and two visible colours, one half transparent
    (result,) = run([{"palette": {"colors": 2}}], [Image.fromarray(pixels)])
    assert colours_of(result) == {(0, 0, 250, 255), (0, 250, 0, 120), (0, 0, 0, 0)}


def test_frames_share_one_palette() -> None:
    legend = {**LEGEND, "a": grey(0), "b": grey(100), "c": grey(200)}
    frames = [picture(["aabb"], legend), picture(["bbcc"], legend)]
    results = run([{"palette": {"colors": 2}}], frames)
    # Quantized per frame, each would keep its own two greys: three colours in all. Together the
    # greys 0 (2 px), 100 (4 px) and 200 (2 px) split into {0} and {100, 200} (weighted mean 133).
    out = {**legend, "x": grey(0), "y": grey(133)}
    assert rows_of(results[0], out) == ["xxyy"]
    assert rows_of(results[1], out) == ["yyyy"]


def test_palette_from_first_frame() -> None:
    legend = {**LEGEND, "a": grey(0), "b": grey(100), "c": grey(200)}
    frames = [picture(["aabb"], legend), picture(["bbcc"], legend)]
    _, second = run([{"palette": {"colors": 2, "palette_from": "first"}}], frames)
    assert rows_of(second, legend) == ["bbbb"]


def test_ordered_dither_golden() -> None:
    # 128 is nearest white, with black's share 291465 / 585225 (just under 1/2): black where the
    # Bayer 2 threshold (m + 1/2) / 4 is below that, i.e. m = 0 or 1: a checkerboard.
    (result,) = run(
        [{"palette": {"colors": ["#000000", "#ffffff"], "dither": "ordered", "bayer": 2}}],
        [Image.new("RGBA", (4, 2), grey(128))],
    )
    assert rows_of(result) == ["KWKW", "WKWK"]


def test_ordered_dither_of_a_quarter_mix() -> None:
    # 64 is nearest black with white's share 64/255 = 1/4 + 1/1020: white only where
    # (m + 1/2) / 16 is below that, i.e. m = 0..3 of the Bayer 4 matrix (positions of 0, 1, 2, 3).
    (result,) = run(
        [{"palette": {"colors": ["#000000", "#ffffff"], "dither": "ordered"}}],
        [Image.new("RGBA", (4, 4), grey(64))],
    )
    assert rows_of(result) == ["WKWK", "KKKK", "WKWK", "KKKK"]


def test_ordered_dither_ties_keep_the_nearest_colour() -> None:
    # (1, 1, 1) lies 1/8 of the way from black to (8, 8, 8); Bayer 2's first threshold is exactly
    # (0 + 1/2) / 4 = 1/8: the second colour needs a share strictly above the threshold.
    (result,) = run(
        [{"palette": {"colors": ["#000000", "#080808"], "dither": "ordered", "bayer": 2}}],
        [Image.new("RGBA", (2, 2), grey(1))],
    )
    assert rows_of(result) == ["KK", "KK"]


def test_ordered_dither_never_patterns_exact_palette_colours() -> None:
    legend = {**LEGEND, "a": (15, 75, 134, 255), "b": (23, 19, 37, 255)}
    rows = ["aaaa", "aaaa", "bbbb", "bbbb"]
    palette = {"colors": ["#0f4b86", "#171325", "#2cdde9"], "dither": "ordered", "strength": 2}
    (result,) = run([{"palette": palette}], [picture(rows, legend)])
    assert rows_of(result, legend) == rows


def test_ordered_dither_with_zero_strength_is_plain_mapping() -> None:
    image = Image.new("RGBA", (4, 4), grey(100))
    (plain,) = run([{"palette": {"colors": ["#000000", "#ffffff"]}}], [image])
    (zero,) = run([{"palette": {"colors": ["#000000", "#ffffff"], "dither": "ordered", "strength": 0}}], [image])
    assert rows_of(zero) == rows_of(plain) == ["KKKK"] * 4


FS_BW = {"palette": {"colors": ["#000000", "#ffffff"], "dither": "floyd-steinberg"}}


def test_floyd_steinberg_turns_mid_grey_into_a_checkerboard() -> None:
    (result,) = run([FS_BW], [Image.new("RGBA", (4, 2), grey(128))])
    assert rows_of(result) in (["WKWK", "KWKW"], ["KWKW", "WKWK"])


def test_floyd_steinberg_keeps_the_average_brightness() -> None:
    (result,) = run([FS_BW], [Image.new("RGBA", (16, 16), grey(64))])
    white = sum(1 for px in to_array(result).reshape(-1, 4) if px[0] == 255)
    assert 256 * 64 // 255 - 8 <= white <= 256 * 64 // 255 + 8


def smooth(pixels: np.ndarray, radius: int = 4) -> np.ndarray:
    """Box-filtered RGB (what the eye sees of a dither from a distance), valid region only."""
    rgb = pixels[..., :3].astype(np.float64)
    size = 2 * radius + 1
    total = np.pad(rgb.cumsum(0).cumsum(1), ((1, 0), (1, 0), (0, 0)))
    window = total[size:, size:] - total[:-size, size:] - total[size:, :-size] + total[:-size, :-size]
    return np.asarray(window / (size * size))


def test_floyd_steinberg_diffuses_the_error_deterministically_onto_palette_colours() -> None:
    """A colour gradient on a 6-colour palette: every pixel is a palette colour, the output seen from a
    distance (box filter) is much closer to the input than plain mapping is, and runs are identical."""
    yy, xx = np.mgrid[0:64, 0:64]
    pixels = np.stack([xx * 3 + 30, yy * 3 + 30, (xx + yy) + 60, np.full_like(xx, 255)], axis=-1).astype(np.uint8)
    colours = ["#101010", "#f0f0f0", "#d02020", "#20d020", "#2020d0", "#808080"]
    entry = {"palette": {"colors": colours, "dither": "floyd-steinberg"}}
    (dithered,) = run([entry], [Image.fromarray(pixels, mode="RGBA")])
    (again,) = run([entry], [Image.fromarray(pixels, mode="RGBA")])
    (plain,) = run([{"palette": {"colors": colours}}], [Image.fromarray(pixels, mode="RGBA")])
    out = to_array(dithered)
    assert np.array_equal(out, to_array(again))
    allowed = {tuple(int(c[i : i + 2], 16) for i in (1, 3, 5)) for c in colours}
    assert {tuple(int(v) for v in px[:3]) for px in out.reshape(-1, 4)} <= allowed
    assert (out[..., 3] == 255).all()
    dither_error = np.abs(smooth(out) - smooth(pixels)).mean()
    plain_error = np.abs(smooth(to_array(plain)) - smooth(pixels)).mean()
    assert dither_error < plain_error / 3


def test_floyd_steinberg_strength_zero_is_plain_mapping() -> None:
    rng = np.random.default_rng(1)
    pixels = rng.integers(0, 256, (24, 24, 4), dtype=np.uint8)
    pixels[..., 3] = 255
    colours = ["#000000", "#ffffff", "#ff0000", "#00ff00"]
    image = Image.fromarray(pixels, mode="RGBA")
    (zero,) = run([{"palette": {"colors": colours, "dither": "floyd-steinberg", "strength": 0}}], [image])
    (plain,) = run([{"palette": {"colors": colours}}], [image])
    assert np.array_equal(to_array(zero), to_array(plain))


def test_floyd_steinberg_keeps_transparent_pixels_transparent() -> None:
    (result,) = run([FS_BW], [picture(["g.g", "...", "gg."])])
    rows = rows_of(result)
    assert [row.replace("W", "K") for row in rows] == ["K.K", "...", "KK."]


def test_bayer_matrix() -> None:
    assert bayer_matrix(2).tolist() == [[0, 2], [3, 1]]
    four = bayer_matrix(4)
    assert sorted(four.reshape(-1).tolist()) == list(range(16))
    assert sorted(bayer_matrix(8).reshape(-1).tolist()) == list(range(64))


def test_sprite_colours_constant_is_the_test_palette() -> None:
    # Guards the synthetic data the palette tests rely on.
    assert len(np.unique(np.vstack([SPRITE_COLOURS, BACKGROUND[None]]), axis=0)) == 9
