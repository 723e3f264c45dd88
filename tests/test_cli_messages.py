"""Exit codes, ``--json`` on errors, options before the command, counts and wording, as documented."""

from __future__ import annotations

import errno
import json
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import BASIC_MANIFEST, Result, build_json
from tests.flaky_backend import flaky

ERROR_KEYS = {"kind", "message", "exit_code", "file", "line", "sprite", "field"}
KINDS = {1: "failed", 2: "bad_input", 3: "unavailable", 130: "interrupted"}

ATLAS_MANIFEST = """\
version: 1
defaults: {size: 32, post: [{resize: {size: 8}}]}
sprites:
  - {id: heroes/knight, prompt: blue knight}
  - {id: heroes/wizard, prompt: purple wizard}
  - {id: heroes/rogue, prompt: green rogue}
atlases:
  - id: heroes
    sprites: ["heroes/*"]
"""


def error_of(result: Result, code: int) -> dict[str, Any]:
    """The ``error`` object of a ``--json`` answer, checked against the documented shape."""
    assert result.code == code, result.out + result.err
    document = json.loads(result.out)
    assert document["ok"] is False
    error: dict[str, Any] = document["error"]
    assert set(error) == ERROR_KEYS
    assert error["exit_code"] == code and error["kind"] == KINDS[code]
    assert "\n" not in error["message"] and "Traceback" not in error["message"]
    return error


# ------------------------------------------------------------------------------------------ exit codes


def test_missing_folder_is_bad_input(cli: Callable[..., Result], tmp_path: Path) -> None:
    for command in ("build", "plan", "check", "validate", "gc"):
        result = cli(command, "-C", tmp_path / "nonexistent")
        assert result.code == 2, (command, result.err)
        assert result.err == f"pixelbuild: error: -C {tmp_path / 'nonexistent'}: no such folder\n"
    (tmp_path / "file").write_text("")
    assert "not a folder" in cli("build", "-C", tmp_path / "file").err


@pytest.mark.parametrize("days", ["-5", "nan", "inf", "soon"])
def test_gc_keep_days_must_be_a_number_of_days(
    cli: Callable[..., Result], make_project: Callable[..., Path], days: str
) -> None:
    project = make_project()
    result = cli("gc", "-C", project, "--keep-days", days)
    assert result.code == 2
    assert result.err.startswith("usage: pixelbuild gc") and "--keep-days" in result.err
    assert "Traceback" not in result.err
    assert cli("gc", "-C", project, "--keep-days", "1.5").code == 0


# ------------------------------------------------------------------------------- options before command


