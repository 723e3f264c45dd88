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

import pytest

from tests.conftest import REPO, Result, build_json

SPRITES = 10
MANIFEST = "version: 1\ndefaults: {size: 32}\nsprites:\n" + "".join(
    f"  - id: s{i}\n    prompt: creature number {i}\n" for i in range(SPRITES)
)


def start_slow_build(project: Path) -> subprocess.Popen[bytes]:
    env = dict(os.environ, SLOW_GENERATOR_SECONDS="0.15", PYTHONPATH=str(REPO))
    return subprocess.Popen(
        [sys.executable, str(REPO / "tests" / "slow_pixelbuild.py"), "build", "-C", str(project), "--progress", "none"],
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
