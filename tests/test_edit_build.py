"""A build after a small edit does work in proportion to the edit: only the changed files' sprites are
planned, where nothing else can change, and the lock is spliced per changed entry."""

from __future__ import annotations

import json
import shutil
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

import pixelbuild.lock as lock_module
import pixelbuild.project as project_module
from pixelbuild.builder import build, build_checked
from pixelbuild.local.layout import real_manifest_path
from pixelbuild.local.stamp import check_for_build
from pixelbuild.lock import parse_lock, render_lock
from tests.conftest import Result, build_json, snapshot


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


# ------------------------------------------------- a change in one file, and what it can affect elsewhere

ROOT = """\
version: 1
project:
  output: assets
include: [parts/*.yaml]
defaults:
  size: 32
  post:
    - resize: {size: 16, filter: box}
"""

PARTS = {
    "parts/a.yaml": """\
        sprites:
          - id: a/knight
            prompt: knight
          - id: a/slime
            prompt: slime
            post:
              - resize: {size: 16, filter: box}
              - palette: {file: ../colours.hex}
        """,
    "parts/b.yaml": """\
        sprites:
          - id: b/coin
            prompt: coin
          - id: b/gem
            prompt: gem
            output: gems/gem.png
        """,
    "colours.hex": "000000\nffffff\nff0000\n00ff00\n",
}


def _project(make_project: Callable[..., Path], root: str = ROOT, **extra: str) -> Path:
    return make_project(root, {**PARTS, **extra})


def _write(project: Path, name: str, text: str) -> None:
    (project / name).write_text(textwrap.dedent(text))


def _replace(project: Path, name: str, old: str, new: str) -> None:
    text = (project / name).read_text()
    assert old in text, text
    (project / name).write_text(text.replace(old, new, 1))


