"""Atlases as real game engines load them: Phaser 3 and 4, PixiJS 8 and spine-core (libGDX's atlas format)
parse pixelbuild's files in node (tests/engines), and what they make of them must be what pixelbuild meant.

Every frame rectangle an engine reports is cut from the atlas PNG and compared with the member sprite's
own pixels, so a wrong key, rectangle or frame order fails whichever way it is wrong.
"""

from __future__ import annotations

import contextlib
import io
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from pixelbuild.pack import Animation, PackItem, aseprite_json, libgdx_atlas, pack, texturepacker_json
from pixelbuild.png import encode_png
from tests.conftest import REPO

ENGINES = REPO / "tests/engines"
pytestmark = pytest.mark.skipif(
    shutil.which("node") is None or shutil.which("npm") is None, reason="node and npm are needed to run the engines"
)

FPS = 8
MS = round(1000 / FPS)
MANIFEST = f"""\
version: 1
defaults: {{size: 32, post: [{{resize: {{size: 8}}}}]}}
sprites:
  - {{id: heroes/knight, prompt: blue knight}}
  - {{id: monsters/slime, prompt: green slime, frames: 3}}
  - {{id: heroes/wizard, prompt: purple wizard}}
  - {{id: monsters/bat, prompt: bat, frames: 5, layout: {{type: grid, columns: 2, padding: 1}}}}
atlases:
  - id: heroes
    sprites: [heroes/knight, monsters/slime, heroes/wizard, monsters/bat]
    formats: [texturepacker-hash, texturepacker-array, aseprite, godot, libgdx]
    padding: 1
    extrude: 1
    fps: {FPS}
"""
#: Members in atlas order and their frame counts.
MEMBERS = {"heroes/knight": 1, "monsters/slime": 3, "heroes/wizard": 1, "monsters/bat": 5}


WRITER_ITEMS = [
    PackItem("walk_0", 16, 24),
    PackItem("walk_1", 16, 24),
    PackItem("walk_2", 16, 24),
    PackItem("gem", 4, 6, source_width=10, source_height=12, offset_x=2, offset_y=1),
]
WRITER_LAYOUT = pack(WRITER_ITEMS, padding=1)
BACK = Animation("back", ("walk_0", "walk_1", "walk_2"), fps=4, direction="reverse")
BOUNCE = Animation("bounce", ("walk_0", "walk_1", "walk_2"), fps=4, direction="pingpong")


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Writer-level files: a trimmed item, reverse and pingpong animations (no build can make these yet)."""
    folder = tmp_path_factory.mktemp("written")
    layout = WRITER_LAYOUT
    files = {
        "a.png": encode_png(Image.new("RGBA", (layout.width, layout.height))),
        "a.json": texturepacker_json(layout, "a.png", [BACK, BOUNCE]).encode(),
        "a.aseprite.json": aseprite_json(layout, "a.png", [BACK, Animation("gem", ("gem",))]).encode(),
        "a.atlas": libgdx_atlas(layout, "a.png", [BOUNCE]).encode(),
    }
    for name, data in files.items():
        (folder / name).write_bytes(data)
    return folder


@pytest.fixture(scope="module")
def engines(built: Path, written: Path) -> dict[str, dict[str, Any]]:
    """Install the pinned loaders when missing (as .ci/run does), then run each engine once on every case."""
    subprocess.run(["bash", str(ENGINES / "install.sh")], check=True)
    atlas, image = built / "assets/atlases", str(built / "assets/atlases/heroes.png")
    aseprite = [
        {"id": "ase", "image": image, "kind": "aseprite", "json": str(atlas / "heroes.aseprite.json")},
        {"id": "hash", "image": image, "kind": "atlas", "json": str(atlas / "heroes.json")},
        {"id": "array", "image": image, "kind": "atlas", "json": str(atlas / "heroes.array.json")},
        {
            "id": "written",
            "image": str(written / "a.png"),
            "kind": "aseprite",
            "json": str(written / "a.aseprite.json"),
        },
    ]
    jobs = {
        "phaser": ("phaser.cjs", "phaser", aseprite),
        "phaser4": ("phaser.cjs", "phaser4", aseprite),
        "pixi": (
            "pixi.mjs",
            None,
            [
                {"id": "hash", "image": image, "json": str(atlas / "heroes.json")},
                {"id": "written", "image": str(written / "a.png"), "json": str(written / "a.json")},
            ],
        ),
        "spine": (
            "spine.mjs",
            None,
            [
                {"id": "atlas", "atlas": str(atlas / "heroes.atlas")},
                {"id": "written", "atlas": str(written / "a.atlas")},
            ],
        ),
    }
    results: dict[str, dict[str, Any]] = {}
    for engine, (script, argument, cases) in jobs.items():
        command = ["node", str(ENGINES / script), *([argument] if argument else [])]
        done = subprocess.run(command, input=json.dumps({"cases": cases}), capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, f"{engine}: {done.stderr}"
        results[engine] = json.loads(done.stdout)
    return results


def _frames_of(path: Path, count: int, columns: int, padding: int) -> list[Image.Image]:
    """Cut a member's sheet into its frames, independently of pixelbuild's own code."""
    with Image.open(path) as opened:
        sheet = opened.convert("RGBA")
    rows = -(-count // columns)
    width = (sheet.width - (columns - 1) * padding) // columns
    height = (sheet.height - (rows - 1) * padding) // rows
    return [
        sheet.crop(
            (
                (i % columns) * (width + padding),
                (i // columns) * (height + padding),
                (i % columns) * (width + padding) + width,
                (i // columns) * (height + padding) + height,
            )
        )
        for i in range(count)
    ]


def _crop(atlas: Image.Image, x: int, y: int, w: int, h: int) -> bytes:
    return atlas.crop((x, y, x + w, y + h)).tobytes()


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One project built with every atlas format (module-scoped: the engines share it)."""
    from pixelbuild.cli import main

    root = tmp_path_factory.mktemp("engines")
    (root / "pixelbuild.yaml").write_text(MANIFEST)
    with contextlib.redirect_stdout(io.StringIO()) as out:
        code = main(["build", "-C", str(root), "--json"])
    assert code == 0, out.getvalue()
    assert json.loads(out.getvalue())["packed"] == 1
    return root


