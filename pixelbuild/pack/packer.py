"""A deterministic rectangle packer (bottom-left skyline) and the atlas image it describes.

Items are placed tallest first (then widest, then by name), so the result depends only on the set of
items, not on the order they were given in. Each item occupies its size plus ``2 * extrude`` (edge
pixels repeated around it, against texture bleeding) plus ``padding`` (a transparent gap).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image

from pixelbuild.errors import EXIT_BAD_INPUT, PixelbuildError


class PackError(PixelbuildError):
    """The items cannot be packed as asked (they do not fit in ``max_size``, or names repeat)."""

    exit_code = EXIT_BAD_INPUT


@dataclass(frozen=True, slots=True)
class PackItem:
    """A rectangle to pack, named uniquely. ``source_*``/``offset_*`` describe a trimmed sprite: its
    untrimmed size and where the trimmed part sat in it (writers report them; packing ignores them)."""

    name: str
    width: int
    height: int
    source_width: int | None = None
    source_height: int | None = None
    offset_x: int = 0
    offset_y: int = 0


@dataclass(frozen=True, slots=True)
class Placement:
    """Where an item's pixels lie in the atlas (the extruded border lies around this rectangle)."""

    name: str
    x: int
    y: int
    width: int
    height: int
    source_width: int
    source_height: int
    offset_x: int = 0
    offset_y: int = 0

    @property
    def trimmed(self) -> bool:
        """Whether the item is smaller than its source (it was trimmed)."""
        return (self.width, self.height) != (self.source_width, self.source_height)


@dataclass(frozen=True, slots=True)
class AtlasLayout:
    """The atlas size and each item's placement, in the order the items were given."""

    width: int
    height: int
    placements: tuple[Placement, ...]
    padding: int = 0
    extrude: int = 0

    def placement(self, name: str) -> Placement:
        """The placement of item ``name`` (``KeyError`` if there is none)."""
        for placement in self.placements:
            if placement.name == name:
                return placement
        raise KeyError(name)


def _skyline_pack(sizes: Sequence[tuple[int, int]], bin_width: int, bin_height: int) -> list[tuple[int, int]] | None:
    """Bottom-left skyline packing of footprints in the given order; None if one does not fit."""
    # The skyline: (x, y, width) segments left to right covering [0, bin_width).
    skyline: list[list[int]] = [[0, 0, bin_width]]
    positions: list[tuple[int, int]] = []
    for width, height in sizes:
        best: tuple[int, int, int, int] | None = None  # (top, x, y, segment index)
        for index in range(len(skyline)):
            x = skyline[index][0]
            if x + width > bin_width:
                break
            y, remaining, cursor = 0, width, index
            while remaining > 0:
                y = max(y, skyline[cursor][1])
                remaining -= skyline[cursor][2]
                cursor += 1
            if y + height > bin_height:
                continue
            candidate = (y + height, x, y, index)
            if best is None or candidate < best:
                best = candidate
        if best is None:
            return None
        _, x, y, index = best
        positions.append((x, y))
        # Replace the covered span [x, x + width) by one segment at the new top.
        end = x + width
        new: list[list[int]] = [*skyline[:index], [x, y + height, width]]
        cursor = index
        while cursor < len(skyline) and skyline[cursor][0] + skyline[cursor][2] <= end:
            cursor += 1
        if cursor < len(skyline) and skyline[cursor][0] < end:
            seg_x, seg_y, seg_w = skyline[cursor]
            new.append([end, seg_y, seg_x + seg_w - end])
            cursor += 1
        new.extend(skyline[cursor:])
        merged: list[list[int]] = []
        for segment in new:
            if merged and merged[-1][1] == segment[1]:
                merged[-1][2] += segment[2]
            else:
                merged.append(list(segment))
        skyline = merged
    return positions


def _next_power_of_two(value: int) -> int:
    return 1 << max(0, (value - 1).bit_length())


def pack(
    items: Iterable[PackItem],
    *,
    max_size: int | tuple[int, int] = 2048,
    power_of_two: bool = False,
    padding: int = 0,
    extrude: int = 0,
) -> AtlasLayout:
    """Pack ``items`` into the smallest atlas found within ``max_size`` (tried widths, deterministic).

    Raises ``PackError`` when an item alone, or all together, do not fit, or a name repeats.
    """
    entries = list(items)
    max_width, max_height = (max_size, max_size) if isinstance(max_size, int) else max_size
    _check_items(entries, padding, extrude)
    if not entries:
        return AtlasLayout(1, 1, (), padding, extrude)
    border = 2 * extrude
    order = sorted(range(len(entries)), key=lambda i: (-entries[i].height, -entries[i].width, entries[i].name))
    # Footprints include the gap after each item; the bin gets one extra gap so the last column and
    # row need no trailing padding inside the atlas.
    footprints = [(entries[i].width + border + padding, entries[i].height + border + padding) for i in order]
    _check_each_fits(entries, border, max_width, max_height)
    area = sum(width * height for width, height in footprints)
    widest = max(width for width, _ in footprints) - padding
    tallest = max(height for _, height in footprints) - padding
    if power_of_two:
        candidates = _power_of_two_bins(widest, tallest, max_width, max_height, area, padding)
    else:
        candidates = _free_bins(widest, max_width, max_height, area)
    best = _best_packing(footprints, candidates, padding, power_of_two)
    if best is None:
        raise PackError(
            f"{len(entries)} atlas items ({area} px² with padding and extrude) do not fit in "
            f"max_size {max_width}x{max_height}; raise max_size or split the atlas"
        )
    width, height, positions = best
    placed: dict[int, tuple[int, int]] = {order[k]: positions[k] for k in range(len(order))}
    placements = tuple(_placement(item, placed[index], extrude) for index, item in enumerate(entries))
    return AtlasLayout(width, height, placements, padding, extrude)


