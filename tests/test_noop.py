"""The no-op fast path must notice every change that matters, and only those."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import xxhash

from pixelbuild.builder import BuildOptions, build
from pixelbuild.local.seal import seal, unseal
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


def never_racy() -> int:
    """A clock so far ahead that no file looks just changed (nothing is racily clean)."""
    return 1 << 62


def always_racy() -> int:
    """A clock at the epoch, against which every file looks just changed (everything is racily clean)."""
    return 0


def built_twice_by_clock(project: Path, clock: Callable[[], int]) -> None:
    """Build, then build again as a no-op, with the stamp and the file-hash cache judged by ``clock``."""
    options = BuildOptions(clock=clock)
    build(project / "pixelbuild.yaml", options)
    assert build(project / "pixelbuild.yaml", options).noop is True


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


def test_failed_build_leaves_no_stamp(cli: Callable[..., Result], make_project: Callable[..., Path]) -> None:
    from tests.flaky_backend import flaky

    project = make_project()
    result = cli("build", "-C", project, backend_factory=flaky(fail={"slime"}, message="the generator broke"))
    assert result.code == 1
    (line,) = [line for line in result.err.splitlines() if line.startswith("FAILED")]  # said once, as it failed
    assert line.split()[1] == "slime:" and line.endswith("pixelbuild.yaml:11: the generator broke")
    assert "FAILED" not in result.out
    assert "2 generated, 1 failed" in result.out
    assert not (project / ".pixelbuild/state/noop.json").exists()
    report = build_json(cli, project)
    assert report["generator_calls"] == 1 and report["up_to_date"] == 2


def test_a_noop_reports_the_same_document_as_a_full_build(
    cli: Callable[..., Result], make_project: Callable[..., Path]
) -> None:
    project = make_project()
    full = build_json(cli, project)
    noop = build_json(cli, project)
    assert noop["noop"] and not full["noop"]
    assert sorted(noop) == sorted(full)  # one rendering: the fast path once lacked "warnings"
    assert noop["up_to_date"] == full["generated"] == 3 and noop["warnings"] == [] and noop["ok"]


def test_cached_resolution_follows_inherited_defaults_and_files(
    cli: Callable[..., Result], make_project: Callable[..., Path]
) -> None:
    project = make_project(
        INCLUDING.replace("defaults: {size: 32}", "defaults: {size: 32, negative_prompt: blurry}"),
        files={"parts/a.yaml": "sprites:\n  - id: a\n    prompt: slime\n  - id: b\n    prompt: bat\n"},
    )
    build_json(cli, project)
    assert list((project / ".pixelbuild/state/resolved").glob("*.json"))
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


def _cp_a(source: Path, target: Path) -> None:
    """``cp -a``: contents, mtimes and modes kept; inodes and ctimes are new."""
    import shutil
    import subprocess

    if shutil.which("cp"):
        subprocess.run(["cp", "-a", str(source), str(target)], check=True)
    else:  # pragma: no cover - non-POSIX
        shutil.copytree(source, target, symlinks=True)


def test_copied_project_verifies_once_and_never_trusts_the_old_stamp(
    cli: Callable[..., Result], make_project: Callable[..., Path]
) -> None:
    project = make_project()
    built_twice(cli, project)
    copy = project.parent / "game2"
    _cp_a(project, copy)
    # Untouched, the copy verifies once (nothing to do), then is a no-op again.
    report = build_json(cli, copy)
    assert report["noop"] is False and report["generator_calls"] == 0 and report["up_to_date"] == 3
    assert build_json(cli, copy)["noop"] is True
    # An edit in a fresh copy is seen by build, build --frozen, plan and check alike.
    edited = project.parent / "game3"
    _cp_a(project, edited)
    manifest = edited / "pixelbuild.yaml"
    manifest.write_text(manifest.read_text().replace("blue knight", "red knight"))
    frozen = cli("build", "-C", edited, "--frozen")
    assert frozen.code == 1 and "hero" in frozen.out + frozen.err
    assert cli("plan", "-C", edited, "--json").json["counts"]["generate"] == 1
    assert cli("check", "-C", edited).code == 1
    report = build_json(cli, edited)
    assert report["noop"] is False and report["generator_calls"] == 1
    assert cli("check", "-C", edited).code == 0
    # The original was never touched by any of it.
    assert build_json(cli, project)["noop"] is True


def test_moved_project_verifies_once(cli: Callable[..., Result], make_project: Callable[..., Path]) -> None:
    project = make_project()
    built_twice(cli, project)
    moved = project.parent / "moved"
    project.rename(moved)
    assert build_json(cli, moved)["noop"] is False
    assert build_json(cli, moved)["noop"] is True


def test_copied_project_with_a_deleted_output_restores_it(
    cli: Callable[..., Result], make_project: Callable[..., Path]
) -> None:
    project = make_project()
    built_twice(cli, project)
    copy = project.parent / "game2"
    _cp_a(project, copy)
    (copy / "assets/hero.png").unlink()
    report = build_json(cli, copy)
    assert report["noop"] is False and report["restored"] == 1
    assert (copy / "assets/hero.png").is_file()


def test_copied_project_with_an_invalid_manifest_is_an_error(
    cli: Callable[..., Result], make_project: Callable[..., Path]
) -> None:
    project = make_project()
    built_twice(cli, project)
    copy = project.parent / "game2"
    _cp_a(project, copy)
    (copy / "pixelbuild.yaml").write_text("version: 1\nsprites:\n  - id: [broken\n")
    for extra in ((), ("--frozen",)):
        result = cli("build", "-C", copy, *extra)
        assert result.code == 2 and "pixelbuild.yaml" in result.err, result


def test_a_manifest_that_does_not_exist_is_an_error_not_a_noop(
    cli: Callable[..., Result], make_project: Callable[..., Path]
) -> None:
    project = make_project()
    built_twice(cli, project)
    result = cli("build", "-C", project, "--manifest", "nope.yaml")
    assert result.code == 2 and "nope.yaml" in result.err and "not found" in result.err
    assert result.out == ""


@pytest.mark.parametrize("racy_window", ["default", "none"])
def test_content_change_with_the_same_size_and_mtime_is_noticed(
    cli: Callable[..., Result], make_project: Callable[..., Path], racy_window: str
) -> None:
    project = make_project()
    if racy_window == "none":
        # Nothing is racily clean: only the signature (ctime, inode) can tell.
        built_twice_by_clock(project, never_racy)
    else:
        built_twice(cli, project)
    output = project / "assets/slime.png"
    before = output.stat()
    data = bytearray(output.read_bytes())
    data[data.index(b"IDAT") + 20] ^= 0x55  # same size, other bytes (and pixels)
    with open(output, "r+b") as handle:  # in place: the inode stays
        handle.write(data)
    os.utime(output, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert (output.stat().st_size, output.stat().st_mtime_ns) == (before.st_size, before.st_mtime_ns)

    plan = cli("plan", "-C", project, "--json").json
    assert plan["counts"]["up-to-date"] == 2, plan
    check = cli("check", "-C", project)
    assert check.code == 1 and "slime" in check.out
    # An edited output is pixelbuild's to replace only with --force (see test_safety_paths.py).
    report = build_json(cli, project, "--force")
    assert report["noop"] is False and report["restored"] == 1 and report["generator_calls"] == 0
    assert cli("check", "-C", project).code == 0
    assert build_json(cli, project)["noop"] is True


def _read_stamp(path: Path) -> Any:
    payload = unseal("stamp", path.name, path.read_bytes())
    assert payload is not None
    return json.loads(payload)


def _write_stamp(path: Path, stamp: Any) -> None:
    """Sealed with this user's key: the checks behind the seal must still refuse what the stamp names."""
    path.write_bytes(seal("stamp", path.name, json.dumps(stamp).encode()))


