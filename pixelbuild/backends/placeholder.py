"""The ``placeholder`` backend: deterministic procedural pixel sprites, in-process, no GPU, no network.

It draws what a diffusion model asked for "pixel art" tends to return: a symmetric little sprite on a
flat background, drawn on a coarse grid at a non-integer scale with some noise, so the whole
post-processing chain (grid detection, palette, background removal) has real work to do. The prompt
steers it: colour words pick the hue, shape words the silhouette. Same spec, same pixels, everywhere:
only integer arithmetic and Python's seeded ``random.random`` (stable across versions) are used.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image

from pixelbuild.backends.base import Backend, BackendIdentity, GenerationJob, GenerationResult, ProgressCallback
from pixelbuild.errors import GenerationError
from pixelbuild.spec import GenerationSpec

VERSION = "1"
IDENTITY = BackendIdentity(name="placeholder", version=VERSION, models=())

_COLOURS: Mapping[str, tuple[int, int, int]] = {
    "red": (200, 48, 48),
    "crimson": (170, 30, 50),
    "orange": (230, 120, 30),
    "gold": (230, 180, 40),
    "yellow": (240, 210, 60),
    "green": (60, 170, 70),
    "lime": (140, 210, 60),
    "teal": (40, 150, 140),
    "cyan": (60, 200, 220),
    "blue": (50, 90, 210),
    "purple": (130, 60, 180),
    "violet": (150, 90, 210),
    "pink": (230, 110, 170),
    "brown": (130, 85, 45),
    "white": (235, 235, 235),
    "grey": (130, 130, 140),
    "gray": (130, 130, 140),
    "black": (40, 40, 48),
    "silver": (190, 195, 205),
}
_ROUND_WORDS = {"slime", "coin", "orb", "ball", "blob", "gem", "bubble", "round", "potion", "egg", "apple"}
_TALL_WORDS = {"knight", "hero", "wizard", "character", "person", "warrior", "tall", "tree", "tower", "mage"}
_GRID = 16


def _words(text: str) -> list[str]:
    return "".join(ch.lower() if ch.isalnum() else " " for ch in text).split()


def _mask(rng: random.Random, shape: str) -> list[list[bool]]:
    """A left-right symmetric silhouette on a ``_GRID`` square grid."""
    half = _GRID // 2
    centre = (_GRID - 1) / 2
    mask = [[False] * _GRID for _ in range(_GRID)]
    for y in range(1, _GRID - 1):
        for x in range(half):
            dx = (centre - x) / centre
            dy = (y - centre) / centre
            if shape == "round":
                inside = dx * dx + dy * dy < 0.72 + 0.2 * rng.random()
            elif shape == "tall":
                # head, shoulders and body, then two legs
                if y < 5:
                    inside = dx < 0.3 + 0.1 * rng.random() and y > 1
                elif y < 11:
                    inside = dx < 0.55 + 0.2 * rng.random()
                else:
                    inside = 0.12 < dx < 0.45
            else:
                inside = rng.random() < 0.8 - 0.55 * (dx * dx + dy * dy)
            mask[y][x] = mask[y][_GRID - 1 - x] = inside
    if shape == "creature":
        # One smoothing pass so the silhouette reads as a body rather than noise.
        def neighbours(y: int, x: int) -> int:
            return sum(
                mask[y + dy][x + dx]
                for dy in (-1, 0, 1)
                for dx in (-1, 0, 1)
                if (dy or dx) and 0 <= y + dy < _GRID and 0 <= x + dx < _GRID
            )

        mask = [[neighbours(y, x) >= (3 if mask[y][x] else 5) for x in range(_GRID)] for y in range(_GRID)]
    return mask


def _shade(colour: tuple[int, int, int], factor: int) -> tuple[int, int, int]:
    """Scale a colour by factor/256, clamped (integer arithmetic only)."""
    return (
        min(255, colour[0] * factor // 256),
        min(255, colour[1] * factor // 256),
        min(255, colour[2] * factor // 256),
    )


def draw_cells(spec: GenerationSpec, index: int) -> tuple[np.ndarray, tuple[int, int, int]]:
    """The sprite on its coarse grid (``_GRID``² RGB cells) and the background colour."""
    rng = random.Random(f"pixelbuild-placeholder/{VERSION}/{spec.seed}/{index}/{spec.prompt}/{spec.negative_prompt}")
    words = _words(spec.prompt)
    colour = next((_COLOURS[w] for w in words if w in _COLOURS), None)
    if colour is None:
        colour = (64 + int(rng.random() * 160), 64 + int(rng.random() * 160), 64 + int(rng.random() * 160))
    shape = "round" if _ROUND_WORDS & set(words) else "tall" if _TALL_WORDS & set(words) else "creature"
    mask = _mask(rng, shape)
    background = (200 + int(rng.random() * 40), 205 + int(rng.random() * 40), 210 + int(rng.random() * 40))
    dark, light = _shade(colour, 150), _shade(colour, 330)
    cells = np.empty((_GRID, _GRID, 3), dtype=np.uint8)
    for y in range(_GRID):
        for x in range(_GRID):
            if not mask[y][x]:
                cells[y, x] = background
                continue
            edge = any(
                not (0 <= y + dy < _GRID and 0 <= x + dx < _GRID and mask[y + dy][x + dx])
                for dy, dx in ((-1, 0), (1, 0), (0, -1), (0, 1))
            )
            if edge:
                cells[y, x] = dark
            elif (x + y) < _GRID - 2 and rng.random() < 0.35:
                cells[y, x] = light
            else:
                cells[y, x] = colour
    eye_y = _GRID // 3 if shape != "round" else _GRID // 2 - 1
    for eye_x in (_GRID // 2 - 3, _GRID // 2 + 2):
        if mask[eye_y][eye_x]:
            cells[eye_y, eye_x] = (20, 20, 28)
    return cells, background


def render(spec: GenerationSpec, index: int = 0) -> Image.Image:
    """Render image ``index`` of a batch for ``spec`` as an RGB image of the spec's size."""
    cells, _background = draw_cells(spec, index)
    width, height = spec.width, spec.height
    # The sprite fills ~80% of the shorter side, so one cell spans a non-integer number of pixels.
    extent_q8 = min(width, height) * 205  # 0.8 in 1/256 units
    left_q8 = (width * 256 - extent_q8) // 2
    top_q8 = (height * 256 - extent_q8) // 2
    xs = (np.arange(width, dtype=np.int64) * 256 - left_q8) * _GRID
    ys = (np.arange(height, dtype=np.int64) * 256 - top_q8) * _GRID
    col = np.floor_divide(xs, extent_q8)
    row = np.floor_divide(ys, extent_q8)
    inside_x = (col >= 0) & (col < _GRID)
    inside_y = (row >= 0) & (row < _GRID)
    padded = np.empty((_GRID + 1, _GRID + 1, 3), dtype=np.uint8)
    padded[:_GRID, :_GRID] = cells
    padded[_GRID, :] = _background
    padded[:, _GRID] = _background
    col_index = np.where(inside_x, col, _GRID)
    row_index = np.where(inside_y, row, _GRID)
    image = padded[row_index[:, None], col_index[None, :]].astype(np.int16)
    # Deterministic per-pixel noise (an integer hash of position and seed), as diffusion output has.
    yy, xx = np.meshgrid(np.arange(height, dtype=np.uint32), np.arange(width, dtype=np.uint32), indexing="ij")
    h = (xx * np.uint32(73856093)) ^ (yy * np.uint32(19349663)) ^ np.uint32((spec.seed * 83492791 + index) & 0xFFFFFFFF)
    h ^= h >> np.uint32(13)
    h *= np.uint32(0x5BD1E995)
    h ^= h >> np.uint32(15)
    noise = (h % np.uint32(9)).astype(np.int16) - 4
    image += noise[:, :, None]
    return Image.fromarray(np.clip(image, 0, 255).astype(np.uint8), mode="RGB")