def test_global_options_work_before_the_command(
    cli: Callable[..., Result], make_project: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    project = make_project()
    (project / "other.yaml").write_text(BASIC_MANIFEST.replace("  - id: hero\n    prompt: blue knight\n", ""))
    result = cli("-C", project, "--json", "build")
    assert result.code == 0, result.err
    assert result.json["generated"] == 3
    assert cli("-C", project, "plan").out == "nothing to do: 3 up to date\n"
    assert cli("--json", "-C", project, "validate").json == {"ok": True, "sprites": 3, "files": 1}
    assert cli("-C", project, "--manifest", "other.yaml", "validate").out == "ok: 2 sprites in 1 file\n"
    # After the command, as before; given on both sides, the later one wins.
    assert cli("-C", project / "nowhere", "validate", "-C", project).code == 0
    monkeypatch.chdir(project)
    assert cli("--manifest", "other.yaml", "validate").out == "ok: 2 sprites in 1 file\n"


# ------------------------------------------------------------------------------------ --json on errors


def test_json_errors_for_every_command(
    cli: Callable[..., Result], make_project: Callable[..., Path], tmp_path: Path
) -> None:
    for command in ("build", "plan", "check", "validate", "gc"):
        error = error_of(cli(command, "--json", "-C", tmp_path / "nowhere"), 2)
        assert error["message"] == f"-C {tmp_path / 'nowhere'}: no such folder"

    project = make_project(BASIC_MANIFEST.replace("    seed: 7\n", "    seed: 7\n    negative_promt: x\n"))
    for command in ("build", "plan", "check", "validate"):
        result = cli(command, "-C", project, "--json")
        error = error_of(result, 2)
        assert error["file"] == str(project / "pixelbuild.yaml")
        assert (error["line"], error["sprite"], error["field"]) == (14, "slime", "negative_promt")
        assert "did you mean 'negative_prompt'" in error["message"]
        assert result.err == f"pixelbuild: error: {error['message']}\n"  # the same paragraph for people


def test_json_usage_errors(cli: Callable[..., Result], make_project: Callable[..., Path]) -> None:
    project = make_project()
    for args in (
        ("--json", "gc", "--keep-days", "-5"),
        ("--json", "frobnicate"),
        ("build", "-C", project, "--json", "--jobs", "many"),
        ("plan", "--json", "--bogus"),
        ("--json",),
    ):
        error = error_of(cli(*args), 2)
        assert "--help" in error["message"]
    error = error_of(cli("build", "-C", project, "--json", "-j", "0"), 2)
    assert error["message"] == "-j must be at least 1, got 0"


def test_json_for_failed_build_check_and_frozen(cli: Callable[..., Result], make_project: Callable[..., Path]) -> None:
    project = make_project()
    frozen = error_of(cli("build", "-C", project, "--json", "--frozen"), 1)
    assert frozen["message"].startswith("--frozen: 3 sprite(s) would need the generator")

    check = cli("check", "-C", project, "--json")
    error = error_of(check, 1)
    assert error["message"] == "3 problems: 'pixelbuild build' fixes them, then commit the lock and assets"
    assert [p["kind"] for p in check.json["problems"]] == ["unlocked"] * 3

    result = cli("build", "-C", project, "--json", backend_factory=flaky(fail={"slime"}))
    error = error_of(result, 1)
    assert error["message"] == "1 failed: slime"
    assert result.json["generated"] == 2 and list(result.json["failures"]) == ["slime"]


# ------------------------------------------------------------------------------------------- disk full


def fill_disk_after(monkeypatch: pytest.MonkeyPatch, writes: int, code: int = errno.ENOSPC) -> list[int]:
    """Make every atomic write (the temp file of ``fsutil``) after the first ``writes`` fail with ``code``."""
    from pixelbuild.names import TEMP_PREFIX

    real_open = os.open
    count = [0]

    def open_(path: Any, flags: int, mode: int = 0o777, *args: Any, **kwargs: Any) -> int:
        if TEMP_PREFIX in os.fspath(path):
            count[0] += 1
            if count[0] > writes:
                raise OSError(code, os.strerror(code))
        return real_open(path, flags, mode, *args, **kwargs)

    monkeypatch.setattr(os, "open", open_)
    return count


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EDQUOT])
def test_disk_full_mid_build_is_a_clear_error_and_keeps_finished_work(
    cli: Callable[..., Result], make_project: Callable[..., Path], monkeypatch: pytest.MonkeyPatch, code: int
) -> None:
    sprites = "".join(f"  - {{id: s{i}, prompt: thing {i}}}\n" for i in range(8))
    project = make_project("version: 1\ndefaults: {size: 32, post: [{resize: {size: 8}}]}\nsprites:\n" + sprites)
    with monkeypatch.context() as patch:
        fill_disk_after(patch, 12, code)  # a few sprites' cache entries and outputs, then nothing
        result = cli("build", "-C", project)
    assert result.code == 1, result.err
    what = "no space left on device" if code == errno.ENOSPC else "disk quota exceeded"
    (line,) = result.err.splitlines()[-1:]
    assert line.startswith(f"pixelbuild: error: {what} at {project}") and "free some space" in line
    assert "internal error" not in result.err and "Traceback" not in result.err
    assert "FAILED" not in result.err + result.out  # nothing failed: the build stopped
    # The lock could not be written either: the journal holds what finished.
    journal = project / ".pixelbuild/journal.jsonl"
    finished = {json.loads(line)["id"] for line in journal.read_text().splitlines()}
    assert finished and len(finished) < 8 and not (project / "pixelbuild.lock").exists()
    assert result.out.startswith(f"{len(finished)} generated, 0 up to date (")  # what was done, still said

    again = build_json(cli, project)  # space freed
    assert again["up_to_date"] == len(finished) and again["generator_calls"] <= 8 - len(finished)
    assert sorted(json.loads((project / "pixelbuild.lock").read_text())["sprites"]) == [f"s{i}" for i in range(8)]
    assert cli("check", "-C", project).code == 0


