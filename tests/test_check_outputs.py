"""``check`` reads every output through its folder's descriptor: what it reports for each odd thing found
in an output's place is pinned here, word for word (links, folders, FIFOs, files where folders belong)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from pixelbuild.fsguard import OpenFolders
from tests.conftest import Result, build_json

MANIFEST = """\
version: 1
project:
  output: assets
defaults:
  size: 64
  post:
    - resize: {size: 16, filter: box}
sprites:
  - {id: hero, prompt: blue knight}
  - {id: items/coin, prompt: gold coin}
  - {id: items/deep/gem, prompt: red gem}
  - {id: more/cup, prompt: a cup}
  - {id: more/hat, prompt: a hat}
"""


def _problems(cli: Callable[..., Result], project: Path) -> list[tuple[str, str, str]]:
    result = cli("check", "-C", project, "--json")
    assert result.code == (0 if result.json["ok"] else 1), result.out + result.err
    return [(p["kind"], p["subject"], p["detail"]) for p in result.json["problems"] if p["kind"] != "orphan"]


@pytest.fixture
def built(cli: Callable[..., Result], make_project: Callable[..., Path]) -> Path:
    project = make_project(MANIFEST)
    build_json(cli, project)
    return project


def test_a_clean_tree_and_a_missing_file_or_folder(cli: Callable[..., Result], built: Path) -> None:
    assert _problems(cli, built) == []
    (built / "assets/hero.png").unlink()
    shutil.rmtree(built / "assets/items/deep")
    assert _problems(cli, built) == [
        ("missing", "hero", "output assets/hero.png is missing"),
        ("missing", "items/deep/gem", "output assets/items/deep/gem.png is missing"),
    ]


def test_links_on_the_way_or_in_place_are_unsafe(cli: Callable[..., Result], built: Path, tmp_path: Path) -> None:
    # The links lead to the very bytes the lock records: still refused, never read through.
    (tmp_path / "outside").mkdir()
    shutil.move(built / "assets/hero.png", tmp_path / "outside/hero.png")
    (built / "assets/hero.png").symlink_to(tmp_path / "outside/hero.png")
    shutil.move(built / "assets/items", tmp_path / "outside/items")
    (built / "assets/items").symlink_to(tmp_path / "outside/items")
    link = "pixelbuild never writes or deletes through links"
    assert _problems(cli, built) == [
        ("unsafe", "hero", f"output assets/hero.png is hero.png is a symbolic link: {link}"),
        ("unsafe", "items/coin", f"output assets/items/coin.png is items is a symbolic link: {link}"),
        ("unsafe", "items/deep/gem", f"output assets/items/deep/gem.png is items is a symbolic link: {link}"),
    ]


def test_a_folder_a_fifo_or_a_file_in_the_way(cli: Callable[..., Result], built: Path) -> None:
    (built / "assets/hero.png").unlink()
    (built / "assets/hero.png").mkdir()
    shutil.rmtree(built / "assets/items/deep")
    (built / "assets/items/deep").write_bytes(b"a file where a folder belongs")
    (built / "assets/more/cup.png").unlink()
    os.mkfifo(built / "assets/more/cup.png")
    link = "pixelbuild never writes or deletes through links"
    assert _problems(cli, built) == [
        ("unsafe", "hero", f"output assets/hero.png is it is a folder: {link}"),
        (
            "unsafe",
            "items/deep/gem",
            f"output assets/items/deep/gem.png is items/deep is a file where a folder is needed: {link}",
        ),
        ("modified", "more/cup", "output assets/more/cup.png is unreadable (None)"),
    ]


def test_edited_bytes_and_other_bytes_with_the_same_pixels(cli: Callable[..., Result], built: Path) -> None:
    from PIL import Image

    with Image.open(built / "assets/more/hat.png") as image:
        image.load()
        image.save(built / "assets/more/hat.png", compress_level=1)  # other zlib bytes, the same pixels
    (built / "assets/items/coin.png").write_bytes(b"not a png")
    assert _problems(cli, built) == [
        (
            "modified",
            "items/coin",
            "output assets/items/coin.png is modified (its bytes and pixels differ from the lock)",
        ),
    ]


def test_more_folders_than_descriptors_held(
    cli: Callable[..., Result], built: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(OpenFolders, "LIMIT", 1)
    assert _problems(cli, built) == []
    (built / "assets/more/hat.png").write_bytes(b"edited")
    assert [problem[1] for problem in _problems(cli, built)] == ["more/hat"]
