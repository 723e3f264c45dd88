"""examples/dungeon builds as shipped: against a fake ComfyUI with its SDXL models, and on the placeholder."""

from __future__ import annotations

import json
import shutil
import socket
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from PIL import Image

from pixelbuild.testing import FakeComfyServer
from tests.conftest import REPO, Result, build_json

EXAMPLE = REPO / "examples" / "dungeon"
CHECKPOINT = "sd_xl_base_1.0.safetensors"
LORA = "pixel-art-xl.safetensors"

#: Sprites per folder after matrix expansion, and the hand-drawn ones among them.
COUNTS = {
    "characters": 4 + 4 + 4 + 2 + 1,  # idle, walk, attack per direction; mage north and south; shopkeeper
    "monsters": 3 + 1 + 1 + 1 + 1,
    "items": 3 + 4 + 1 + 1,
    "tiles": 3 + 1 + 2 + 1,
}
HAND_DRAWN = {"characters/shopkeeper", "items/heart"}
#: Generator calls: one per sprite, one per frame of a frames list (4 hero attacks x 3, skeleton attack x 3).
GENERATIONS = sum(COUNTS.values()) - len(HAND_DRAWN) + 4 * 2 + 2
#: Images: batches of 4 (hero walks, skeleton walk, coin), 3 (torch) and 2 (slimes, bat), the rest one each.
IMAGES = GENERATIONS + 4 * 3 + 3 + 3 + 2 + 3 * 1 + 1
ATLAS_FILES = {
    f"{name}{suffix}"
    for name in ("actors", "world")
    for suffix in (".png", ".json", ".array.json", ".aseprite.json", ".tres", ".atlas")
}


@pytest.fixture
def dungeon(tmp_path: Path) -> Path:
    """The example as shipped, generating at 256 px instead of SDXL's 1024: the fake server draws noise,
    and encoding 70 incompressible 1024² PNGs alone takes it ~15 s (bench/dungeon.py builds it at 1024)."""
    target = tmp_path / "dungeon"
    shutil.copytree(EXAMPLE, target, ignore=shutil.ignore_patterns(".pixelbuild", "assets", "pixelbuild.lock"))
    manifest = target / "pixelbuild.yaml"
    text = manifest.read_text()
    assert "  size: 1024 " in text
    manifest.write_text(text.replace("  size: 1024 ", "  size: 256 "))
    return target


def _dead_url() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{probe.getsockname()[1]}"


@pytest.fixture
def sdxl_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeComfyServer]:
    monkeypatch.delenv("PIXELBUILD_COMFYUI_URL", raising=False)
    server = FakeComfyServer(checkpoints=(CHECKPOINT,), loras=(LORA,)).start()
    yield server
    server.close()


def _assert_built(project: Path) -> None:
    lock = json.loads((project / "pixelbuild.lock").read_text())
    sprites = lock["sprites"]
    assert sum(COUNTS.values()) >= 30
    for folder, count in COUNTS.items():
        assert len([sprite for sprite in sprites if sprite.startswith(f"{folder}/")]) == count, folder
    assert {sprite for sprite, entry in sprites.items() if entry["backend"]["name"] == "source"} == HAND_DRAWN
    assert {path.name for path in (project / "assets/atlases").iterdir()} == ATLAS_FILES
    actors = json.loads((project / "assets/atlases/actors.json").read_text())
    assert actors["animations"]["characters/hero_walk_east"] == [f"characters/hero_walk_east/{i}" for i in range(4)]
    assert len(actors["animations"]["characters/shopkeeper"]) == 2  # the hand-drawn sheet's two frames
    world = json.loads((project / "assets/atlases/world.json").read_text())
    assert "items/heart" in world["frames"] and "tiles/wall" in world["frames"]
    with Image.open(project / "assets/tiles/floor_clean.png") as tile:
        assert tile.size == (32, 32)


def test_dungeon_builds_against_comfyui(
    cli: Callable[..., Result], dungeon: Path, sdxl_server: FakeComfyServer
) -> None:
    report = build_json(cli, dungeon, "--server", sdxl_server.url, "-j", "2")
    assert report["generator_calls"] == GENERATIONS
    assert sdxl_server.accepted == GENERATIONS
    assert sdxl_server.images_made == IMAGES == 70
    _assert_built(dungeon)
    # Every prompt the server ran used the SDXL checkpoint and the LoRA (the preflight checked the names).
    assert report["failures"] == {}
    assert build_json(cli, dungeon, "--server", sdxl_server.url)["noop"] is True
    assert cli("check", "-C", dungeon).code == 0
    # The artist repaints the heart: exactly it and the world atlas are rebuilt, with no server call.
    heart = dungeon / "items/art/heart.png"
    with Image.open(heart) as image:
        repainted = image.convert("RGBA")
    repainted.putpixel((7, 7), (0xF4, 0xF4, 0xF4, 255))
    repainted.save(heart)
    report = build_json(cli, dungeon, "--server", _dead_url())  # nothing listens there
    assert (report["generator_calls"], report["post_processed"], report["packed"]) == (0, 1, 1)
    assert sdxl_server.accepted == GENERATIONS
    assert cli("check", "-C", dungeon).code == 0


def test_readme_describes_the_example_as_it_is() -> None:
    readme = (REPO / "README.md").read_text()
    assert f"{sum(COUNTS.values())} sprites in four included folders" in readme
    assert f"# {GENERATIONS} generations (70 images), 2 atlases" in readme
    assert len(ATLAS_FILES) == 2 * 6  # an image and five data formats each


def test_dungeon_builds_on_the_placeholder(cli: Callable[..., Result], dungeon: Path) -> None:
    manifest = dungeon / "pixelbuild.yaml"
    text = manifest.read_text()
    assert "  backend: comfyui\n" in text
    manifest.write_text(text.replace("  backend: comfyui\n", "  backend: placeholder\n"))
    report = build_json(cli, dungeon, "-j", "2")
    assert report["generator_calls"] == GENERATIONS
    _assert_built(dungeon)
    assert build_json(cli, dungeon)["noop"] is True
    assert cli("check", "-C", dungeon).code == 0
