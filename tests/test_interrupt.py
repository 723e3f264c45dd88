"""Killed or interrupted builds keep finished work; the rerun does only the rest."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPO, Result, build_json

SPRITES = 10
MANIFEST = "version: 1\ndefaults: {size: 32}\nsprites:\n" + "".join(
    f"  - id: s{i}\n    prompt: creature number {i}\n" for i in range(SPRITES)
)


def start_slow_build(project: Path, *extra: str) -> subprocess.Popen[bytes]:
    env = dict(os.environ, SLOW_GENERATOR_SECONDS="0.15", PYTHONPATH=str(REPO))
    script = str(REPO / "tests" / "slow_pixelbuild.py")
    return subprocess.Popen(
        [sys.executable, script, "build", "-C", str(project), "--progress", "none", *extra],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def wait_for_journal_lines(project: Path, count: int, process: subprocess.Popen[bytes]) -> None:
    journal = project / ".pixelbuild" / "journal.jsonl"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if journal.exists() and journal.read_text().count("\n") >= count:
            return
        assert process.poll() is None, process.communicate()
        time.sleep(0.02)
    raise AssertionError("the build did not progress")


def cached_generations(project: Path) -> int:
    return len(list((project / ".pixelbuild/cache/actions/gen").glob("*/*.json")))


def test_killed_build_resumes_with_only_the_unfinished_work(
    cli: Callable[..., Result], make_project: Callable[..., Path]
) -> None:
    project = make_project(MANIFEST)
    process = start_slow_build(project)
    wait_for_journal_lines(project, 3, process)
    process.send_signal(signal.SIGKILL)
    process.wait()
    # The lock on disk is whole (here: not written yet), the journal holds the finished sprites.
    assert not (project / "pixelbuild.lock").exists()
    journal = (project / ".pixelbuild/journal.jsonl").read_text().splitlines()
    finished = [json.loads(line)["id"] for line in journal if line.endswith("}")]
    assert len(finished) >= 3
    already_generated = cached_generations(project)
    assert already_generated < SPRITES
    # No half-written file anywhere in the output root.
    leftovers = [p for p in (project / "assets").rglob("*") if p.name.startswith(".pixelbuild-tmp")]
    assert leftovers == []

    report = build_json(cli, project)
    assert report["generator_calls"] == SPRITES - already_generated
    lock = json.loads((project / "pixelbuild.lock").read_text())
    assert sorted(lock["sprites"]) == sorted(f"s{i}" for i in range(SPRITES))
    assert not (project / ".pixelbuild/journal.jsonl").exists()
    assert cli("check", "-C", project).code == 0


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_ctrl_c_folds_finished_work_into_the_lock(make_project: Callable[..., Path]) -> None:
    project = make_project(MANIFEST)
    process = start_slow_build(project)
    wait_for_journal_lines(project, 2, process)
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=30)
    assert process.returncode == 130, err.decode()
    assert b"interrupted" in out + err
    assert b"Traceback" not in err
    lock = json.loads((project / "pixelbuild.lock").read_text())
    assert len(lock["sprites"]) >= 2
    assert not (project / ".pixelbuild/journal.jsonl").exists()
    for entry in lock["sprites"].values():
        assert (project / "assets" / entry["outputs"][0]["path"]).is_file()


def _children(pid: int) -> list[int]:
    """Processes whose parent is ``pid`` (Linux /proc)."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = (Path("/proc") / entry / "stat").read_text()
            except OSError:
                continue
            # "pid (comm) state ppid ...": comm may hold spaces, so split after its closing parenthesis.
            if int(stat.rpartition(")")[2].split()[1]) == pid:
                found.append(int(entry))
    return found


def _alive(pid: int) -> bool:
    """Running (a zombie waiting for a reaper is not)."""
    try:
        return (Path("/proc") / str(pid) / "stat").read_text().rpartition(")")[2].split()[0] != "Z"
    except OSError:
        return False


def _read_to_eof(stream: Any, seconds: float) -> bytes | None:
    """What ``stream`` holds once it reaches end of file (no process holds it open any more), or None if
    that takes more than ``seconds``."""
    import threading

    read: list[bytes] = []
    reader = threading.Thread(target=lambda: read.append(stream.read()), daemon=True)
    reader.start()
    reader.join(seconds)
    return read[0] if read else None


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
@pytest.mark.parametrize("stop", [signal.SIGKILL, signal.SIGTERM], ids=["SIGKILL", "SIGTERM"])
def test_workers_end_with_the_build_process(make_project: Callable[..., Path], stop: signal.Signals) -> None:
    """-j 2 workers never outlive the build process; SIGTERM exits 143 with the journal folded."""
    project = make_project(MANIFEST)
    process = start_slow_build(project, "-j", "2")
    workers: list[int] = []
    try:
        wait_for_journal_lines(project, 1, process)
        deadline = time.monotonic() + 30  # bounds a hang only
        while len(workers) < 2 and time.monotonic() < deadline:
            workers = _children(process.pid)
            time.sleep(0.05)
        assert len(workers) >= 2, "the -j 2 build started no worker processes"
        process.send_signal(stop)
        assert process.wait(timeout=30) == (-signal.SIGKILL if stop == signal.SIGKILL else 143)
        # The caller's pipes close: nothing that outlived the build holds them.
        out, err = _read_to_eof(process.stdout, 10), _read_to_eof(process.stderr, 10)
        assert out is not None and err is not None
        deadline = time.monotonic() + 30  # bounds a hang only
        while any(_alive(pid) for pid in workers) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not any(_alive(pid) for pid in workers)
        if stop == signal.SIGTERM:  # stopped as for Ctrl-C: finished work folded into the lock
            assert b"interrupted" in out + err and b"Traceback" not in err, err.decode()
            lock = json.loads((project / "pixelbuild.lock").read_text())
            assert len(lock["sprites"]) >= 1
            assert not (project / ".pixelbuild/journal.jsonl").exists()
    finally:
        for pid in workers:  # never leak a worker into the rest of the test run
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
        if process.poll() is None:
            process.kill()
            process.wait()


def test_check_and_plan_agree_after_a_killed_incremental_build(
    cli: Callable[..., Result], make_project: Callable[..., Path]
) -> None:
    project = make_project(MANIFEST)
    build_json(cli, project)
    manifest = project / "pixelbuild.yaml"
    manifest.write_text(manifest.read_text().replace("creature number", "monster number"))
    process = start_slow_build(project)
    wait_for_journal_lines(project, 3, process)
    process.send_signal(signal.SIGKILL)
    process.wait()
    journaled = {json.loads(line)["id"] for line in (project / ".pixelbuild/journal.jsonl").read_text().splitlines()}
    assert 3 <= len(journaled) < SPRITES

    assert "note: an interrupted build's finished work" in cli("plan", "-C", project).out
    plan = cli("plan", "-C", project, "--json").json
    to_generate = {s["id"] for s in plan["sprites"] if s["action"] != "up-to-date"}
    assert to_generate == {f"s{i}" for i in range(SPRITES)} - journaled
    check = cli("check", "-C", project, "--json")
    assert check.code == 1
    problems = check.json["problems"]
    stale = {p["subject"] for p in problems if p["kind"] != "journal"}
    assert stale == to_generate, problems
    assert [p["kind"] for p in problems].count("journal") == 1
    from tests.test_json_schemas import _errors

    assert _errors("check", check.json) == []
    assert (project / ".pixelbuild/journal.jsonl").exists()  # check never folds (never writes)
    report = build_json(cli, project)
    assert report["generator_calls"] == len(to_generate)
    assert cli("check", "-C", project).code == 0
