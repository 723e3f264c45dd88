"""A build after a small edit does work in proportion to the edit: the lock is spliced per changed entry."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

import pixelbuild.lock as lock_module
from pixelbuild.lock import parse_lock, render_lock
from tests.conftest import Result, build_json


def _edit(project: Path, old: str, new: str) -> None:
    manifest = project / "pixelbuild.yaml"
    text = manifest.read_text()
    assert old in text
    manifest.write_text(text.replace(old, new, 1))


def _refuse_full_render(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(lock: lock_module.Lock) -> bytes:
        raise AssertionError("the whole lock was rendered")

    monkeypatch.setattr(lock_module, "render_lock", refuse)


def test_a_one_change_build_splices_the_lock(
    cli: Callable[..., Result], make_project: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    project = make_project()
    build_json(cli, project)
    _edit(project, "blue knight", "red knight")
    _edit(project, "  - id: items/coin\n    prompt: gold coin\n", "  - id: items/gem\n    prompt: green gem\n")
    with monkeypatch.context() as patched:
        _refuse_full_render(patched)
        document = build_json(cli, project)
    assert document["generated"] == 2 and document["removed"] == 1
    raw = (project / "pixelbuild.lock").read_bytes()
    lock = parse_lock(raw, "pixelbuild.lock")
    assert raw == render_lock(lock)
    assert sorted(lock.sprites) == ["hero", "items/gem", "slime"]
    assert build_json(cli, project)["noop"]


def test_a_lock_written_by_something_else_is_rendered_in_full(
    cli: Callable[..., Result], make_project: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    project = make_project()
    build_json(cli, project)
    lock_path = project / "pixelbuild.lock"
    # The same entries in another layout: the stamp no longer vouches for the bytes, so none are copied.
    lock_path.write_text(json.dumps(json.loads(lock_path.read_text()), indent=1))
    _edit(project, "blue knight", "red knight")
    with monkeypatch.context() as patched:
        _refuse_full_render(patched)
        refused = cli("build", "-C", project, "--json")
    assert refused.code != 0 and "whole lock" in refused.out + refused.err
    build_json(cli, project)
    raw = lock_path.read_bytes()
    assert raw == render_lock(parse_lock(raw, "pixelbuild.lock"))
