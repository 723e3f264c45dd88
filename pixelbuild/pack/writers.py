"""Atlas metadata writers: TexturePacker JSON (hash and array), Aseprite JSON, Godot 4 SpriteFrames
and the libGDX / Spine ``.atlas`` text format.

Pure functions from an ``AtlasLayout`` (and optional animations) to text; the same input always
gives the same text (keys in a fixed order, no timestamps). Each format is written the way the engines'
own loaders read it (Phaser, PixiJS and spine-core are run on the output in ``tests/engines``).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pixelbuild.pack.packer import AtlasLayout, PackError, Placement

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


def _sequence(animation: Animation) -> list[str]:
    """An animation's frames in play order: ``reverse`` and ``pingpong`` written out."""
    frames = list(animation.frames)
    if animation.direction == "reverse":
        return frames[::-1]
    if animation.direction == "pingpong":
        return frames + frames[-2:0:-1]
    return frames


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


def texturepacker_json(
    layout: AtlasLayout, image: str, animations: Sequence[Animation] = (), *, form: str = "hash"
) -> str:
    """TexturePacker's generic JSON: ``frames`` keyed by name (``hash``) or a list (``array``), and
    ``meta`` naming ``image``. Read by Phaser, PixiJS, Cocos and most engines' TexturePacker loaders.

    ``animations`` become the top-level ``animations`` map that TexturePacker's PixiJS exporter writes
    (name to frame names in play order; ``reverse``/``pingpong`` written out), which PixiJS's
    ``Spritesheet`` turns into ``spritesheet.animations``. Hash form only: Pixi names the frames of an
    array by their position, so names in an animations map would resolve to nothing there."""
    _check_animations(layout, animations)
    if animations and form == "array":
        raise ValueError("the animations map is written in the hash form only")
    entries = [
        (placement.name, {**_frame_entry(placement), "pivot": {"x": 0.5, "y": 0.5}}) for placement in layout.placements
    ]
    document: dict[str, Any] = {"frames": _frames_object(entries, form)}
    if animations:
        document["animations"] = {animation.name: _sequence(animation) for animation in animations}
    document["meta"] = _meta(layout, image)
    return _dump(document)


def aseprite_json(
    layout: AtlasLayout,
    image: str,
    animations: Sequence[Animation] = (),
    *,
    form: str = "hash",
    duration_ms: int = 100,
) -> str:
    """Aseprite's sprite-sheet JSON as ``aseprite --sheet --filename-format {frame}`` writes it: frames in
    atlas order keyed by their index ("0", "1", ...), each with its ``duration`` (ms), and animations as
    ``meta.frameTags`` index ranges. Phaser's ``createFromAseprite`` looks frames up by exactly these
    keys. Each animation's frames must be consecutive in atlas order."""
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
        (str(index), {**_frame_entry(placement), "duration": durations[placement.name]})
        for index, placement in enumerate(layout.placements)
    ]
    meta = {**_meta(layout, image), "frameTags": tags, "layers": [], "slices": []}
    return _dump({"frames": _frames_object(entries, form), "meta": meta})