@pytest.fixture(scope="module")
def expected(built: Path) -> dict[str, list[bytes]]:
    """Each member's frames as pixels, from the member sprites' own output files."""
    frames: dict[str, list[bytes]] = {}
    for member, count in MEMBERS.items():
        columns, padding = (2, 1) if member == "monsters/bat" else (count, 0)
        frames[member] = [f.tobytes() for f in _frames_of(built / f"assets/{member}.png", count, columns, padding)]
    return frames


def _atlas_image(built: Path) -> Image.Image:
    with Image.open(built / "assets/atlases/heroes.png") as opened:
        return opened.convert("RGBA")


VERSIONS = {"phaser": "3.90.0", "phaser4": "4.2.1", "pixi": "8.22.0", "spine": "4.2.119"}
#: Frame names in the TexturePacker files: a still sprite's id, an animation's "<id>/<index>".
NAMES = [member if count == 1 else f"{member}/{i}" for member, count in MEMBERS.items() for i in range(count)]


def test_the_pinned_versions_ran(engines: dict[str, dict[str, Any]]) -> None:
    assert {engine: result["version"] for engine, result in engines.items()} == VERSIONS


@pytest.mark.parametrize("package", ["phaser", "phaser4"])
def test_phaser_reads_aseprite_and_texturepacker(
    package: str, built: Path, expected: dict[str, list[bytes]], engines: dict[str, dict[str, Any]]
) -> None:
    cases = engines[package]["cases"]
    atlas = _atlas_image(built)
    ase = cases["ase"]
    # createFromAseprite: one animation per member, its frames in order, each shown 1000/fps ms.
    assert list(ase["anims"]) == list(MEMBERS)
    total = sum(MEMBERS.values())
    assert list(ase["frames"]) == [str(i) for i in range(total)]
    for member, count in MEMBERS.items():
        anim = ase["anims"][member]
        assert len(anim["frames"]) == count
        assert anim["durations"] == [MS] * count and anim["duration"] == MS * count
        assert anim["textureKeys"] == ["ase"] and anim["yoyo"] is False
        pixels = [_crop(atlas, *(ase["frames"][f][k] for k in "xywh")) for f in anim["frames"]]
        assert pixels == expected[member], member
    # The TexturePacker files: the same rectangles, named by sprite (hash) or listed in order (array).
    rects = [ase["frames"][str(i)] for i in range(total)]
    assert [cases["hash"]["frames"][name] for name in NAMES] == rects
    assert list(cases["hash"]["frames"]) == NAMES
    assert list(cases["array"]["frames"]) == NAMES
    assert [cases["array"]["frames"][name] for name in NAMES] == rects