def test_a_stamp_with_paths_outside_the_project_is_ignored(
    cli: Callable[..., Result], make_project: Callable[..., Path], tmp_path: Path
) -> None:
    project = make_project()
    built_twice(cli, project)
    stamp_path = project / ".pixelbuild/state/noop.json"
    stamp = _read_stamp(stamp_path)
    named = stamp["outputs"]["paths"] + [row[0] for row in stamp["manifests"]]
    assert named and all(not os.path.isabs(path) and ".." not in path for path in named)
    stamp["manifests"][0][0] = "../elsewhere.yaml"
    (tmp_path / "elsewhere.yaml").write_bytes((project / "pixelbuild.yaml").read_bytes())
    _write_stamp(stamp_path, stamp)
    assert build_json(cli, project)["noop"] is False


@pytest.mark.parametrize("tamper", ["output", "glob", "racy"])
def test_a_stamp_naming_paths_outside_its_folders_never_holds(
    cli: Callable[..., Result], make_project: Callable[..., Path], tamper: str
) -> None:
    # Each edit names the very file the stamp named, by a path that climbs out and back in: the stamp
    # would still match, so only the path check can refuse it.
    project = make_project(INCLUDING, files={"parts/a.yaml": "sprites:\n  - id: a\n    prompt: slime\n"})
    built_twice(cli, project)
    stamp_path = project / ".pixelbuild/state/noop.json"
    stamp = _read_stamp(stamp_path)
    if tamper == "output":
        first = stamp["outputs"]["paths"][0]
        stamp["outputs"]["paths"][0] = f"../../{project.name}/{stamp['output']}/{first}"
    elif tamper == "glob":
        stamp["globs"][0][1] = f"../{project.name}/parts/*.yaml"
        stamp["globs"][0][2] = [f"../{project.name}/parts/a.yaml"]
    else:
        digest = xxhash.xxh3_128_hexdigest((project / "pixelbuild.yaml").read_bytes())
        stamp["racy"].append(["outputs", "../pixelbuild.yaml", digest])
    _write_stamp(stamp_path, stamp)
    assert build_json(cli, project)["noop"] is False


def test_racily_clean_files_are_judged_by_their_bytes(
    cli: Callable[..., Result], make_project: Callable[..., Path]
) -> None:
    # Everything counts as just changed: the stamp keeps every file's digest, and the check hashes it.
    project = make_project()
    built_twice_by_clock(project, always_racy)
    stamp_path = project / ".pixelbuild/state/noop.json"
    stamp = _read_stamp(stamp_path)
    racy = {path for group, path, _digest in stamp["racy"] if group == "outputs"}
    assert racy == set(stamp["outputs"]["paths"]) and len(racy) == 3
    # Same stats, other bytes (what a change within one timestamp tick looks like): not a no-op.
    stamp["racy"][-1][2] = "0" * 32
    _write_stamp(stamp_path, stamp)
    assert build_json(cli, project)["noop"] is False
    assert build_json(cli, project)["noop"] is True
