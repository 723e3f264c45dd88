"""Atlas metadata writers: the JSON parses and matches the layout; the .tres has Godot's structure."""

from __future__ import annotations

import json
import re

import pytest

from pixelbuild.pack import Animation, PackItem, aseprite_json, godot_sprite_frames, pack, texturepacker_json

ITEMS = [
    PackItem("walk_0", 16, 24),
    PackItem("walk_1", 16, 24),
    PackItem("walk_2", 16, 24),
    PackItem("coin", 8, 8, source_width=10, source_height=10, offset_x=1, offset_y=1),
]
LAYOUT = pack(ITEMS, padding=1)
WALK = Animation("walk", ("walk_0", "walk_1", "walk_2"), fps=8.0)


def test_texturepacker_hash() -> None:
    document = json.loads(texturepacker_json(LAYOUT, "atlas.png"))
    assert list(document["frames"]) == ["walk_0", "walk_1", "walk_2", "coin"]
    for placement in LAYOUT.placements:
        frame = document["frames"][placement.name]
        assert frame["frame"] == {
            "x": placement.x,
            "y": placement.y,
            "w": placement.width,
            "h": placement.height,
        }
        assert frame["rotated"] is False
    coin = document["frames"]["coin"]
    assert coin["trimmed"] is True
    assert coin["spriteSourceSize"] == {"x": 1, "y": 1, "w": 8, "h": 8}
    assert coin["sourceSize"] == {"w": 10, "h": 10}
    assert document["meta"]["image"] == "atlas.png"
    assert document["meta"]["size"] == {"w": LAYOUT.width, "h": LAYOUT.height}


def test_texturepacker_array() -> None:
    document = json.loads(texturepacker_json(LAYOUT, "atlas.png", form="array"))
    assert [frame["filename"] for frame in document["frames"]] == ["walk_0", "walk_1", "walk_2", "coin"]
    with pytest.raises(ValueError, match="'hash' or 'array'"):
        texturepacker_json(LAYOUT, "atlas.png", form="list")


def test_writers_are_deterministic() -> None:
    assert texturepacker_json(LAYOUT, "a.png") == texturepacker_json(pack(ITEMS, padding=1), "a.png")
    assert aseprite_json(LAYOUT, "a.png", [WALK]) == aseprite_json(pack(ITEMS, padding=1), "a.png", [WALK])
    assert godot_sprite_frames(LAYOUT, "res://a.png", [WALK]) == godot_sprite_frames(
        pack(ITEMS, padding=1), "res://a.png", [WALK]
    )


def test_aseprite_frames_durations_and_tags() -> None:
    document = json.loads(aseprite_json(LAYOUT, "atlas.png", [WALK], duration_ms=50))
    frames = document["frames"]
    assert [frames[name]["duration"] for name in ("walk_0", "walk_1", "walk_2", "coin")] == [
        125,
        125,
        125,
        50,
    ]
    assert document["meta"]["frameTags"] == [
        {"name": "walk", "from": 0, "to": 2, "direction": "forward", "color": "#000000ff"}
    ]
    array = json.loads(aseprite_json(LAYOUT, "atlas.png", [WALK], form="array"))
    assert [frame["filename"] for frame in array["frames"]][:3] == ["walk_0", "walk_1", "walk_2"]


@pytest.mark.parametrize(
    ("animation", "message"),
    [
        (Animation("walk", ("walk_0", "walk_2")), "consecutive in atlas order"),
        (Animation("walk", ("walk_1", "walk_0")), "consecutive in atlas order"),
        (Animation("walk", ("run_0",)), "uses 'run_0', which is not in the atlas"),
        (Animation("walk", ()), "has no frames"),
        (Animation("walk", ("walk_0",), fps=0), "positive fps"),
        (Animation("walk", ("walk_0",), direction="sideways"), "direction must be one of"),
    ],
)
def test_aseprite_rejects_bad_animations(animation: Animation, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        aseprite_json(LAYOUT, "atlas.png", [animation])


def parse_tres(text: str) -> tuple[dict[str, str], list[tuple[dict[str, str], dict[str, str]]], str]:
    """A small reader for the subset of Godot's text resource format the writer emits: the header's
    attributes, each [ext_resource]/[sub_resource] section with its attributes and properties, and
    the [resource] body."""
    sections = re.split(r"^(\[[^\]]+\])$", text, flags=re.MULTILINE)
    assert sections[0] == ""
    header: dict[str, str] = {}
    resources: list[tuple[dict[str, str], dict[str, str]]] = []
    body = ""
    for tag, content in zip(sections[1::2], sections[2::2], strict=True):
        kind = tag[1:-1].split(" ", 1)[0]
        attributes = dict(re.findall(r'(\w+)=("[^"]*"|\S+?)(?=[ \]])', tag))
        attributes["kind"] = kind
        if kind == "gd_resource":
            header = attributes
        elif kind == "resource":
            body = content
        else:
            properties = dict(line.split(" = ", 1) for line in content.strip().splitlines())
            resources.append((attributes, properties))
    return header, resources, body


def test_godot_sprite_frames_structure() -> None:
    text = godot_sprite_frames(
        LAYOUT, "res://sprites/atlas.png", [WALK, Animation("spin", ("coin",), fps=12, loop=False)]
    )
    header, resources, body = parse_tres(text)
    assert header["type"] == '"SpriteFrames"'
    assert header["format"] == "3"
    assert int(header["load_steps"]) == len(resources) + 1
    (external,) = [(a, p) for a, p in resources if a["kind"] == "ext_resource"]
    assert external[0]["type"] == '"Texture2D"'
    assert external[0]["path"] == '"res://sprites/atlas.png"'
    subs = {a["id"].strip('"'): p for a, p in resources if a["kind"] == "sub_resource"}
    assert len(subs) == 4
    regions = set()
    for properties in subs.values():
        assert properties["atlas"] == f"ExtResource({external[0]['id']})"
        regions.add(properties["region"])
    assert regions == {f"Rect2({p.x}, {p.y}, {p.width}, {p.height})" for p in LAYOUT.placements}
    assert body.startswith("\nanimations = [")
    referenced = re.findall(r'SubResource\("([^"]+)"\)', body)
    assert set(referenced) <= set(subs)
    assert len(referenced) == 4  # three walk frames, one spin frame
    assert '"name": &"walk"' in body and '"speed": 8.0' in body and '"loop": true' in body
    assert '"name": &"spin"' in body and '"speed": 12.0' in body and '"loop": false' in body


def test_godot_default_animation_and_directions() -> None:
    default_text = godot_sprite_frames(LAYOUT, "res://a.png")
    assert '"name": &"default"' in default_text and '"speed": 5.0' in default_text
    assert len(re.findall(r"SubResource\(", default_text)) == 4
    ping = godot_sprite_frames(LAYOUT, "res://a.png", [Animation("p", WALK.frames, direction="pingpong")])
    _, resources, body = parse_tres(ping)
    ids = {p["region"]: a["id"].strip('"') for a, p in resources if a["kind"] == "sub_resource"}
    order = [ids[f"Rect2({LAYOUT.placement(n).x}, {LAYOUT.placement(n).y}, 16, 24)"] for n in WALK.frames]
    assert re.findall(r'SubResource\("([^"]+)"\)', body) == [order[0], order[1], order[2], order[1]]


def test_godot_escapes_names_and_paths() -> None:
    text = godot_sprite_frames(LAYOUT, 'res://we"ird.png', [Animation('say "hi"', ("coin",))])
    assert 'path="res://we\\"ird.png"' in text
    assert '"name": &"say \\"hi\\""' in text
