"""Atlas metadata writers: the JSON parses and matches the layout; the .tres has Godot's structure; the
.atlas follows libGDX's format. tests/engines runs the engines' own loaders on these formats."""

from __future__ import annotations

import json
import re

import pytest

from pixelbuild.pack import (
    Animation,
    PackError,
    PackItem,
    aseprite_json,
    godot_sprite_frames,
    godot_uid,
    libgdx_atlas,
    pack,
    texturepacker_json,
)

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
    assert "animations" not in document
    with pytest.raises(ValueError, match="'hash' or 'array'"):
        texturepacker_json(LAYOUT, "atlas.png", form="list")


def test_texturepacker_animations_map() -> None:
    """TexturePacker's PixiJS exporter writes ``animations`` between ``frames`` and ``meta``."""
    spin = Animation("spin", ("walk_0", "walk_1", "walk_2"), direction="pingpong")
    back = Animation("back", ("walk_0", "walk_1", "walk_2"), direction="reverse")
    document = json.loads(texturepacker_json(LAYOUT, "atlas.png", [WALK, spin, back]))
    assert list(document) == ["frames", "animations", "meta"]
    assert document["animations"] == {
        "walk": ["walk_0", "walk_1", "walk_2"],
        "spin": ["walk_0", "walk_1", "walk_2", "walk_1"],
        "back": ["walk_2", "walk_1", "walk_0"],
    }
    with pytest.raises(ValueError, match="hash form only"):
        texturepacker_json(LAYOUT, "atlas.png", [WALK], form="array")
    with pytest.raises(ValueError, match="not in the atlas"):
        texturepacker_json(LAYOUT, "atlas.png", [Animation("run", ("run_0",))])


def test_writers_are_deterministic() -> None:
    again = pack(list(reversed(ITEMS)), padding=1)
    again = type(again)(again.width, again.height, tuple(again.placement(i.name) for i in ITEMS), 1, 0)
    assert texturepacker_json(LAYOUT, "a.png", [WALK]) == texturepacker_json(again, "a.png", [WALK])
    assert aseprite_json(LAYOUT, "a.png", [WALK]) == aseprite_json(again, "a.png", [WALK])
    assert godot_sprite_frames(LAYOUT, "res://a.png", [WALK], uid="uid://a") == godot_sprite_frames(
        again, "res://a.png", [WALK], uid="uid://a"
    )
    assert libgdx_atlas(LAYOUT, "a.png", [WALK]) == libgdx_atlas(again, "a.png", [WALK])


def test_aseprite_frames_durations_and_tags() -> None:
    """Frames are keyed by index, as Aseprite's ``{frame}`` filename format writes them and Phaser's
    ``createFromAseprite`` looks them up; the tags are index ranges into them."""
    document = json.loads(aseprite_json(LAYOUT, "atlas.png", [WALK], duration_ms=50))
    frames = document["frames"]
    assert list(frames) == ["0", "1", "2", "3"]
    assert [frames[key]["duration"] for key in frames] == [125, 125, 125, 50]
    for index, placement in enumerate(LAYOUT.placements):
        assert frames[str(index)]["frame"] == {
            "x": placement.x,
            "y": placement.y,
            "w": placement.width,
            "h": placement.height,
        }
    assert document["meta"]["frameTags"] == [
        {"name": "walk", "from": 0, "to": 2, "direction": "forward", "color": "#000000ff"}
    ]
    assert list(document["meta"]) == [
        "app",
        "version",
        "image",
        "format",
        "size",
        "scale",
        "frameTags",
        "layers",
        "slices",
    ]
    array = json.loads(aseprite_json(LAYOUT, "atlas.png", [WALK], form="array"))
    assert [frame["filename"] for frame in array["frames"]] == ["0", "1", "2", "3"]
    assert [frame["frame"] for frame in array["frames"]] == [frames[key]["frame"] for key in frames]


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
    assert "uid" not in header
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
    # SpriteFrames' documented layout: animations is an Array of Dictionaries {frames, loop, name, speed},
    # each frame a Dictionary {duration, texture}; AtlasTexture stores atlas, region and filter_clip.
    value = body.strip().removeprefix("animations = ")
    value = re.sub(r'SubResource\("([^"]+)"\)', r'"\1"', value.replace('&"', '"'))
    animations = json.loads(value)
    assert [sorted(a) for a in animations] == [["frames", "loop", "name", "speed"]] * 2
    assert all(sorted(f) == ["duration", "texture"] and f["duration"] == 1.0 for a in animations for f in a["frames"])
    assert all(sorted(p) == ["atlas", "filter_clip", "region"] for p in subs.values())


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


def test_godot_header_with_uid() -> None:
    """The header exactly as Godot 4.0-4.5 saves it: type, load_steps (sub-resources + external
    resources + the resource itself), format, uid."""
    text = godot_sprite_frames(LAYOUT, "res://a.png", [WALK], uid=godot_uid("res://a.tres"))
    assert text.splitlines()[:2] == [
        '[gd_resource type="SpriteFrames" load_steps=5 format=3 uid="uid://dy7r2by0fpswy"]',
        "",
    ]
    header, resources, _ = parse_tres(text)
    assert int(header["load_steps"]) == len(resources) + 1