class PlaceholderBackend:
    """Renders on demand in the calling thread (so ``-j`` parallelism applies)."""

    name = "placeholder"

    def __init__(self) -> None:
        self._jobs: dict[str, GenerationJob] = {}
        self._lock = threading.Lock()
        self.calls = 0

    def ordered(self, jobs: Sequence[GenerationJob]) -> list[GenerationJob]:
        """Any order is as good as another: the manifest's."""
        return list(jobs)

    def set_progress_callback(self, callback: ProgressCallback | None) -> None:
        """Rendering takes milliseconds: nothing to report."""

    def start(self, jobs: Sequence[GenerationJob]) -> None:
        """Remember the jobs; nothing to preflight."""
        self._jobs.update({job.key: job for job in jobs})

    def result(self, key: str) -> GenerationResult:
        """Render every image of job ``key``."""
        job = self._jobs.get(key)
        if job is None:
            raise GenerationError(f"no placeholder job with key {key}")
        with self._lock:
            self.calls += 1
        images = [render(job.spec, index) for index in range(job.spec.batch_size)]
        return GenerationResult(images=images, identity=IDENTITY)

    def settled(self, key: str) -> None:
        """Nothing to forget: every result is made again on demand."""

    def cancel(self) -> None:
        """Nothing runs in the background."""

    def close(self) -> None:
        """Nothing to release."""


def create(settings: Mapping[str, Any], project_root: Path, *, servers: Sequence[str] = ()) -> PlaceholderBackend:
    """Create the placeholder backend (it has no settings and no servers: ``servers`` is ignored)."""
    return PlaceholderBackend()


if TYPE_CHECKING:
    _implements: type[Backend] = PlaceholderBackend  # mypy proves the whole protocol is there