def _godot_string(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _godot_float(value: float) -> str:
    text = repr(float(value))
    return text if ("." in text or "e" in text) else text + ".0"


#: Godot's resource UID digits (``ResourceUID::id_to_text``): a-y then 0-8, 34 in all ('z' and '9' are
#: never used, a known off-by-one Godot keeps for compatibility).
GODOT_UID_DIGITS = "abcdefghijklmnopqrstuvwxy012345678"


def godot_uid(seed: str) -> str:
    """A deterministic Godot resource UID (``uid://...``) for ``seed`` (e.g. the resource's ``res://``
    path): a 63-bit id from its SHA-256, spelled as Godot spells it."""
    number = int.from_bytes(hashlib.sha256(seed.encode("utf-8")).digest()[:8], "big") & 0x7FFF_FFFF_FFFF_FFFF
    digits = ""
    while True:
        number, remainder = divmod(number, len(GODOT_UID_DIGITS))
        digits = GODOT_UID_DIGITS[remainder] + digits
        if number == 0:
            return "uid://" + digits


def godot_sprite_frames(
    layout: AtlasLayout, texture_path: str, animations: Sequence[Animation] = (), *, uid: str | None = None
) -> str:
    """A Godot 4 ``SpriteFrames`` resource (.tres): one ``AtlasTexture`` per atlas item over the
    texture at ``texture_path`` (a ``res://`` path), and the animations (default: all items in atlas
    order as ``default`` at 5 fps, Godot's own default). ``reverse``/``pingpong`` are written out.

    The header carries ``load_steps`` and, given ``uid``, the resource UID, as Godot 4.0-4.5 save them:
    the editor then has nothing to add to the file when it imports it."""
    _check_animations(layout, animations)
    if not animations:
        names = tuple(placement.name for placement in layout.placements)
        animations = (Animation("default", names, fps=5.0),) if names else ()
    used = [placement for placement in layout.placements if any(placement.name in a.frames for a in animations)]
    ids = {placement.name: f"AtlasTexture_{index}" for index, placement in enumerate(used)}
    # Godot counts every resource the loader builds: the sub-resources, the external texture and the
    # SpriteFrames itself.
    header = f'[gd_resource type="SpriteFrames" load_steps={len(used) + 2} format=3'
    lines = [header + (f" uid={_godot_string(uid)}]" if uid is not None else "]"), ""]
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


def _libgdx_name(value: str, what: str) -> str:
    # The format is line-based, and a name holding ':' would be read back as a "key: value" field.
    if not value or value != value.strip() or any(c in value for c in ":\r\n"):
        raise PackError(f"{what} '{value}' cannot be written to a libGDX atlas (no ':', line breaks or edge spaces)")
    return value


def libgdx_atlas(layout: AtlasLayout, image: str, animations: Sequence[Animation] = ()) -> str:
    """A libGDX ``TextureAtlas`` / Spine atlas in the current text format (libGDX 1.9.13+, Spine 4+):
    one page (``size``, ``format``, ``filter: Nearest, Nearest``, ``repeat: none``) and one region per
    item with ``bounds`` (y down) and, for trimmed items, ``offsets`` (x from the left, y from the
    bottom, then the untrimmed size). The frames of an animation of two or more frames are written as
    regions named after the animation with ``index: 0..n-1`` in play order, as libGDX's packer names
    ``walk_0.png, walk_1.png``, so ``atlas.findRegions("walk")`` returns them in order."""
    _check_animations(layout, animations)
    tab = "\t"
    lines = [
        _libgdx_name(image, "atlas image name"),
        f"{tab}size: {layout.width}, {layout.height}",
        f"{tab}format: RGBA8888",
        f"{tab}filter: Nearest, Nearest",
        f"{tab}repeat: none",
    ]
    animated = [animation for animation in animations if len(animation.frames) > 1]
    in_animation = {frame for animation in animated for frame in animation.frames}
    by_name = {placement.name: placement for placement in layout.placements}
    order = {placement.name: index for index, placement in enumerate(layout.placements)}
    # Each animation is written where its first frame lies in atlas order.
    starts: dict[str, list[Animation]] = {}
    for animation in animated:
        first = min(animation.frames, key=order.__getitem__)
        starts.setdefault(first, []).append(animation)
    for placement in layout.placements:
        regions: list[tuple[str, int, Placement]] = []
        for animation in starts.get(placement.name, ()):
            regions += [(animation.name, index, by_name[frame]) for index, frame in enumerate(_sequence(animation))]
        if placement.name not in in_animation:
            regions.append((placement.name, -1, placement))
        for name, index, region in regions:
            lines.append(_libgdx_name(name, "region name"))
            if index >= 0:
                lines.append(f"{tab}index: {index}")
            lines.append(f"{tab}bounds: {region.x}, {region.y}, {region.width}, {region.height}")
            bottom = region.source_height - region.height - region.offset_y
            if region.trimmed or region.offset_x or bottom:
                lines.append(
                    f"{tab}offsets: {region.offset_x}, {bottom}, {region.source_width}, {region.source_height}"
                )
    return "\n".join(lines) + "\n"
