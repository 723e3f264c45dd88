"""Small helpers for exact pixel tests: images drawn as text, and a fake project file reader."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from PIL import Image

from pixelbuild.post import PostContext, apply_chain, normalise_post_entry

RGBA = tuple[int, int, int, int]

#: Letters used in the text pictures of the tests; '.' is transparent.
LEGEND: dict[str, RGBA] = {
    ".": (0, 0, 0, 0),
    "K": (0, 0, 0, 255),
    "W": (255, 255, 255, 255),
    "R": (255, 0, 0, 255),
    "G": (0, 255, 0, 255),
    "B": (0, 0, 255, 255),
    "Y": (255, 255, 0, 255),
    "C": (0, 255, 255, 255),
    "M": (255, 0, 255, 255),
    "g": (128, 128, 128, 255),
    "o": (255, 128, 0, 255),
}


def picture(rows: Sequence[str], legend: Mapping[str, RGBA] = LEGEND) -> Image.Image:
    """An RGBA image drawn as one string per row, one letter per pixel."""
    pixels = np.array([[legend[ch] for ch in row] for row in rows], dtype=np.uint8)
    return Image.fromarray(pixels, mode="RGBA")


def rows_of(image: Image.Image, legend: Mapping[str, RGBA] = LEGEND) -> list[str]:
    """The text picture of ``image``; a pixel not in the legend shows as '?'."""
    reverse: dict[tuple[int, ...], str] = {colour: letter for letter, colour in legend.items()}
    pixels = np.asarray(image.convert("RGBA"))
    return ["".join(reverse.get(tuple(int(v) for v in px), "?") for px in row) for row in pixels]


class Files:
    """A fake project: ``read_file`` serves given bytes and records which paths were read."""

    def __init__(self, files: Mapping[str, bytes] | None = None) -> None:
        self.files = dict(files or {})
        self.read: list[str] = []

    def read_file(self, path: str) -> bytes:
        self.read.append(path)
        return self.files[path]

    @property
    def context(self) -> PostContext:
        return PostContext(read_file=self.read_file)


NO_FILES = Files().context


def run(entries: Sequence[object], frames: Sequence[Image.Image], ctx: PostContext = NO_FILES) -> list[Image.Image]:
    """Normalise manifest-style ``entries`` and apply them to ``frames``."""
    chain = [normalise_post_entry(entry) for entry in entries]  # type: ignore[arg-type]
    return apply_chain(list(frames), chain, ctx)


def run_one(entry: object, *rows: str) -> list[str]:
    """Apply one op to a single text picture and return the result as text."""
    (result,) = run([entry], [picture(rows)])
    return rows_of(result)
