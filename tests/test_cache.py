"""The content-addressed cache: what gc keeps and what it prunes."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from pixelbuild.store import Store
from tests.conftest import Result, build_json


def cache_files(project: Path) -> int:
    return sum(1 for p in (project / ".pixelbuild/cache").rglob("*") if p.is_file())


def test_gc_prunes_what_the_lock_and_manifest_no_longer_use(
    cli: Callable[..., Result], make_project: Callable[..., Path]
) -> None:
    project = make_project()
    build_json(cli, project)
    manifest = project / "pixelbuild.yaml"
    manifest.write_text(manifest.read_text().replace("blue knight", "red knight"))
    build_json(cli, project)
    before = cache_files(project)
    result = cli("gc", "-C", project, "--json")
    assert result.code == 0
    removed = result.json
    # the old knight: one raw generation and one post-processed result, each an action and a blob
    assert (removed["actions"], removed["blobs"]) == (2, 2)
    assert cache_files(project) == before - 4
    # what is in use survives: a lost output is restored without the generator
    (project / "assets/slime.png").unlink()
    assert build_json(cli, project)["generator_calls"] == 0
    # and the reverted edit now needs the generator again
    manifest.write_text(manifest.read_text().replace("red knight", "blue knight"))
    assert build_json(cli, project)["generator_calls"] == 1


def test_gc_keep_days_keeps_recent_entries(cli: Callable[..., Result], make_project: Callable[..., Path]) -> None:
    project = make_project()
    build_json(cli, project)
    manifest = project / "pixelbuild.yaml"
    manifest.write_text(manifest.read_text().replace("blue knight", "red knight"))
    build_json(cli, project)
    assert cli("gc", "-C", project, "--keep-days", "1", "--json").json["actions"] == 0
    manifest.write_text(manifest.read_text().replace("red knight", "blue knight"))
    assert build_json(cli, project)["generator_calls"] == 0


def test_damaged_blob_is_treated_as_missing(tmp_path: Path) -> None:
    store = Store(tmp_path)
    digest = store.put_blob(b"pixels")
    assert store.read_blob(digest) == b"pixels"
    (tmp_path / "blobs" / digest[:2] / digest).write_bytes(b"pixelz")
    assert store.read_blob(digest) is None
