"""Atlas metadata writers: TexturePacker JSON (hash and array), Aseprite JSON and Godot 4 SpriteFrames.

Pure functions from an ``AtlasLayout`` (and optional animations) to text; the same input always
gives the same text (keys in a fixed order, no timestamps).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pixelbuild.pack.packer import AtlasLayout, Placement

DIRECTIONS = ("forward", "reverse", "pingpong")
APP = "pixelbuild"
FORMAT_VERSION = "1.0"


@dataclass(frozen=True, slots=True)
class Animation:
    """A named sequence of atlas items played at ``fps`` (frames may repeat or be shared)."""

    name: str
    frames: tuple[str, ...]
    fps: float = 10.0
    loop: bool = True
    direction: str = "forward"


def _check_animations(layout: AtlasLayout, animations: Sequence[Animation]) -> None:
    names = {placement.name for placement in layout.placements}
    seen: set[str] = set()
    for animation in animations:
        if animation.name in seen:
            raise ValueError(f"animation '{animation.name}' is defined twice")
        seen.add(animation.name)
        if not animation.frames:
            raise ValueError(f"animation '{animation.name}' has no frames")
        if animation.fps <= 0:
            raise ValueError(f"animation '{animation.name}' needs a positive fps, got {animation.fps}")
        if animation.direction not in DIRECTIONS:
            raise ValueError(
                f"animation '{animation.name}' direction must be one of {', '.join(DIRECTIONS)}, "
                f"got '{animation.direction}'"
            )
        missing = [frame for frame in animation.frames if frame not in names]
        if missing:
            raise ValueError(f"animation '{animation.name}' uses '{missing[0]}', which is not in the atlas")


def _rect(placement: Placement) -> dict[str, int]:
    return {"x": placement.x, "y": placement.y, "w": placement.width, "h": placement.height}


def _frame_entry(placement: Placement) -> dict[str, Any]:
    return {
        "frame": _rect(placement),
        "rotated": False,
        "trimmed": placement.trimmed,
        "spriteSourceSize": {
            "x": placement.offset_x,
            "y": placement.offset_y,
            "w": placement.width,
            "h": placement.height,
        },
        "sourceSize": {"w": placement.source_width, "h": placement.source_height},
    }


def _meta(layout: AtlasLayout, image: str) -> dict[str, Any]:
    return {
        "app": APP,
        "version": FORMAT_VERSION,
        "image": image,
        "format": "RGBA8888",
        "size": {"w": layout.width, "h": layout.height},
        "scale": "1",
    }


def _frames_object(entries: list[tuple[str, dict[str, Any]]], form: str) -> Any:
    if form == "hash":
        return dict(entries)
    if form == "array":
        return [{"filename": name, **entry} for name, entry in entries]
    raise ValueError(f"form must be 'hash' or 'array', got '{form}'")


def _dump(document: Any) -> str:
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def texturepacker_json(layout: AtlasLayout, image: str, *, form: str = "hash") -> str:
    """TexturePacker's generic JSON: ``frames`` keyed by name (``hash``) or a list (``array``), and
    ``meta`` naming ``image``. Read by Phaser, PixiJS, Cocos and most engines' TexturePacker loaders."""
    entries = [
        (placement.name, {**_frame_entry(placement), "pivot": {"x": 0.5, "y": 0.5}}) for placement in layout.placements
    ]
    return _dump({"frames": _frames_object(entries, form), "meta": _meta(layout, image)})


def aseprite_json(
    layout: AtlasLayout,
    image: str,
    animations: Sequence[Animation] = (),
    *,
    form: str = "hash",
    duration_ms: int = 100,
) -> str:
    """Aseprite's sprite-sheet JSON: frames in atlas order with ``duration`` (ms) and animations as
    ``meta.frameTags`` ranges. Each animation's frames must be consecutive in atlas order."""
    _check_animations(layout, animations)
    order = {placement.name: index for index, placement in enumerate(layout.placements)}
    durations = {placement.name: duration_ms for placement in layout.placements}
    tags = []
    for animation in animations:
        indices = [order[frame] for frame in animation.frames]
        if indices != list(range(indices[0], indices[0] + len(indices))):
            raise ValueError(
                f"Aseprite frame tags are ranges: the frames of animation '{animation.name}' must be "
                "consecutive in atlas order (pack them in animation order)"
            )
        for frame in animation.frames:
            durations[frame] = round(1000 / animation.fps)
        tags.append(
            {
                "name": animation.name,
                "from": indices[0],
                "to": indices[-1],
                "direction": animation.direction,
                "color": "#000000ff",
            }
        )
    entries = [
        (placement.name, {**_frame_entry(placement), "duration": durations[placement.name]})
        for placement in layout.placements
    ]
    meta = {**_meta(layout, image), "frameTags": tags, "layers": [], "slices": []}
    return _dump({"frames": _frames_object(entries, form), "meta": meta})


def _godot_string(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _godot_float(value: float) -> str:
    text = repr(float(value))
    return text if ("." in text or "e" in text) else text + ".0"


def _sequence(animation: Animation) -> list[str]:
    frames = list(animation.frames)
    if animation.direction == "reverse":
        return frames[::-1]
    if animation.direction == "pingpong":
        return frames + frames[-2:0:-1]
    return frames


def godot_sprite_frames(layout: AtlasLayout, texture_path: str, animations: Sequence[Animation] = ()) -> str:
    """A Godot 4 ``SpriteFrames`` resource (.tres): one ``AtlasTexture`` per atlas item over the
    texture at ``texture_path`` (a ``res://`` path), and the animations (default: all items in atlas
    order as ``default`` at 5 fps, Godot's own default). ``reverse``/``pingpong`` are written out."""
    _check_animations(layout, animations)
    if not animations:
        names = tuple(placement.name for placement in layout.placements)
        animations = (Animation("default", names, fps=5.0),) if names else ()
    used = [placement for placement in layout.placements if any(placement.name in a.frames for a in animations)]
    ids = {placement.name: f"AtlasTexture_{index}" for index, placement in enumerate(used)}
    lines = [f'[gd_resource type="SpriteFrames" load_steps={len(used) + 2} format=3]', ""]
    lines += [f'[ext_resource type="Texture2D" path={_godot_string(texture_path)} id="1_atlas"]', ""]
    for placement in used:
        lines += [
            f'[sub_resource type="AtlasTexture" id="{ids[placement.name]}"]',
            'atlas = ExtResource("1_atlas")',
            f"region = Rect2({placement.x}, {placement.y}, {placement.width}, {placement.height})",
            "filter_clip = true",
            "",
        ]
    blocks = []
    for animation in animations:
        frames = ", ".join(
            '{\n"duration": 1.0,\n"texture": SubResource("' + ids[frame] + '")\n}' for frame in _sequence(animation)
        )
        blocks.append(
            "{\n"
            f'"frames": [{frames}],\n'
            f'"loop": {"true" if animation.loop else "false"},\n'
            f'"name": &{_godot_string(animation.name)},\n'
            f'"speed": {_godot_float(animation.fps)}\n'
            "}"
        )
    lines += ["[resource]", f"animations = [{', '.join(blocks)}]", ""]
    return "\n".join(lines)