def _no_full_session(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("the whole manifest was loaded")

    monkeypatch.setattr(project_module, "open_session", refuse)


def _same_as_a_full_build(cli: Callable[..., Result], project: Path, tmp_path: Path) -> None:
    """The project (lock, assets) is what a build from scratch of its manifest makes, and a no-op holds."""
    fresh = tmp_path / f"fresh-{project.name}"
    shutil.copytree(project, fresh, ignore=shutil.ignore_patterns(".pixelbuild", "assets", "pixelbuild.lock"))
    build_json(cli, fresh)
    assert snapshot(project) == snapshot(fresh)
    raw = (project / "pixelbuild.lock").read_bytes()
    assert raw == render_lock(parse_lock(raw, "pixelbuild.lock"))
    assert build_json(cli, project)["noop"]


def test_an_edit_of_an_included_file_plans_its_sprites_alone(
    cli: Callable[..., Result], make_project: Callable[..., Path], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    project = _project(make_project)
    build_json(cli, project)
    _replace(project, "parts/a.yaml", "prompt: knight", "prompt: red knight")
    with monkeypatch.context() as patched:
        _no_full_session(patched)
        _refuse_full_render(patched)
        document = build_json(cli, project)
    assert (document["generated"], document["up_to_date"], document["noop"]) == (1, 3, False)
    _same_as_a_full_build(cli, project, tmp_path)


def test_sprites_added_removed_renamed_and_moved_between_files(
    cli: Callable[..., Result], make_project: Callable[..., Path], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    project = _project(make_project)
    build_json(cli, project)
    _write(
        project,
        "parts/a.yaml",
        """\
        sprites:
          - id: a/knight2
            prompt: knight
          - id: b/coin
            prompt: coin
          - id: a/new
            prompt: bat
        """,
    )
    _write(
        project,
        "parts/b.yaml",
        """\
        sprites:
          - id: b/gem
            prompt: gem
            output: gems/gem.png
        """,
    )
    with monkeypatch.context() as patched:
        _no_full_session(patched)
        document = build_json(cli, project)
    # a/knight2 is new (its seed comes from its id), b/coin moved (up to date), a/knight and a/slime left.
    assert (document["generated"], document["removed"], document["up_to_date"]) == (2, 2, 2), document
    assert not (project / "assets/a/slime.png").exists()
    _same_as_a_full_build(cli, project, tmp_path)


@pytest.mark.parametrize(
    ("sprite", "message"),
    [
        ("  - id: b/coin\n    prompt: other coin\n", "duplicate id 'b/coin'"),
        # a.yaml comes first: the sprite of b.yaml is the one that clashes.
        ("  - id: a/coin\n    prompt: coin\n    output: B/COIN.png\n", "duplicate output 'b/coin.png'"),
        ("  - id: a/gems\n    prompt: gem\n    output: Gems/Gem.png/x.png\n", "would be a file where"),
        ("  - id: a/under\n    prompt: gem\n    output: gems/gem.png/x.png\n", "needs a folder"),
    ],
)
def test_a_clash_with_a_sprite_of_another_file_is_the_full_builds_error(
    cli: Callable[..., Result], make_project: Callable[..., Path], sprite: str, message: str, tmp_path: Path
) -> None:
    project = _project(make_project)
    build_json(cli, project)
    before = snapshot(project)
    (project / "parts/a.yaml").write_text((project / "parts/a.yaml").read_text() + sprite)
    result = cli("build", "-C", project)
    assert result.code == 2 and message in result.err, result.err
    # Word for word, line included, what a project without any cache says (b.yaml's sprites come from the
    # spec cache here, which keeps no YAML positions).
    cold = tmp_path / "cold"
    shutil.copytree(project, cold, ignore=shutil.ignore_patterns(".pixelbuild"))
    assert cli("build", "-C", cold).err == result.err.replace(str(project), str(cold))
    assert {k: v for k, v in snapshot(project).items() if k != "parts/a.yaml"} == {
        k: v for k, v in before.items() if k != "parts/a.yaml"
    }


def test_max_sprites_counts_every_file(cli: Callable[..., Result], make_project: Callable[..., Path]) -> None:
    project = _project(make_project, ROOT.replace("  output: assets\n", "  output: assets\n  max_sprites: 4\n"))
    build_json(cli, project)
    (project / "parts/a.yaml").write_text((project / "parts/a.yaml").read_text() + "  - id: a/fifth\n    prompt: x\n")
    result = cli("build", "-C", project)
    assert result.code == 2 and "more than 4 sprites" in result.err, result.err


def test_a_root_edit_reaches_every_file(
    cli: Callable[..., Result], make_project: Callable[..., Path], tmp_path: Path
) -> None:
    project = _project(make_project)
    build_json(cli, project)
    _replace(project, "pixelbuild.yaml", "size: 32", "size: 48")
    assert build_json(cli, project)["generated"] == 4
    _same_as_a_full_build(cli, project, tmp_path)


def test_a_shared_file_edit_reaches_the_sprites_of_other_files(
    cli: Callable[..., Result], make_project: Callable[..., Path], tmp_path: Path
) -> None:
    project = _project(make_project)
    build_json(cli, project)
    # b.yaml now reads the palette too, and the palette changes in the same edit: a/slime must follow.
    _replace(project, "parts/b.yaml", "prompt: coin\n", "prompt: coin\n    post: [{palette: {file: ../colours.hex}}]\n")
    (project / "colours.hex").write_text("000000\nffffff\n0000ff\n")
    document = build_json(cli, project)
    assert document["post_processed"] + document["generated"] >= 2, document
    _same_as_a_full_build(cli, project, tmp_path)


def test_defaults_of_an_including_file_reach_the_files_it_includes(
    cli: Callable[..., Result], make_project: Callable[..., Path], tmp_path: Path
) -> None:
    project = make_project(
        ROOT.replace("include: [parts/*.yaml]", "include: [group.yaml]"),
        {
            "group.yaml": "include: [parts/*.yaml]\ndefaults:\n  size: 32\nsprites: []\n",
            **PARTS,
        },
    )
    build_json(cli, project)
    _replace(project, "group.yaml", "size: 32", "size: 48")
    assert build_json(cli, project)["generated"] == 4
    _same_as_a_full_build(cli, project, tmp_path)


def test_atlases_follow_an_edit_of_a_member_in_another_file(
    cli: Callable[..., Result], make_project: Callable[..., Path], tmp_path: Path
) -> None:
    project = _project(make_project, ROOT + "atlases:\n  - id: all\n    sprites: ['*/*']\n")
    build_json(cli, project)
    _replace(project, "parts/b.yaml", "prompt: coin", "prompt: silver coin")
    document = build_json(cli, project)
    assert (document["generated"], document["packed"]) == (1, 1), document
    _same_as_a_full_build(cli, project, tmp_path)


def test_an_atlas_added_in_an_included_file_is_packed(
    cli: Callable[..., Result], make_project: Callable[..., Path], tmp_path: Path
) -> None:
    project = _project(make_project)
    build_json(cli, project)
    (project / "parts/b.yaml").write_text(
        (project / "parts/b.yaml").read_text() + "atlases:\n  - id: coins\n    sprites: ['a/*', b/coin]\n"
    )
    assert build_json(cli, project)["packed"] == 1
    _same_as_a_full_build(cli, project, tmp_path)


def test_a_damaged_lock_entry_of_an_edited_sprite_is_named(
    cli: Callable[..., Result], make_project: Callable[..., Path]
) -> None:
    project = _project(make_project)
    build_json(cli, project)
    lock = project / "pixelbuild.lock"
    # The stamp no longer vouches for the lock, so the whole lock is read and checked, as always.
    lock.write_text(lock.read_text().replace('"path": "a/knight.png"', '"path": "../knight.png"'))
    _replace(project, "parts/a.yaml", "prompt: knight", "prompt: red knight")
    result = cli("build", "-C", project)
    assert result.code == 2 and "a/knight" in result.err and "pixelbuild.lock" in result.err, result.err


def test_a_lost_resolution_cache_takes_the_full_path(
    cli: Callable[..., Result], make_project: Callable[..., Path], tmp_path: Path
) -> None:
    project = _project(make_project)
    build_json(cli, project)
    for entry in (project / ".pixelbuild").rglob("resolved/*"):
        entry.unlink()
    _replace(project, "parts/a.yaml", "- id: a/slime", "- id: a/slime2")
    document = build_json(cli, project)
    assert (document["removed"], document["up_to_date"]) == (1, 3), document
    _same_as_a_full_build(cli, project, tmp_path)


def test_an_output_where_another_file_needs_a_folder_is_the_full_builds_error(
    cli: Callable[..., Result], make_project: Callable[..., Path]
) -> None:
    project = _project(make_project)
    _replace(project, "parts/b.yaml", "output: gems/gem.png", "output: gems.png/gem.png")
    build_json(cli, project)
    (project / "parts/a.yaml").write_text(
        (project / "parts/a.yaml").read_text() + "  - id: a/gems\n    prompt: gem\n    output: GEMS.png\n"
    )
    result = cli("build", "-C", project)
    assert result.code == 2 and "needs a folder 'gems.png'" in result.err, result.err


def test_the_stamp_of_an_edit_build_still_sees_every_other_file(
    cli: Callable[..., Result], make_project: Callable[..., Path], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    project = _project(make_project)
    build_json(cli, project)
    for round_ in range(2):
        _replace(
            project,
            "parts/a.yaml",
            "prompt: knight" if round_ == 0 else "prompt: red knight",
            "prompt: red knight" if round_ == 0 else "prompt: blue knight",
        )
        with monkeypatch.context() as patched:
            _no_full_session(patched)
            assert build_json(cli, project)["generated"] == 1
        assert build_json(cli, project)["noop"]
    # Signatures carried over from the first stamp still catch a change of another file's output...
    coin = project / "assets/b/coin.png"
    original = coin.read_bytes()
    coin.unlink()
    document = build_json(cli, project)
    assert (document["noop"], document["restored"]) == (False, 1) and coin.read_bytes() == original
    # ...and of a file that the edited sprites read.
    (project / "colours.hex").write_text("000000\nffffff\n0000ff\n")
    assert not build_json(cli, project)["noop"]
    _same_as_a_full_build(cli, project, tmp_path)


def test_an_edit_of_sprites_no_atlas_lists_leaves_the_atlases_alone(
    cli: Callable[..., Result], make_project: Callable[..., Path], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    project = _project(make_project, ROOT + "atlases:\n  - id: loot\n    sprites: ['b/*']\n")
    build_json(cli, project)
    _replace(project, "parts/a.yaml", "prompt: knight", "prompt: red knight")
    with monkeypatch.context() as patched:
        _no_full_session(patched)
        _refuse_full_render(patched)
        document = build_json(cli, project)
    assert (document["generated"], document["packed"], document["up_to_date"]) == (1, 0, 4), document
    _same_as_a_full_build(cli, project, tmp_path)


@pytest.mark.parametrize(
    "edit",
    [
        ("parts/a.yaml", "- id: a/slime", "- id: b/slime"),  # a sprite joins the atlas
        ("parts/b.yaml", "prompt: gem", "prompt: ruby"),  # a member changes
        ("parts/b.yaml", "  - id: b/gem\n    prompt: gem\n    output: gems/gem.png\n", ""),  # a member leaves
    ],
)
def test_an_edit_an_atlas_sees_repacks_it(
    cli: Callable[..., Result], make_project: Callable[..., Path], tmp_path: Path, edit: tuple[str, str, str]
) -> None:
    project = _project(make_project, ROOT + "atlases:\n  - id: loot\n    sprites: ['b/*']\n")
    build_json(cli, project)
    _replace(project, *edit)
    assert build_json(cli, project)["packed"] == 1
    _same_as_a_full_build(cli, project, tmp_path)


def test_an_atlas_defined_in_an_unchanged_included_file_is_repacked(
    cli: Callable[..., Result], make_project: Callable[..., Path], tmp_path: Path
) -> None:
    project = _project(make_project)
    (project / "parts/b.yaml").write_text(
        (project / "parts/b.yaml").read_text() + "atlases:\n  - id: knights\n    sprites: ['a/*']\n"
    )
    build_json(cli, project)
    _replace(project, "parts/a.yaml", "prompt: knight", "prompt: red knight")
    assert build_json(cli, project)["packed"] == 1
    _same_as_a_full_build(cli, project, tmp_path)


def test_a_refused_edit_leaves_no_cache_entry(cli: Callable[..., Result], make_project: Callable[..., Path]) -> None:
    project = _project(make_project)
    build_json(cli, project)
    state = project / ".pixelbuild"
    before = {path for path in state.rglob("*") if path.is_file()}
    (project / "parts/a.yaml").write_text(
        (project / "parts/a.yaml").read_text() + "  - id: b/coin\n    prompt: other coin\n"
    )
    assert cli("build", "-C", project).code == 2
    assert {path for path in state.rglob("*") if path.is_file()} <= before


def test_a_failed_edit_build_keeps_every_entry_and_the_next_one_finishes(
    cli: Callable[..., Result], make_project: Callable[..., Path], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from tests.flaky_backend import flaky

    project = _project(make_project)
    build_json(cli, project)
    lock = parse_lock((project / "pixelbuild.lock").read_bytes(), "pixelbuild.lock")
    _replace(project, "parts/a.yaml", "prompt: knight", "prompt: red knight")
    _replace(project, "parts/a.yaml", "prompt: slime", "prompt: green slime")
    with monkeypatch.context() as patched:
        _no_full_session(patched)
        result = cli("build", "-C", project, backend_factory=flaky(fail={"a/slime"}))
    assert result.code == 1 and "1 generated, 1 failed" in result.out, result.out + result.err
    raw = (project / "pixelbuild.lock").read_bytes()
    after = parse_lock(raw, "pixelbuild.lock")
    assert raw == render_lock(after)
    assert sorted(after.sprites) == sorted(lock.sprites)  # no entry lost
    assert after.sprites["a/knight"] != lock.sprites["a/knight"] and after.sprites["a/slime"] == lock.sprites["a/slime"]
    document = build_json(cli, project)
    assert (document["generated"], document["up_to_date"]) == (1, 3), document
    _same_as_a_full_build(cli, project, tmp_path)


def test_an_edit_of_a_file_included_by_an_included_file_plans_its_sprites_alone(
    cli: Callable[..., Result], make_project: Callable[..., Path], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    project = make_project(
        ROOT.replace("include: [parts/*.yaml]", "include: [group.yaml, extra.yaml]"),
        {
            "group.yaml": "include: [parts/*.yaml]\ndefaults:\n  size: 48\nsprites:\n  - id: g/bat\n    prompt: bat\n",
            "extra.yaml": "sprites:\n  - id: x/orb\n    prompt: orb\n",
            **PARTS,
        },
    )
    build_json(cli, project)
    _replace(project, "parts/a.yaml", "prompt: knight", "prompt: red knight")
    _replace(project, "extra.yaml", "prompt: orb", "prompt: blue orb")
    with monkeypatch.context() as patched:
        _no_full_session(patched)
        _refuse_full_render(patched)
        document = build_json(cli, project)
    assert (document["generated"], document["up_to_date"]) == (2, 4), document
    # The group's defaults (size 48) reached the edited sprite as a full resolution gives them.
    _same_as_a_full_build(cli, project, tmp_path)


def test_a_lock_changed_after_the_stamp_check_is_read_again_not_spliced_over(
    make_project: Callable[..., Path],
) -> None:
    project = _project(make_project)
    manifest = project / "pixelbuild.yaml"
    assert build(manifest).ok
    _replace(project, "parts/a.yaml", "prompt: knight", "prompt: red knight")
    found = check_for_build(real_manifest_path(str(manifest)))
    assert found is not None and found[1] == ["parts/a.yaml"]
    # Before this build takes the build lock, something else rewrites the lock: b/coin's entry is gone. The
    # bytes the check read are stale now; splicing them would put the entry back unseen.
    lock_path = project / "pixelbuild.lock"
    changed = parse_lock(lock_path.read_bytes(), "pixelbuild.lock")
    del changed.sprites["b/coin"]
    lock_path.write_bytes(render_lock(changed))
    report = build_checked(manifest, found)
    assert report.ok and report.generated == 1 and report.restored == 1  # the full path saw the lock as it is
    assert sorted(parse_lock(lock_path.read_bytes(), "pixelbuild.lock").sprites) == [
        "a/knight",
        "a/slime",
        "b/coin",
        "b/gem",
    ]
