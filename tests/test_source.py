"""Hand-drawn sprites (`source:`): read from a PNG or a sheet, post-processed and packed like generated ones."""

from __future__ import annotations

import io
import json
import re
import socket
from collections.abc import Callable
from pathlib import Path

import pytest
from PIL import Image, ImageDraw

from pixelbuild.backends.source import cut_frames
from tests.conftest import Result, build_json


def drawn(size: tuple[int, int], colour: tuple[int, int, int], cells: int = 1, cell: int = 16) -> bytes:
    """A PNG of ``cells`` frames (``cell`` px squares, left to right, wrapping at ``size``), each a box
    whose width grows with its index, so that every frame differs."""
    image = Image.new("RGBA", size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    columns = size[0] // cell
    for index in range(cells):
        left, top = index % columns * cell, index // columns * cell
        draw.rectangle((left + 2, top + 3, left + 3 + index, top + cell - 4), fill=(*colour, 255))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


MANIFEST = """\
version: 1
project:
  output: assets
defaults:
  size: 64
  post:
    - resize: {size: 16, filter: box}
sprites:
  - id: slime
    prompt: green slime
  - id: items/gem
    source: art/gem.png
    post: [{outline: {color: "#101010"}}]
  - id: hero/walk
    source: {file: art/walk.png, frame_size: [16, 16], frames: 5}
    post: []
    layout: {type: grid, columns: 3}
atlases:
  - id: items
    sprites: [items/*]
  - id: everything
    sprites: ["*", "*/*"]
    formats: [texturepacker-hash, aseprite]
"""

FILES: dict[str, str | bytes] = {
    "art/gem.png": drawn((16, 16), (200, 40, 60)),
    "art/walk.png": drawn((48, 32), (40, 160, 60), cells=6),
}


@pytest.fixture
def project(make_project: Callable[..., Path]) -> Path:
    return make_project(MANIFEST, files=dict(FILES))


def test_cut_frames_is_row_major() -> None:
    sheet = Image.new("RGBA", (3, 2))
    for index in range(6):
        sheet.putpixel((index % 3, index // 3), (index, 0, 0, 255))
    frames = cut_frames(sheet, (1, 1), 5)
    assert [frame.getpixel((0, 0))[0] for frame in frames] == [0, 1, 2, 3, 4]
    with pytest.raises(ValueError):
        cut_frames(sheet, (1, 1), 7)


def test_source_sprites_go_through_post_frames_and_atlases(cli: Callable[..., Result], project: Path) -> None:
    report = build_json(cli, project)
    assert report["generator_calls"] == 1  # the slime only: reading a file is no generator call
    lock = json.loads((project / "pixelbuild.lock").read_text())
    gem = lock["sprites"]["items/gem"]
    assert gem["backend"]["name"] == "source"
    assert set(gem["fields"]) == {"backend", "source_file", "frame_size", "batch_size", "post"}
    with Image.open(project / "assets/items/gem.png") as gem_png:
        assert gem_png.size == (18, 18)  # the outline op ran on it
    with Image.open(project / "assets/hero/walk.png") as walk_png:
        assert walk_png.size == (48, 32)  # 5 frames of 16x16 laid out on a 3-column grid
    source_frames = cut_frames(Image.open(project / "art/walk.png").convert("RGBA"), (16, 16), 5)
    with Image.open(project / "assets/hero/walk.png") as walk_png:
        sheet = walk_png.convert("RGBA")
    assert sheet.crop((16, 16, 32, 32)).tobytes() == source_frames[4].tobytes()
    aseprite = json.loads((project / "assets/atlases/everything.aseprite.json").read_text())
    tags = {tag["name"]: (tag["from"], tag["to"]) for tag in aseprite["meta"]["frameTags"]}
    assert tags["hero/walk"][1] - tags["hero/walk"][0] == 4
    assert build_json(cli, project)["noop"] is True
    assert cli("check", "-C", project).code == 0


def test_editing_the_file_rebuilds_exactly_it_and_its_atlases(cli: Callable[..., Result], project: Path) -> None:
    build_json(cli, project)
    (project / "art/walk.png").write_bytes(drawn((48, 32), (40, 60, 200), cells=6))
    plan = cli("plan", "-C", project, "--json").json
    stale = {d["id"]: d for d in plan["sprites"] if d["action"] != "up-to-date"}
    assert list(stale) == ["hero/walk"]
    assert stale["hero/walk"]["action"] == "post"
    assert "source changed" in stale["hero/walk"]["reasons"]
    assert {a["id"]: a["action"] for a in plan["atlases"]} == {"items": "up-to-date", "everything": "pack"}
    report = build_json(cli, project, "--frozen")  # no generator needed: allowed without a GPU
    assert (report["generator_calls"], report["post_processed"], report["packed"]) == (0, 1, 1)
    assert cli("check", "-C", project).code == 0


def test_generator_fields_are_neither_required_nor_hashed(
    cli: Callable[..., Result], make_project: Callable[..., Path]
) -> None:
    manifest = MANIFEST.replace("    source: art/gem.png\n", "    source: art/gem.png\n    prompt: red gem\n")
    project = make_project(manifest, files=dict(FILES))
    build_json(cli, project)
    text = (project / "pixelbuild.yaml").read_text()
    (project / "pixelbuild.yaml").write_text(text.replace("prompt: red gem", "prompt: blue gem\n    seed: 9"))
    report = build_json(cli, project)
    assert (report["generated"], report["post_processed"], report["packed"]) == (0, 0, 0)


@pytest.mark.parametrize("command", ["validate", "plan", "build", "check"])
def test_a_missing_source_file_is_a_located_error(
    cli: Callable[..., Result], make_project: Callable[..., Path], command: str
) -> None:
    project = make_project(MANIFEST, files={"art/walk.png": FILES["art/walk.png"]})
    result = cli(command, "-C", project)
    assert result.code == 2
    assert "pixelbuild.yaml:12:13: " in result.err
    assert "sprite 'items/gem', field 'source': file 'art/gem.png' does not exist" in result.err
    assert "Traceback" not in result.err
    assert not (project / "pixelbuild.lock").exists()


@pytest.mark.parametrize(
    ("entry", "files", "message"),
    [
        ("source: art/x.png", {"art/x.png": b"GIF89a not a png"}, "source 'art/x.png' is not a PNG file"),
        (
            "source: {file: art/x.png, frame_size: 10}",
            {"art/x.png": drawn((16, 16), (1, 2, 3))},
            "the 16x16 sheet 'art/x.png' is not a whole number of 10x10 frames",
        ),
        (
            "source: {file: art/x.png, frame_size: 8, frames: 5}",
            {"art/x.png": drawn((16, 16), (1, 2, 3))},
            "holds 4 frames of 8x8, not 5",
        ),
        (
            "source: art/x.png\n    frames: 2",
            {"art/x.png": drawn((16, 16), (1, 2, 3))},
            "takes its frames from its file",
        ),
        ("source: ../outside.png", {}, "'../outside.png' (must be a path inside|is outside) the project"),
        (
            "source: art/bomb.png",  # a header that claims 100000x100000 pixels: refused before any decoding
            {"art/bomb.png": b"\x89PNG\r\n\x1a\n\x00\x00\x00\x0dIHDR" + (100000).to_bytes(4, "big") * 2},
            "is 100000x100000; at most 67108864 pixels",
        ),
        ("source: assets/x.png", {"assets/x.png": drawn((16, 16), (1, 2, 3))}, "inside 'assets/', which pixelbuild"),
        (
            "source: .pixelbuild/x.png",
            {".pixelbuild/x.png": drawn((16, 16), (1, 2, 3))},
            "inside '.pixelbuild/', which pixelbuild",
        ),
    ],
)
def test_bad_sources_are_located_errors(
    cli: Callable[..., Result], make_project: Callable[..., Path], entry: str, files: dict[str, bytes], message: str
) -> None:
    project = make_project(f"version: 1\nsprites:\n  - id: thing\n    {entry}\n", files=files)
    result = cli("validate", "-C", project)
    assert result.code == 2, result.err
    assert re.search(message, result.err), result.err
    assert "pixelbuild.yaml:" in result.err and "sprite 'thing'" in result.err


def test_a_project_cannot_make_source_its_backend(
    cli: Callable[..., Result], make_project: Callable[..., Path]
) -> None:
    project = make_project("version: 1\nproject: {backend: source}\nsprites:\n  - id: a\n    prompt: a\n")
    result = cli("validate", "-C", project)
    assert result.code == 2 and "pixelbuild.yaml:2:" in result.err and "not allowed" in result.err


def _dead_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def test_comfyui_project_builds_stale_source_sprites_with_no_server(
    cli: Callable[..., Result], make_project: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PIXELBUILD_COMFYUI_URL", raising=False)
    manifest = f"""\
        version: 1
        project:
          backend: comfyui
          comfyui: {{servers: ["http://127.0.0.1:{_dead_port()}"], timeout: 1, retries: 0, unavailable_timeout: 0.2}}
        sprites:
          - id: gem
            source: art/gem.png
          - id: walk
            source: {{file: art/walk.png, frame_size: 16}}
        atlases:
          - id: all
            sprites: ["*"]
        """
    project = make_project(manifest, files=dict(FILES))
    report = build_json(cli, project)  # nothing listens on that port: a contacted server would fail the build
    assert (report["generator_calls"], report["post_processed"], report["packed"]) == (0, 2, 1)
    (project / "art/gem.png").write_bytes(drawn((16, 16), (250, 250, 20)))
    report = build_json(cli, project)
    assert (report["post_processed"], report["packed"], report["up_to_date"]) == (1, 1, 1)
    assert cli("check", "-C", project).code == 0


@pytest.mark.parametrize("command", [("explore", "items/gem"), ("pin", "items/gem", "5"), ("workflow", "items/gem")])
def test_seed_and_graph_commands_refuse_a_hand_drawn_sprite(
    cli: Callable[..., Result], project: Path, command: tuple[str, ...]
) -> None:
    result = cli(*command, "-C", project)
    assert result.code == 2, result.err
    assert "is drawn by hand (source: art/gem.png)" in result.err


def test_the_gallery_names_the_file_of_a_hand_drawn_sprite(cli: Callable[..., Result], project: Path) -> None:
    build_json(cli, project)
    assert cli("gallery", "-C", project).code == 0
    page = (project / ".pixelbuild/gallery/index.html").read_text()
    assert "art/walk.png (drawn by hand)" in page
    assert "5 of 16×16" in page


def test_a_source_edited_during_the_build_is_not_cached_under_its_old_key(project: Path) -> None:
    from pixelbuild.backends.base import GenerationJob
    from pixelbuild.backends.source import SourceBackend
    from pixelbuild.errors import GenerationError
    from pixelbuild.local.layout import ProjectPaths
    from pixelbuild.project import open_session

    session = open_session(ProjectPaths.for_manifest(project / "pixelbuild.yaml"))
    sprite = session.resolved.by_id["items/gem"]
    key = session.keys["items/gem"].generations[0]
    job = GenerationJob(key, sprite.id, sprite.generations[0], project, source_path=project / "art/gem.png")
    backend = SourceBackend()
    backend.start([job])
    assert len(backend.result(key).images) == 1
    (project / "art/gem.png").write_bytes(drawn((16, 16), (9, 9, 9)))  # the artist saves mid-build
    with pytest.raises(GenerationError, match="changed during the build"):
        backend.result(key)