def test_pixi_reads_texturepacker_frames_and_animations(
    built: Path, expected: dict[str, list[bytes]], engines: dict[str, dict[str, Any]]
) -> None:
    sheet = engines["pixi"]["cases"]["hash"]
    atlas = _atlas_image(built)
    assert list(sheet["frames"]) == NAMES
    # spritesheet.animations: the animated members, their frames in order.
    assert {name: len(frames) for name, frames in sheet["animations"].items()} == {
        "monsters/slime": 3,
        "monsters/bat": 5,
    }
    for member, count in MEMBERS.items():
        names = sheet["animations"].get(member, [member])
        assert len(names) == count
        pixels = [_crop(atlas, *(sheet["frames"][n][k] for k in "xywh")) for n in names]
        assert pixels == expected[member], member
    assert all(frame["trim"] is None for frame in sheet["frames"].values())


def test_spine_core_reads_the_libgdx_atlas(
    built: Path, expected: dict[str, list[bytes]], engines: dict[str, dict[str, Any]]
) -> None:
    parsed = engines["spine"]["cases"]["atlas"]
    atlas = _atlas_image(built)
    nearest, clamp = 9728, 33071  # GL_NEAREST, GL_CLAMP_TO_EDGE
    assert parsed["pages"] == [
        {
            "name": "heroes.png",
            "width": atlas.width,
            "height": atlas.height,
            "minFilter": nearest,
            "magFilter": nearest,
            "uWrap": clamp,
            "vWrap": clamp,
            "pma": False,
        }
    ]
    regions: dict[str, list[dict[str, Any]]] = {}
    for region in parsed["regions"]:
        regions.setdefault(region["name"], []).append(region)
        assert region["names"] is None  # no field the parser did not know
        assert (region["offsetX"], region["offsetY"], region["degrees"]) == (0, 0, 0)
        assert (region["originalWidth"], region["originalHeight"]) == (region["width"], region["height"])
    assert {name: len(found) for name, found in regions.items()} == MEMBERS
    for member, found in regions.items():
        if len(found) > 1:
            assert [r["index"] for r in found] == list(range(len(found)))
        pixels = [_crop(atlas, r["x"], r["y"], r["width"], r["height"]) for r in found]
        assert pixels == expected[member], member


def test_engines_on_trimmed_frames_and_directions(engines: dict[str, dict[str, Any]]) -> None:
    """Writer-level files: trimmed items, reverse and pingpong, against the layout pixelbuild packed."""
    rect = {p.name: {"x": p.x, "y": p.y, "w": p.width, "h": p.height} for p in WRITER_LAYOUT.placements}
    sheet = engines["pixi"]["cases"]["written"]
    assert sheet["animations"] == {
        "back": ["walk_2", "walk_1", "walk_0"],
        "bounce": ["walk_0", "walk_1", "walk_2", "walk_1"],
    }
    assert sheet["frames"]["gem"] == {**rect["gem"], "origW": 10, "origH": 12, "trim": {"x": 2, "y": 1, "w": 4, "h": 6}}
    for package in ("phaser", "phaser4"):
        phaser = engines[package]["cases"]["written"]
        assert phaser["anims"]["back"]["frames"] == ["2", "1", "0"]
        assert phaser["anims"]["back"]["durations"] == [250, 250, 250]
        assert phaser["frames"]["3"] == {
            **rect["gem"],
            "trimmed": True,
            "sourceW": 10,
            "sourceH": 12,
            "offsetX": 2,
            "offsetY": 1,
        }
    spine = engines["spine"]["cases"]["written"]
    got = [(r["name"], r["index"], r["x"], r["y"]) for r in spine["regions"]]
    sequence = ["walk_0", "walk_1", "walk_2", "walk_1"]
    assert got[:4] == [("bounce", i, rect[n]["x"], rect[n]["y"]) for i, n in enumerate(sequence)]
    gem = spine["regions"][4]
    # libGDX counts the y offset from the bottom: 12 - 6 - 1 = 5.
    assert [gem[k] for k in ("name", "offsetX", "offsetY", "originalWidth", "originalHeight")] == ["gem", 2, 5, 10, 12]