def test_disk_full_json(
    cli: Callable[..., Result], make_project: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    project = make_project()
    fill_disk_after(monkeypatch, 2)
    result = cli("build", "-C", project, "--json")
    error = error_of(result, 1)
    assert error["message"].startswith(f"no space left on device at {project}")


def test_a_file_system_refusal_is_a_failure_not_a_bug(
    cli: Callable[..., Result], make_project: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    from pixelbuild.names import TEMP_PREFIX

    project = make_project()
    build_json(cli, project)
    manifest = project / "pixelbuild.yaml"
    manifest.write_text(manifest.read_text().replace("green slime", "red slime"))
    real_open = os.open

    def read_only(path: Any, flags: int, mode: int = 0o777, *args: Any, **kwargs: Any) -> int:
        # An output's temporary file: opened in its folder (dir_fd), or by its path on other systems.
        name = os.fspath(path)
        if TEMP_PREFIX in name and ("dir_fd" in kwargs or f"{os.sep}assets{os.sep}" in name):
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), name)
        return real_open(path, flags, mode, *args, **kwargs)

    monkeypatch.setattr(os, "open", read_only)
    result = cli("build", "-C", project)
    assert result.code == 1
    (line,) = [line for line in result.err.splitlines() if line.startswith("FAILED")]
    assert re.fullmatch(rf"FAILED +slime: Permission denied: {re.escape(str(project))}/assets/slime\.png", line), line
    assert "internal error" not in result.err


def test_disk_full_while_journaling_names_the_journal(tmp_path: Path) -> None:
    from pixelbuild.errors import DiskFull
    from pixelbuild.local.journal import Journal

    journal = Journal(tmp_path / "journal.jsonl")
    journal.record_remove("a")

    class Full:
        closed = False

        def write(self, text: str) -> int:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

        def close(self) -> None:
            self.closed = True

    full = Full()
    journal._handle = full  # type: ignore[assignment]
    with pytest.raises(DiskFull) as caught:
        journal.record_remove("b")
    assert str(caught.value).startswith(f"no space left on device at {tmp_path / 'journal.jsonl'};")
    assert full.closed and journal._handle is None  # its torn line is never flushed later
    journal.record_remove("c")  # space again: the journal goes on, on a fresh handle
    journal.close()
    assert [json.loads(line)["id"] for line in (tmp_path / "journal.jsonl").read_text().splitlines()] == ["a", "c"]


# ---------------------------------------------------------------------------------------------- counts


def test_plan_and_build_count_up_to_date_atlases_alike(
    cli: Callable[..., Result], make_project: Callable[..., Path]
) -> None:
    project = make_project(ATLAS_MANIFEST)
    assert cli("build", "-C", project).out.startswith("3 generated, 1 packed, 0 up to date (")
    assert cli("plan", "-C", project).out == "nothing to do: 4 up to date\n"
    assert cli("build", "-C", project).out.startswith("0 generated, 4 up to date (")  # the no-op path
    (project / ".pixelbuild/state/noop.json").unlink()
    assert cli("build", "-C", project).out.startswith("0 generated, 4 up to date (")  # the full path
    manifest = project / "pixelbuild.yaml"
    manifest.write_text(manifest.read_text().replace("green rogue", "red rogue"))
    assert cli("plan", "-C", project).out.endswith("1 to generate, 1 to pack, 2 up to date\n")
    assert cli("build", "-C", project).out.startswith("1 generated, 1 packed, 2 up to date (")


# --------------------------------------------------------------------------------------------- wording