def _check_items(entries: Sequence[PackItem], padding: int, extrude: int) -> None:
    """Raise ``PackError`` for a negative gap, a repeated name or an item without pixels."""
    if padding < 0 or extrude < 0:
        raise PackError(f"padding and extrude must not be negative, got {padding} and {extrude}")
    names = [item.name for item in entries]
    if len(set(names)) != len(names):
        repeated = sorted({name for name in names if names.count(name) > 1})
        raise PackError(f"atlas item names must be unique; repeated: {', '.join(repeated)}")
    for item in entries:
        if item.width < 1 or item.height < 1:
            raise PackError(f"atlas item '{item.name}' has no pixels ({item.width}x{item.height})")


def _check_each_fits(entries: Sequence[PackItem], border: int, max_width: int, max_height: int) -> None:
    """Raise ``PackError`` for an item that, extruded, is larger than the atlas may be."""
    for item in entries:
        if item.width + border > max_width or item.height + border > max_height:
            raise PackError(
                f"atlas item '{item.name}' ({item.width}x{item.height}, with extrude "
                f"{item.width + border}x{item.height + border}) is larger than max_size "
                f"{max_width}x{max_height}"
            )


def _free_bins(widest: int, max_width: int, max_height: int, area: int) -> list[tuple[int, int]]:
    """Bins of any width to try: around the square of the items' area, and the extremes."""
    side = math.isqrt(area)
    factors = (1.0, 1.05, 1.1, 1.2, 1.35, 1.5, 1.75, 2.0, 2.5, 3.0, 4.0)
    widths = {min(max_width, max(widest, math.ceil(side * f))) for f in factors} | {widest, max_width}
    return [(width, max_height) for width in sorted(widths)]


def _best_packing(
    footprints: Sequence[tuple[int, int]], candidates: Sequence[tuple[int, int]], padding: int, power_of_two: bool
) -> tuple[int, int, list[tuple[int, int]]] | None:
    """The atlas size and positions of the best bin among ``candidates`` that holds every footprint, or None."""
    best: tuple[tuple[int, int, int], int, int, list[tuple[int, int]]] | None = None
    for bin_width, bin_height in candidates:
        positions = _skyline_pack(footprints, bin_width + padding, bin_height + padding)
        if positions is None:
            continue
        if power_of_two:
            used_width, used_height = bin_width, bin_height
        else:
            used_width = max(x + w - padding for (x, _), (w, _) in zip(positions, footprints, strict=True))
            used_height = max(y + h - padding for (_, y), (_, h) in zip(positions, footprints, strict=True))
        # The shorter longest side first (squarer atlases suit texture size limits), then area.
        key = (max(used_width, used_height), used_width * used_height, used_width)
        if best is None or key < best[0]:
            best = (key, used_width, used_height, positions)
        if power_of_two:
            break  # candidates come smallest first
    return None if best is None else best[1:]


def _placement(item: PackItem, position: tuple[int, int], extrude: int) -> Placement:
    """Where ``item`` lies in the atlas, its footprint placed at ``position``."""
    x, y = position
    return Placement(
        name=item.name,
        x=x + extrude,
        y=y + extrude,
        width=item.width,
        height=item.height,
        source_width=item.source_width if item.source_width is not None else item.width,
        source_height=item.source_height if item.source_height is not None else item.height,
        offset_x=item.offset_x,
        offset_y=item.offset_y,
    )


def _power_of_two_bins(
    widest: int, tallest: int, max_width: int, max_height: int, area: int, padding: int
) -> list[tuple[int, int]]:
    sides_w = [1 << k for k in range(16) if _next_power_of_two(widest) <= 1 << k <= max_width]
    sides_h = [1 << k for k in range(16) if _next_power_of_two(tallest) <= 1 << k <= max_height]
    # Bins smaller than the items' total footprint cannot work; skip them without trying.
    bins = [(w, h) for w in sides_w for h in sides_h if (w + padding) * (h + padding) >= area]
    # Smallest area first, then the squarer, then the wider.
    return sorted(bins, key=lambda b: (b[0] * b[1], abs(b[0].bit_length() - b[1].bit_length()), -b[0]))


def render_atlas(layout: AtlasLayout, images: Mapping[str, Image.Image]) -> Image.Image:
    """Draw each item's image at its placement, repeating its edge pixels ``extrude`` times outward."""
    canvas = np.zeros((layout.height, layout.width, 4), dtype=np.uint8)
    extrude = layout.extrude
    for placement in layout.placements:
        image = images[placement.name]
        if image.size != (placement.width, placement.height):
            raise PackError(
                f"atlas item '{placement.name}' is {image.width}x{image.height}, "
                f"but was packed as {placement.width}x{placement.height}"
            )
        pixels = np.asarray(image if image.mode == "RGBA" else image.convert("RGBA"))
        if extrude:
            pixels = np.pad(pixels, ((extrude, extrude), (extrude, extrude), (0, 0)), mode="edge")
        x, y = placement.x - extrude, placement.y - extrude
        canvas[y : y + pixels.shape[0], x : x + pixels.shape[1]] = pixels
    return Image.fromarray(canvas, mode="RGBA")
