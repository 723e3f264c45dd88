"""An atlas's files from its members' finished images: the packed PNG and one data file per format.

Pure: images in, bytes out. Every member becomes an animation named by its sprite id (one frame for a
still sprite, its frames for an animation sheet, cut back out of the sheet it was written as).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from PIL import Image

from pixelbuild.pack.packer import PackItem, pack, render_atlas
from pixelbuild.pack.writers import (
    Animation,
    aseprite_json,
    godot_sprite_frames,
    godot_uid,
    libgdx_atlas,
    texturepacker_json,
)
from pixelbuild.png import encode_png, pixel_hash
from pixelbuild.sheets import layout_frames, split
from pixelbuild.spec import ATLAS_FORMATS, AtlasSpec


@dataclass(frozen=True, slots=True)
class Member:
    """One sprite of an atlas: its finished image, and how many frames (laid out how) it holds."""

    sprite_id: str
    image: Image.Image
    frames: int
    layout: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class AtlasFile:
    """One file of an atlas, in ``AtlasSpec.outputs()`` order; images carry their pixel hash and size."""

    data: bytes
    pixel_hash: str | None = None
    width: int | None = None
    height: int | None = None


def cut_frames(member: Member) -> list[Image.Image]:
    """The frames of a member's sheet (the image itself for a still sprite)."""
    if member.frames == 1:
        return [member.image]
    kind = str(member.layout.get("type", "strip"))
    columns = member.layout.get("columns")
    padding = int(member.layout.get("padding", 0))
    grid = layout_frames([(1, 1)] * member.frames, kind, columns, padding)
    cell = (
        (member.image.width - (grid.columns - 1) * padding) // grid.columns,
        (member.image.height - (grid.rows - 1) * padding) // grid.rows,
    )
    return split(member.image, layout_frames([cell] * member.frames, kind, columns, padding))


def atlas_files(atlas: AtlasSpec, members: Sequence[Member], texture_res_path: str) -> list[AtlasFile]:
    """Pack ``members`` as ``atlas`` says and render its image and data files."""
    items: list[PackItem] = []
    images: dict[str, Image.Image] = {}
    animations: list[Animation] = []
    for member in members:
        frames = cut_frames(member)
        names = [member.sprite_id] if len(frames) == 1 else [f"{member.sprite_id}/{i}" for i in range(len(frames))]
        for name, frame in zip(names, frames, strict=True):
            items.append(PackItem(name, frame.width, frame.height))
            images[name] = frame
        animations.append(Animation(member.sprite_id, tuple(names), fps=atlas.fps))
    layout = pack(
        items,
        max_size=atlas.max_size,
        power_of_two=atlas.power_of_two,
        padding=atlas.padding,
        extrude=atlas.extrude,
    )
    image = render_atlas(layout, images)
    files = [AtlasFile(encode_png(image), pixel_hash(image), image.width, image.height)]
    image_name = atlas.output.rpartition("/")[2]
    duration = round(1000 / atlas.fps)
    # TexturePacker's animations map lists animated sprites only, as its PixiJS exporter does.
    animated = [animation for animation in animations if len(animation.frames) > 1]
    for fmt in atlas.formats:
        if fmt == "texturepacker-hash":
            text = texturepacker_json(layout, image_name, animated, form="hash")
        elif fmt == "texturepacker-array":
            text = texturepacker_json(layout, image_name, form="array")
        elif fmt == "aseprite":
            text = aseprite_json(layout, image_name, animations, duration_ms=duration)
        elif fmt == "libgdx":
            text = libgdx_atlas(layout, image_name, animations)
        else:
            folder = texture_res_path.rpartition("/")[0]
            resource = f"{folder}/" + ATLAS_FORMATS["godot"].format(stem=image_name.removesuffix(".png"))
            text = godot_sprite_frames(layout, texture_res_path, animations, uid=godot_uid(resource))
        files.append(AtlasFile(text.encode("utf-8")))
    return files