def test_failed_lines_are_said_once(cli: Callable[..., Result], make_project: Callable[..., Path]) -> None:
    broken = flaky(fail={"slime"}, message="the generator broke\nin two lines")
    for progress, stream in (("lines", "err"), ("none", "out")):
        project = make_project()
        result = cli("build", "-C", project, "--progress", progress, backend_factory=broken)
        assert result.code == 1
        failed = [line for line in (result.out + result.err).splitlines() if "FAILED" in line]
        assert len(failed) == 1, (progress, result)
        assert failed[0] in getattr(result, stream)
        assert failed[0].endswith("the generator broke in two lines")  # one paragraph


def test_check_advice_fits_each_problem(cli: Callable[..., Result], make_project: Callable[..., Path]) -> None:
    project = make_project()
    build_json(cli, project)
    (project / "assets/stray.png").write_bytes(b"x")
    result = cli("check", "-C", project)
    assert result.code == 1
    assert result.out.splitlines() == [
        "orphan    assets/stray.png: is in the output root but no sprite makes it; "
        "delete it, or add it (or a pattern) to project.keep",
        "1 problem: delete the orphan file or add it to project.keep",
    ]
    (project / "assets/hero.png").unlink()
    manifest = project / "pixelbuild.yaml"
    manifest.write_text(manifest.read_text().replace("green slime", "red slime"))
    lines = cli("check", "-C", project).out.splitlines()
    assert lines[0] == (
        "missing   hero: output assets/hero.png is missing; run 'pixelbuild build' to write it again, then commit it"
    )
    assert lines[1] == (
        "stale     slime: the lock entry is out of date: prompt changed; "
        "run 'pixelbuild build', then commit the lock and assets"
    )
    assert lines[-1] == (
        "3 problems: 'pixelbuild build' fixes 2 of them, then commit the lock and assets; "
        "delete the orphan file or add it to project.keep"
    )
    (project / "assets/items/coin.png").write_bytes(b"edited by hand")
    lines = cli("check", "-C", project).out.splitlines()
    assert (
        "modified  items/coin: output assets/items/coin.png is modified (its bytes and pixels differ from the "
        "lock); revert the edit, or run 'pixelbuild build --force' to write the built file over it"
    ) in lines
    assert lines[-1] == (
        "4 problems: 'pixelbuild build' fixes 2 of them, then commit the lock and assets; revert the edited output "
        "or replace it with 'pixelbuild build --force'; delete the orphan file or add it to project.keep"
    )


def test_plan_names_atlas_members_in_proper_english(
    cli: Callable[..., Result], make_project: Callable[..., Path]
) -> None:
    project = make_project(ATLAS_MANIFEST)
    build_json(cli, project)
    manifest = project / "pixelbuild.yaml"
    text = manifest.read_text()
    manifest.write_text(text.replace('["heroes/*"]', "[heroes/knight, heroes/wizard]").replace("purple", "pink"))
    assert "pack        atlas heroes   member heroes/rogue removed; member heroes/wizard changed\n" in (
        cli("plan", "-C", project).out
    )
    manifest.write_text(text.replace("blue", "red").replace("purple", "pink"))
    assert "members heroes/knight, heroes/wizard changed\n" in cli("plan", "-C", project).out


def test_plan_after_a_crash_names_the_changed_member(
    cli: Callable[..., Result], make_project: Callable[..., Path]
) -> None:
    project = make_project(ATLAS_MANIFEST)
    build_json(cli, project)
    lock_path = project / "pixelbuild.lock"
    committed = lock_path.read_bytes()
    old_atlas = {path: path.read_bytes() for path in (project / "assets/atlases").iterdir()}
    manifest = project / "pixelbuild.yaml"
    manifest.write_text(manifest.read_text().replace("green rogue", "red rogue"))
    build_json(cli, project)
    # The state a SIGKILL leaves between journaling the member and packing the atlas: the old lock, the
    # old atlas files, and a journal holding the member's new entry.
    entry = json.loads(lock_path.read_text())["sprites"]["heroes/rogue"]
    lock_path.write_bytes(committed)
    for path, data in old_atlas.items():
        path.write_bytes(data)
    record = {"op": "set", "id": "heroes/rogue", "entry": entry}
    (project / ".pixelbuild/journal.jsonl").write_text(json.dumps(record) + "\n")
    out = cli("plan", "-C", project).out
    assert out.splitlines()[0].endswith("atlas heroes  member heroes/rogue changed"), out
