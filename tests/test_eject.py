"""`pixelbuild eject ID`: a generated sprite becomes a hand-drawn one, with no generator call and the same pixels."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from pixelbuild.yamledit import set_key
from tests.conftest import Result, build_json, snapshot

MANIFEST = """\
version: 1
project:
  output: assets
include: [monsters/*.yaml]
defaults:
  size: 64
  post:
    - resize: {size: 16, filter: box}   # down to art size
    - outline: {color: "#000000"}
sprites:
  # the hero
  - id: hero
    prompt: blue knight   # keep this comment
    seed: 3
  - id: bat
    prompt: purple bat
    frames:
      - {}
      - {prompt: purple bat wings up}
      - {seed: 9}
    layout: {type: grid, columns: 2}
  - id: slime
    prompt: green slime
    frames: 4
    post:
      - resize: {size: 16, filter: box}
      # a comment after the chain
    layout: vertical
  - id: padded
    prompt: red orb
    frames: 2
    layout: {type: strip, padding: 2}
  - id: knight_{side}
    prompt: knight facing {side}
    matrix: {side: [left, right]}
atlases:
  - id: all
    sprites: ["*", "*/*"]
"""

MONSTERS = """\
sprites:
  - {id: monsters/rat, prompt: grey rat}
"""


@pytest.fixture
def project(cli: Callable[..., Result], make_project: Callable[..., Path]) -> Path:
    root = make_project(MANIFEST, files={"monsters/rats.yaml": MONSTERS})
    build_json(cli, root)
    return root


def entry(root: Path, index: int, name: str = "pixelbuild.yaml") -> dict[str, object]:
    document = yaml.safe_load((root / name).read_text())
    value: dict[str, object] = document["sprites"][index]
    return value


@pytest.mark.parametrize(
    ("args", "index", "source", "file"),
    [
        (("hero",), 0, "art/hero.png", "art/hero.png"),
        (("bat",), 1, {"file": "art/bat.png", "frame_size": [18, 18], "frames": 3}, "art/bat.png"),
        (("slime",), 2, {"file": "art/slime.png", "frame_size": [16, 16]}, "art/slime.png"),
        (("slime", "--raw"), 2, {"file": "art/slime.png", "frame_size": [64, 64]}, "art/slime.png"),
        (("bat", "--raw", "-o", "drawn/bat-raw.png"), 1, {"file": "drawn/bat-raw.png", "frame_size": [64, 64]}, None),
    ],
)
def test_eject_then_build_writes_the_same_pixels_with_no_generator_call(
    cli: Callable[..., Result], project: Path, args: tuple[str, ...], index: int, source: object, file: str | None
) -> None:
    before = snapshot(project / "assets")
    old_text = (project / "pixelbuild.yaml").read_text()
    result = cli("eject", *args, "-C", project, "--json")
    assert result.code == 0, result.err
    assert result.json["source"] == source
    new = entry(project, index)
    assert new["source"] == source
    assert "frames" not in new
    old = yaml.safe_load(old_text)["sprites"][index]
    assert new.get("post") == (old.get("post") if "--raw" in args else [])  # the raw keeps its chain
    assert (project / (file or str(source["file"]))).is_file()  # type: ignore[index]
    # a located edit: every other line (comments included) is still there
    new_text = (project / "pixelbuild.yaml").read_text()
    assert "# keep this comment" in new_text and "# down to art size" in new_text and "# the hero" in new_text
    assert len(new_text.splitlines()) - len(old_text.splitlines()) < 3
    report = build_json(cli, project)
    assert report["generator_calls"] == 0 and report["generated"] == 0
    assert report["post_processed"] == 1
    assert snapshot(project / "assets") == before  # the artist starts from exactly what shipped
    assert cli("check", "-C", project).code == 0
    assert build_json(cli, project)["noop"] is True


def test_eject_in_an_included_file_writes_beside_it(cli: Callable[..., Result], project: Path) -> None:
    result = cli("eject", "monsters/rat", "-C", project)
    assert result.code == 0, result.err
    assert (project / "monsters/art/monsters/rat.png").is_file()
    assert "source: art/monsters/rat.png" in (project / "monsters/rats.yaml").read_text()
    assert (
        "{id: monsters/rat, prompt: grey rat, source: art/monsters/rat.png, post: []}"
        in (project / "monsters/rats.yaml").read_text()
    )
    assert build_json(cli, project)["generator_calls"] == 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("knight_left",), "one variant of a matrix entry"),
        (("padded",), "laid out with padding"),
        (("nobody",), "no sprite 'nobody'"),
        (("hero", "-o", "assets/hero-art.png"), "pixelbuild manages"),
        (("hero", "-o", "../outside.png"), "must be a file inside the project"),
        (("hero", "-o", "art/hero.gif"), "a source image is a .png file"),
    ],
)
def test_eject_refuses(cli: Callable[..., Result], project: Path, args: tuple[str, ...], message: str) -> None:
    before = snapshot(project)
    result = cli("eject", *args, "-C", project)
    assert result.code == 2, result.err
    assert message in result.err
    assert snapshot(project) == before


def test_eject_never_overwrites_and_needs_a_current_build(cli: Callable[..., Result], project: Path) -> None:
    (project / "art").mkdir()
    (project / "art/hero.png").write_bytes(b"the artist's own file")
    result = cli("eject", "hero", "-C", project)
    assert result.code == 2 and "never overwrites" in result.err
    assert (project / "art/hero.png").read_bytes() == b"the artist's own file"
    text = (project / "pixelbuild.yaml").read_text().replace("seed: 3", "seed: 4")
    (project / "pixelbuild.yaml").write_text(text)
    result = cli("eject", "hero", "-C", project, "-o", "art/hero2.png")
    assert result.code == 2 and "run 'pixelbuild build' first" in result.err
    assert not (project / "art/hero2.png").exists()


def test_eject_raw_needs_the_cached_generation(cli: Callable[..., Result], project: Path) -> None:
    import shutil

    shutil.rmtree(project / ".pixelbuild")
    result = cli("eject", "hero", "--raw", "-C", project)
    assert result.code == 2 and "not in the local cache" in result.err
    assert cli("eject", "hero", "-C", project).code == 0  # the output is in the repository: enough


def test_set_key_replaces_a_block_chain_keeping_what_follows() -> None:
    text = "sprites:\n  - id: a\n    post:\n      - trim   # t\n      # after\n    layout: strip\n"
    edited, line, changed = set_key(text, 0, "post", [], "m.yaml")
    assert changed and line == 3
    assert edited == "sprites:\n  - id: a\n    post: []   # t\n      # after\n    layout: strip\n"
