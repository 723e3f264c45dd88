"""The no-op fast path must notice every change that matters, and only those."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

from tests.conftest import Result, build_json

INCLUDING = """\
version: 1
include: [parts/*.yaml]
defaults: {size: 32}
sprites:
  - id: hero
    prompt: knight
"""


def built_twice(cli: Callable[..., Result], project: Path) -> None:
    build_json(cli, project)
    assert build_json(cli, project)["noop"] is True


def test_whitespace_edit_leaves_the_fast_path_but_regenerates_nothing(
    cli: Callable[..., Result], make_project: Callable[..., Path]
) -> None:
    project = make_project()
    built_twice(cli, project)
    manifest = project / "pixelbuild.yaml"
    manifest.write_text(manifest.read_text() + "\n# a comment\n")
    report = build_json(cli, project)
    assert report["noop"] is False and report["generator_calls"] == 0 and report["up_to_date"] == 3
    assert build_json(cli, project)["noop"] is True


def test_new_file_matching_an_include_glob_is_noticed(
    cli: Callable[..., Result], make_project: Callable[..., Path]
) -> None:
    project = make_project(INCLUDING, files={"parts/a.yaml": "sprites:\n  - id: a\n    prompt: slime\n"})
    built_twice(cli, project)
    (project / "parts/b.yaml").write_text("sprites:\n  - id: b\n    prompt: bat\n")
    report = build_json(cli, project)
    assert report["generator_calls"] == 1 and report["up_to_date"] == 2


def test_edit_in_an_included_file_is_noticed(cli: Callable[..., Result], make_project: Callable[..., Path]) -> None:
    project = make_project(INCLUDING, files={"parts/a.yaml": "sprites:\n  - id: a\n    prompt: slime\n"})
    built_twice(cli, project)
    (project / "parts/a.yaml").write_text("sprites:\n  - id: a\n    prompt: red slime\n")
    assert build_json(cli, project)["generator_calls"] == 1


def test_deleted_or_touched_output_is_noticed(cli: Callable[..., Result], make_project: Callable[..., Path]) -> None:
    project = make_project()
    built_twice(cli, project)
    (project / "assets/hero.png").unlink()
    report = build_json(cli, project)
    assert report["restored"] == 1 and report["generator_calls"] == 0
    assert build_json(cli, project)["noop"] is True
    stat = (project / "assets/slime.png").stat()
    os.utime(project / "assets/slime.png", ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    report = build_json(cli, project)
    assert report["noop"] is False and report["restored"] == 0 and report["up_to_date"] == 3


def test_lock_edit_is_noticed(cli: Callable[..., Result], make_project: Callable[..., Path]) -> None:
    project = make_project()
    built_twice(cli, project)
    lock = project / "pixelbuild.lock"
    data = json.loads(lock.read_text())
    del data["sprites"]["slime"]  # e.g. a bad merge resolution
    lock.write_text(json.dumps(data, indent=2))
    report = build_json(cli, project)
    assert report["noop"] is False
    assert report["restored"] == 1 and report["generator_calls"] == 0  # the cache still has it


def test_project_workflow_shadowing_a_builtin_is_noticed(
    cli: Callable[..., Result], make_project: Callable[..., Path]
) -> None:
    manifest = "version: 1\nproject: {backend: placeholder}\ndefaults: {size: 32}\nsprites:\n  - id: a\n    prompt: x\n"
    project = make_project(manifest)
    built_twice(cli, project)
    (project / "workflows").mkdir()
    (project / "workflows/txt2img_sdxl.json").write_text("{}")
    report = build_json(cli, project)
    assert report["noop"] is False
    # The placeholder does not read workflows, so nothing regenerates.
    assert report["generator_calls"] == 0


def test_failed_build_leaves_no_stamp(
    cli: Callable[..., Result], make_project: Callable[..., Path], monkeypatch: object
) -> None:
    import pytest

    from pixelbuild.backends import placeholder
    from pixelbuild.errors import GenerationError

    assert isinstance(monkeypatch, pytest.MonkeyPatch)
    original = placeholder.PlaceholderBackend.result

    def flaky(self: placeholder.PlaceholderBackend, key: str) -> placeholder.GenerationResult:
        if self._jobs[key].sprite_id == "slime":
            raise GenerationError("the generator broke")
        return original(self, key)

    monkeypatch.setattr(placeholder.PlaceholderBackend, "result", flaky)
    project = make_project()
    result = cli("build", "-C", project)
    assert result.code == 1
    assert "FAILED slime: " in result.out and "pixelbuild.yaml:11: the generator broke" in result.out
    assert "2 generated, 1 failed" in result.out
    assert not (project / ".pixelbuild/state/noop.json").exists()
    monkeypatch.setattr(placeholder.PlaceholderBackend, "result", original)
    report = build_json(cli, project)
    assert report["generator_calls"] == 1 and report["up_to_date"] == 2


def test_cached_resolution_follows_inherited_defaults_and_files(
    cli: Callable[..., Result], make_project: Callable[..., Path]
) -> None:
    project = make_project(
        INCLUDING.replace("defaults: {size: 32}", "defaults: {size: 32, negative_prompt: blurry}"),
        files={"parts/a.yaml": "sprites:\n  - id: a\n    prompt: slime\n  - id: b\n    prompt: bat\n"},
    )
    build_json(cli, project)
    assert list((project / ".pixelbuild/state/resolved").glob("*.pickle"))
    # The included file is unchanged, but the defaults it inherits are not: its sprites are stale.
    manifest = project / "pixelbuild.yaml"
    manifest.write_text(manifest.read_text().replace("negative_prompt: blurry", "negative_prompt: photo"))
    report = build_json(cli, project)
    assert report["generator_calls"] == 3
    # Without any cached resolution the same keys come out: nothing is stale.
    import shutil

    shutil.rmtree(project / ".pixelbuild/state/resolved")
    (project / ".pixelbuild/state/noop.json").unlink()
    assert build_json(cli, project)["up_to_date"] == 3 and build_json(cli, project)["noop"] is True
