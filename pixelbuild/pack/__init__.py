"""Texture atlases: a deterministic rectangle packer, the atlas image, and engine metadata writers."""

from __future__ import annotations

from pixelbuild.pack.packer import AtlasLayout, PackError, PackItem, Placement, pack, render_atlas
from pixelbuild.pack.writers import (
    Animation,
    aseprite_json,
    godot_sprite_frames,
    godot_uid,
    libgdx_atlas,
    texturepacker_json,
)
from pixelbuild.sheets import SheetLayout

__all__ = [
    "Animation",
    "AtlasLayout",
    "PackError",
    "PackItem",
    "Placement",
    "aseprite_json",
    "godot_sprite_frames",
    "godot_uid",
    "layout_from_sheet",
    "libgdx_atlas",
    "pack",
    "render_atlas",
    "texturepacker_json",
]


def layout_from_sheet(sheet: SheetLayout, names: list[str]) -> AtlasLayout:
    """An ``AtlasLayout`` for a frame sheet from ``pixelbuild.sheets`` (one name per frame), so the
    writers describe animation strips and grids as well as packed atlases."""
    if len(names) != len(sheet.frames):
        raise ValueError(f"{len(sheet.frames)} frames but {len(names)} names")
    placements = tuple(
        Placement(name, rect.x, rect.y, rect.width, rect.height, rect.width, rect.height)
        for name, rect in zip(names, sheet.frames, strict=True)
    )
    return AtlasLayout(sheet.width, sheet.height, placements, sheet.padding, 0)
