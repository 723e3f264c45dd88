"""Frame sheets: lay a sprite's frames out as one image (a strip or a grid) and describe where each went.

Not a post op: the sheet is laid out once, after the post chain has run over all frames (``layout:``
in the manifest), and atlases and previews read the same layout back.

Every frame gets a cell of the largest frame's size, so engines that slice a sheet by a fixed frame
size (Godot's hframes/vframes, most game frameworks) work; ``SheetLayout.frames`` gives each frame's
exact rectangle for writers that need it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pixelbuild.anchors import ANCHORS, anchor_offset

if TYPE_CHECKING:
    from PIL import Image

LAYOUTS = ("strip", "vertical", "grid")


@dataclass(frozen=True, slots=True)
class FrameRect:
    """Where frame ``index`` lies on the sheet (its own size, inside its cell)."""

    index: int
    x: int
    y: int
    width: int
    height: int


@dataclass(frozen=True, slots=True)
class SheetLayout:
    """A sheet's size, its grid of equal cells and each frame's rectangle, in frame order."""

    width: int
    height: int
    columns: int
    rows: int
    cell_width: int
    cell_height: int
    padding: int
    frames: tuple[FrameRect, ...]


def layout_frames(
    sizes: Sequence[tuple[int, int]],
    layout: str = "strip",
    columns: int | None = None,
    padding: int = 0,
    anchor: str = "top-left",
) -> SheetLayout:
    """Place frames of ``sizes`` in row-major cells: ``strip`` (one row), ``vertical`` (one column) or
    ``grid`` (``columns`` wide, default the smallest square); ``padding`` px between cells."""
    if not sizes:
        raise ValueError("a sheet needs at least one frame")
    if layout not in LAYOUTS:
        raise ValueError(f"unknown frame layout '{layout}' (use {', '.join(LAYOUTS)})")
    if anchor not in ANCHORS:
        raise ValueError(f"unknown anchor '{anchor}' (use {', '.join(ANCHORS)})")
    if padding < 0:
        raise ValueError(f"padding must not be negative, got {padding}")
    count = len(sizes)
    if layout == "strip":
        columns = count
    elif layout == "vertical":
        columns = 1
    elif columns is None:
        columns = math.isqrt(count - 1) + 1
    if columns < 1:
        raise ValueError(f"columns must be at least 1, got {columns}")
    columns = min(columns, count)
    rows = -(-count // columns)
    cell_width = max(width for width, _ in sizes)
    cell_height = max(height for _, height in sizes)
    rects = []
    for index, (width, height) in enumerate(sizes):
        column, row = index % columns, index // columns
        dx, dy = anchor_offset(anchor, (cell_width, cell_height), (width, height))
        x = column * (cell_width + padding) + dx
        y = row * (cell_height + padding) + dy
        rects.append(FrameRect(index, x, y, width, height))
    return SheetLayout(
        width=columns * cell_width + (columns - 1) * padding,
        height=rows * cell_height + (rows - 1) * padding,
        columns=columns,
        rows=rows,
        cell_width=cell_width,
        cell_height=cell_height,
        padding=padding,
        frames=tuple(rects),
    )


def assemble_sheet(
    frames: Sequence[Image.Image],
    layout: str = "strip",
    columns: int | None = None,
    padding: int = 0,
    anchor: str = "top-left",
) -> tuple[Image.Image, SheetLayout]:
    """The sheet image (transparent where no frame is) and its layout."""
    from PIL import Image

    sheet = layout_frames([frame.size for frame in frames], layout, columns, padding, anchor)
    canvas = Image.new("RGBA", (sheet.width, sheet.height), (0, 0, 0, 0))
    for frame, rect in zip(frames, sheet.frames, strict=True):
        canvas.paste(frame if frame.mode == "RGBA" else frame.convert("RGBA"), (rect.x, rect.y))
    return canvas, sheet


def assemble(
    frames: Sequence[Image.Image],
    layout: str = "strip",
    columns: int | None = None,
    padding: int = 0,
    anchor: str = "top-left",
) -> Image.Image:
    """Lay ``frames`` out as one sheet image (see ``layout_frames``)."""
    return assemble_sheet(frames, layout, columns, padding, anchor)[0]


def assemble_frames(frames: Sequence[Image.Image], layout: Mapping[str, Any]) -> Image.Image:
    """Lay frames out as one sheet: ``layout`` is a resolved ``{type, columns, padding}``."""
    return assemble(frames, layout["type"], columns=layout.get("columns"), padding=int(layout.get("padding", 0)))


def split(sheet: Image.Image, layout: SheetLayout) -> list[Image.Image]:
    """Cut a sheet back into its frames: the inverse of ``assemble_sheet``."""
    return [sheet.crop((r.x, r.y, r.x + r.width, r.y + r.height)) for r in layout.frames]
