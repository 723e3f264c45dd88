"""Synthetic test images: small pixel sprites, and "diffusion pixel art" made from them."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageFilter

SPRITE_COLOURS = np.array(
    [
        (24, 20, 37),  # outline
        (190, 74, 47),
        (247, 118, 34),
        (254, 231, 97),
        (99, 199, 77),
        (18, 78, 137),
        (44, 232, 245),
        (232, 183, 150),
    ],
    dtype=np.uint8,
)
BACKGROUND = np.array((200, 205, 220), dtype=np.uint8)


def random_sprite(size: int, seed: int) -> np.ndarray:
    """An (size, size, 3) pixel sprite: coloured blobs with a 1-px dark outline on a flat background."""
    rng = np.random.default_rng(seed)
    image = np.empty((size, size, 3), dtype=np.uint8)
    image[...] = BACKGROUND
    yy, xx = np.mgrid[0:size, 0:size]
    body = np.zeros((size, size), dtype=bool)
    for _ in range(6):
        cx, cy = rng.integers(size // 4, 3 * size // 4, 2)
        rx, ry = rng.integers(size // 10 + 1, size // 4 + 1, 2)
        blob = ((xx - cx) / rx) ** 2 + ((yy - cy) / ry) ** 2 <= 1.0
        colour = SPRITE_COLOURS[rng.integers(1, len(SPRITE_COLOURS))]
        image[blob] = colour
        body |= blob
    # Small details: single pixels and short runs, as pixel art has.
    for _ in range(size):
        x, y = rng.integers(0, size, 2)
        if body[y, x]:
            image[y, x : x + int(rng.integers(1, 3))] = SPRITE_COLOURS[rng.integers(1, len(SPRITE_COLOURS))]
    padded = np.pad(body, 1)
    near = padded[:-2, 1:-1] | padded[2:, 1:-1] | padded[1:-1, :-2] | padded[1:-1, 2:]
    image[near & ~body] = SPRITE_COLOURS[0]
    return image


def diffusion_like(
    sprite: np.ndarray,
    scale: float,
    *,
    seed: int = 0,
    noise: float = 6.0,
    blur: float = 1.0,
    crop: tuple[int, int] = (5, 9),
) -> Image.Image:
    """Upscale ``sprite`` by a non-integer ``scale`` (nearest), blur it, add noise and crop the top-left
    (so the grid does not start at 0): what a diffusion model's "pixel art" looks like."""
    rng = np.random.default_rng(seed)
    height, width = sprite.shape[:2]
    big = Image.fromarray(sprite).resize((round(width * scale), round(height * scale)), Image.Resampling.NEAREST)
    if blur > 0:
        big = big.filter(ImageFilter.GaussianBlur(blur))
    pixels = np.asarray(big).astype(np.float64)
    pixels += rng.normal(0.0, noise, pixels.shape)
    noisy = np.clip(np.rint(pixels), 0, 255).astype(np.uint8)
    return Image.fromarray(noisy[crop[1] :, crop[0] :]).convert("RGBA")
