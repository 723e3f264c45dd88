"""Real pixel art degraded as a diffusion model draws it, for grid-recovery tests and the benchmark.

The art is read from a folder of PNGs given to ``load_sprites`` (pixelbuild's own tests and benchmark use
``tests/fixtures/pixelart``); nothing is shipped with the package.

Each degradation upscales by a non-integer factor (nearest), cuts a partial cell off every side (so
the grid neither starts nor ends at the border, while the art's size stays well defined: every kept
edge cell is more than half a cell), then blurs, adds noise, shifts colours and/or compresses to JPEG.
Everything is seeded: the same call gives the same image.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter

#: Opaque backdrop for sprites with transparency: a diffusion model paints a background.
BACKDROP = (52, 60, 76)

#: name -> (blur radius in cells, noise sigma, colour shift, JPEG quality or 0, integer scale)
DEGRADATIONS: dict[str, tuple[float, float, bool, int, bool]] = {
    "upscale": (0.0, 0.0, False, 0, False),
    "blur": (0.1, 0.0, False, 0, False),
    "noise": (0.04, 8.0, False, 0, False),
    "colour": (0.04, 3.0, True, 0, False),
    "jpeg": (0.04, 4.0, False, 80, False),
    "jpeg-aligned": (0.06, 6.0, False, 80, True),
    "all": (0.08, 6.0, True, 85, False),
}


@dataclass(frozen=True)
class Case:
    """A degraded image with what it was made from."""

    name: str
    degradation: str
    image: Image.Image
    original: np.ndarray  # (h, w, 3) uint8, the art at one pixel per pixel
    scale: float  # true cell size in pixels (0 for inputs without a grid)
    gain: np.ndarray  # colour shift applied: out = in * gain + offset
    offset: np.ndarray


def load_sprites(folder: Path, names: list[str] | None = None) -> dict[str, np.ndarray]:
    """The PNG sprites in ``folder`` as opaque (h, w, 3) arrays (transparency flattened onto ``BACKDROP``)."""
    sprites = {}
    for path in sorted(folder.glob("*.png")):
        if names is not None and path.stem not in names:
            continue
        with Image.open(path) as opened:
            rgba = opened.convert("RGBA")
        backdrop = Image.new("RGBA", rgba.size, (*BACKDROP, 255))
        sprites[path.stem] = np.asarray(Image.alpha_composite(backdrop, rgba).convert("RGB")).copy()
    return sprites


def degrade(name: str, sprite: np.ndarray, degradation: str, seed: int) -> Case:
    """``sprite`` drawn as a diffusion model would, by ``degradation`` (a key of ``DEGRADATIONS``)."""
    blur, noise, shift, quality, integer = DEGRADATIONS[degradation]
    rng = np.random.default_rng(seed)
    height, width = sprite.shape[:2]
    # Output sides of 200..1100 px, as image generators draw; at least 4 px per cell.
    largest = min(17.0, 1100.0 / max(width, height))
    low = max(4.0, min(largest, 160.0 / max(width, height)))
    if integer:
        choices = [s for s in (8, 16) if s <= largest] or [8]
        scale = float(choices[int(rng.integers(0, len(choices)))])
    else:
        scale = float(rng.uniform(low, max(low, largest)))
        if abs(scale - round(scale)) < 0.05:
            scale += 0.13
    big = Image.fromarray(sprite).resize((round(width * scale), round(height * scale)), Image.Resampling.NEAREST)
    if blur:
        big = big.filter(ImageFilter.GaussianBlur(blur * scale))
    pixels = np.asarray(big).astype(np.float64)
    gain, offset = np.ones(3), np.zeros(3)
    if shift:
        gain = rng.uniform(0.88, 1.08, 3)
        offset = rng.uniform(-14, 14, 3)
        pixels = pixels * gain + offset
    if noise:
        pixels = pixels + rng.normal(0.0, noise, pixels.shape)
    array = np.clip(np.rint(pixels), 0, 255).astype(np.uint8)
    if not integer:
        # Cut 0.1..0.4 of a cell off each side: partial edge cells, all over half a cell.
        cut = (rng.uniform(0.1, 0.4, 4) * scale).astype(int)
        array = array[cut[1] : array.shape[0] - cut[3], cut[0] : array.shape[1] - cut[2]]
    image = Image.fromarray(np.ascontiguousarray(array))
    if quality:
        # JPEG after the cut, as a saved generation: its 8x8 blocks start at the image's corner.
        buffer = io.BytesIO()
        image.save(buffer, "JPEG", quality=quality)
        buffer.seek(0)
        image = Image.open(buffer).convert("RGB")
    return Case(name, degradation, image.convert("RGBA"), sprite, scale, gain, offset)


def clean(name: str, sprite: np.ndarray) -> Case:
    """The art itself, one pixel per pixel: it has no grid to find."""
    return Case(name, "1:1 clean", Image.fromarray(sprite).convert("RGBA"), sprite, 0.0, np.ones(3), np.zeros(3))


def noise_cases(seed: int = 0) -> list[Case]:
    """Inputs with no pixel grid: uniform noise, smooth photo-like noise, and that photo as a JPEG
    (which adds an 8-px block lattice of its own), at several sizes."""
    rng = np.random.default_rng(seed)
    cases = []

    def case(name: str, pixels: np.ndarray) -> Case:
        return Case(name, "pure noise", Image.fromarray(pixels).convert("RGBA"), pixels, 0.0, np.ones(3), np.zeros(3))

    for side in (64, 128, 256, 512):
        cases.append(case(f"uniform {side}", rng.integers(0, 256, (side, side, 3), dtype=np.uint8)))
        field = Image.fromarray(rng.integers(0, 256, (side, side, 3), dtype=np.uint8))
        smooth = np.asarray(field.filter(ImageFilter.GaussianBlur(side / 48))).astype(np.float64)
        smooth = (smooth - smooth.mean()) * (60 / max(1.0, smooth.std())) + 128 + rng.normal(0, 3, smooth.shape)
        photo = np.clip(np.rint(smooth), 0, 255).astype(np.uint8)
        cases.append(case(f"photo-like {side}", photo))
        buffer = io.BytesIO()
        Image.fromarray(photo).save(buffer, "JPEG", quality=60)
        with Image.open(io.BytesIO(buffer.getvalue())) as opened:
            cases.append(case(f"photo-like {side} JPEG", np.asarray(opened.convert("RGB")).copy()))
    return cases


def colour_class_accuracy(output: np.ndarray, case: Case) -> float:
    """Share of output pixels whose nearest colour of the (shifted) original palette is the colour the
    original has there; the output must have the original's size."""
    original = case.original.reshape(-1, 3).astype(np.int64)
    palette, truth = np.unique(original, axis=0, return_inverse=True)
    shifted = np.clip(palette * case.gain + case.offset, 0, 255)
    rgb = output[..., :3].reshape(-1, 3).astype(np.float64)
    distance = ((rgb[:, None, :] - shifted[None, :, :]) ** 2).sum(axis=2)
    return float((distance.argmin(axis=1) == truth.reshape(-1)).mean())