def godot_id_from_text(text: str) -> int:
    """Godot's ``ResourceUID::text_to_id``, transcribed: base 34 over a-y (0-24) and 0-8 (25-33)."""
    assert text.startswith("uid://")
    number = 0
    for char in text[6:]:
        number *= 34
        if "a" <= char <= "z":
            number += ord(char) - ord("a")
        elif "0" <= char <= "9":
            number += ord(char) - ord("0") + 25
        else:
            raise ValueError(char)
    return number & 0x7FFF_FFFF_FFFF_FFFF


def test_godot_uid_is_godots_text_form_of_a_stable_63_bit_id() -> None:
    import hashlib

    uids = {godot_uid(f"res://atlases/{n}.tres") for n in range(2000)}
    assert len(uids) == 2000
    for uid in uids:
        assert re.fullmatch(r"uid://[a-y0-8]{1,13}", uid)
    seed = "res://assets/atlases/heroes.tres"
    expected = int.from_bytes(hashlib.sha256(seed.encode()).digest()[:8], "big") & (2**63 - 1)
    assert godot_id_from_text(godot_uid(seed)) == expected
    assert godot_uid(seed) == godot_uid(seed)
    # Godot's own example of the largest id (resource_uid.cpp): 0x7FFFFFFFFFFFFFFF is uid://d4n4ub6itg400.
    assert godot_id_from_text("uid://d4n4ub6itg400") == 2**63 - 1


def parse_libgdx(text: str) -> tuple[str, dict[str, list[str]], list[tuple[str, dict[str, list[str]]]]]:
    """The documented libGDX / Spine atlas grammar for one page: the page name, its ``key: v1, v2``
    fields, then regions (a name line followed by its fields)."""
    lines = text.split("\n")
    assert lines[-1] == "" and lines[0] and ":" not in lines[0]
    page, page_fields = lines[0], {}
    regions: list[tuple[str, dict[str, list[str]]]] = []
    for line in lines[1:-1]:
        assert line.strip(), "one page: no blank lines"
        if ":" in line:
            assert line.startswith("\t")
            key, _, value = line.strip().partition(":")
            target = regions[-1][1] if regions else page_fields
            assert key not in target
            target[key] = [part.strip() for part in value.split(",")]
        else:
            assert not line.startswith((" ", "\t"))
            regions.append((line, {}))
    return page, page_fields, regions


def test_libgdx_atlas_format() -> None:
    text = libgdx_atlas(LAYOUT, "atlas.png", [WALK, Animation("coin", ("coin",))])
    page, fields, regions = parse_libgdx(text)
    assert page == "atlas.png"
    assert fields == {
        "size": [str(LAYOUT.width), str(LAYOUT.height)],
        "format": ["RGBA8888"],
        "filter": ["Nearest", "Nearest"],
        "repeat": ["none"],
    }
    assert [(name, f.get("index")) for name, f in regions] == [
        ("walk", ["0"]),
        ("walk", ["1"]),
        ("walk", ["2"]),
        ("coin", None),
    ]
    for (_, region), name in zip(regions, ("walk_0", "walk_1", "walk_2", "coin"), strict=True):
        placement = LAYOUT.placement(name)
        assert region["bounds"] == [str(v) for v in (placement.x, placement.y, placement.width, placement.height)]
    # coin: 8x8 cut from 10x10 at (1, 1) from the top left; libGDX measures y offsets from the bottom.
    assert regions[3][1]["offsets"] == ["1", "1", "10", "10"]
    assert all("offsets" not in region for _, region in regions[:3])
    # Exact bytes for one region, tab-indented as libGDX's packer pretty-prints.
    walk_1 = LAYOUT.placement("walk_1")
    assert f"walk\n\tindex: 1\n\tbounds: {walk_1.x}, {walk_1.y}, 16, 24\n" in text


def test_libgdx_offsets_count_from_the_bottom_and_directions() -> None:
    layout = pack([PackItem("gem", 4, 6, source_width=10, source_height=12, offset_x=2, offset_y=1)])
    _, _, regions = parse_libgdx(libgdx_atlas(layout, "a.png"))
    assert regions == [("gem", {"bounds": ["0", "0", "4", "6"], "offsets": ["2", "5", "10", "12"]})]
    ping = libgdx_atlas(LAYOUT, "a.png", [Animation("p", WALK.frames, direction="pingpong")])
    _, _, regions = parse_libgdx(ping)
    walk = [LAYOUT.placement(n) for n in ("walk_0", "walk_1", "walk_2", "walk_1")]
    assert [(name, f["index"], f["bounds"][:2]) for name, f in regions[:4]] == [
        ("p", [str(i)], [str(w.x), str(w.y)]) for i, w in enumerate(walk)
    ]
    assert [name for name, _ in regions[4:]] == ["coin"]


@pytest.mark.parametrize("name", ["a:b", " lead", "new\nline", ""])
def test_libgdx_rejects_names_it_cannot_write(name: str) -> None:
    layout = pack([PackItem(name or "x", 2, 2)])
    with pytest.raises(PackError, match="libGDX"):
        libgdx_atlas(layout, name or "", [])
    if name:
        with pytest.raises(PackError, match="region name"):
            libgdx_atlas(layout, "a.png", [])
