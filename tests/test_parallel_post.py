"""Post-processing in chunks (one worker call and one journal write per chunk) keeps every sprite's own
outcome: failures stay per sprite, a killed build loses only unjournaled work, and -j does not change a byte."""

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

from pixelbuild.errors import PostError
from pixelbuild.execute import orchestrate, worker
from pixelbuild.fsguard import OutputGuard
from pixelbuild.hashing import hash_bytes
from pixelbuild.local.journal import read_journal
from pixelbuild.lock import LockEntry
from tests.conftest import REPO, Result, build_json, snapshot

SPRITES = 24  # enough for worker processes at -j 2 (worker.MIN_TASKS_FOR_PROCESSES) and several chunks


def manifest(post: str, overrides: dict[int, str] | None = None) -> str:
    """``SPRITES`` small sprites sharing the ``post`` chain (a YAML flow list); ``overrides`` by index."""
    overrides = overrides or {}
    lines = ["version: 1", "defaults:", "  size: 32", f"  post: {post}", "sprites:"]
    for i in range(SPRITES):
        lines.append(f"  - id: s{i:02d}\n    prompt: creature number {i}")
        if i in overrides:
            lines.append(f"    post: {overrides[i]}")
    return "\n".join(lines) + "\n"


FIRST = "[{resize: {size: 16}}]"
SECOND = "[{palette: {colors: 4}}, {outline: {color: '#102030'}}]"
EMPTYING = "[{remove_background: {mode: key, tolerance: 255}}]"


def test_chunk_sizes_cover_every_sprite_and_shrink_towards_the_end() -> None:
    for count in (0, 1, 7, 24, 100, 1000):
        for workers in (1, 2, 4):
            sizes = orchestrate.chunk_sizes(count, workers)
            assert sum(sizes) == count and all(1 <= size <= orchestrate.CHUNK_MAX for size in sizes)
            assert sizes == sorted(sizes, reverse=True)
    assert orchestrate.chunk_sizes(1000, 2)[0] == orchestrate.CHUNK_MAX and orchestrate.chunk_sizes(1000, 2)[-1] == 1


class _Unpicklable(Exception):
    def __init__(self, a: str, b: str) -> None:  # two required arguments: unpickling calls cls(*args)
        super().__init__(a)
        self.b = b


def test_a_batch_returns_each_jobs_outcome_in_place() -> None:
    def fake(job: worker.PostJob) -> worker.Rendered:
        if job.post_key == "empty":
            raise PostError("pixelate left no visible pixel")
        if job.post_key == "odd":
            raise _Unpicklable("odd", "b")
        return worker.Rendered(job.post_key, "pixels", 1, 1, {})

    guard = OutputGuard("/nonexistent")
    jobs = [worker.PostJob("store", (), (), {}, "project", key, guard, "x.png") for key in ("a", "empty", "b", "odd")]
    results = worker.post_process_batch(jobs, fake)
    assert [r.file_hash for r in results if isinstance(r, worker.Rendered)] == ["a", "b"]
    assert isinstance(results[1], worker.PostFailure) and isinstance(results[1].error, PostError)
    # Not one of ours: sent back as text (it might not pickle, and would take the whole batch with it).
    assert isinstance(results[3], worker.PostFailure) and results[3].error is None
    assert results[3].detail.endswith("_Unpicklable: odd") and "in fake" in results[3].trace
    import pickle

    assert pickle.loads(pickle.dumps(results))[1].error.message == "pixelate left no visible pixel"


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_a_failing_sprite_fails_alone_in_its_chunk(
    cli: Callable[..., Result], make_project: Callable[..., Path], jobs: str
) -> None:
    project = make_project(manifest(FIRST))
    build_json(cli, project, "-j", jobs)
    first_lock = json.loads((project / "pixelbuild.lock").read_text())
    (project / "pixelbuild.yaml").write_text(manifest(SECOND, {1: EMPTYING, 4: EMPTYING, 17: EMPTYING}))
    result = cli("build", "-C", project, "--json", "-j", jobs)
    assert result.code == 1, result.out + result.err
    report = result.json
    assert sorted(report["failures"]) == ["s01", "s04", "s17"]  # s01, s04 share chunks with sound ones
    for message in report["failures"].values():
        assert "remove_background left no visible pixel" in message and "pixelbuild.yaml:" in message
    assert report["post_processed"] == SPRITES - 3
    lock = json.loads((project / "pixelbuild.lock").read_text())
    for sprite_id, entry in lock["sprites"].items():
        changed = entry["post_key"] != first_lock["sprites"][sprite_id]["post_key"]
        assert changed == (sprite_id not in report["failures"]), sprite_id  # failed ones keep their old entry


def test_outputs_and_lock_are_identical_whatever_the_jobs(
    cli: Callable[..., Result], make_project: Callable[..., Path]
) -> None:
    projects = {jobs: make_project(manifest(FIRST)) for jobs in ("1", "2")}
    for step, (chain, counted) in enumerate([(FIRST, "generated"), (SECOND, "post_processed"), (FIRST, "restored")]):
        for jobs, project in projects.items():
            (project / "pixelbuild.yaml").write_text(manifest(chain))
            assert build_json(cli, project, "-j", jobs)[counted] == SPRITES, (step, jobs)
        assert snapshot(projects["1"]) == snapshot(projects["2"]), step


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_a_build_killed_mid_chunk_keeps_every_journaled_sprite(
    cli: Callable[..., Result], make_project: Callable[..., Path]
) -> None:
    project = make_project(manifest(FIRST))
    build_json(cli, project)
    (project / "pixelbuild.yaml").write_text(manifest(SECOND))
    journal = project / ".pixelbuild" / "journal.jsonl"
    env = dict(os.environ, SLOW_POST_SECONDS="0.1", PYTHONPATH=str(REPO))
    script = str(REPO / "tests" / "slow_pixelbuild.py")
    process = subprocess.Popen(
        [sys.executable, script, "build", "-C", str(project), "--progress", "none", "-j", "2"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 30
        while not read_journal(journal):
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline, "the build journaled nothing"
            time.sleep(0.01)
        process.send_signal(signal.SIGKILL)
        process.wait()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    records = read_journal(journal)
    journaled: dict[str, LockEntry] = {record["id"]: record["entry"] for record in records}
    assert 1 <= len(journaled) < SPRITES and len(journaled) == len(records)
    for entry in journaled.values():  # each journaled sprite's file is whole and is the one recorded
        output = entry.outputs[0]
        assert hash_bytes((project / "assets" / output.path).read_bytes()) == output.file_hash

    report = build_json(cli, project, "-j", "2")
    # Journaled work is kept; only the rest is done again. A sprite a worker finished but the build did
    # not journal yet comes back from the post cache.
    assert report["generator_calls"] == 0
    assert report["post_processed"] + report["restored"] == SPRITES - len(journaled), report
    lock = json.loads((project / "pixelbuild.lock").read_text())
    assert sorted(lock["sprites"]) == [f"s{i:02d}" for i in range(SPRITES)]
    for sprite_id, entry in journaled.items():
        assert lock["sprites"][sprite_id] == entry.to_json()
    assert cli("check", "-C", project).code == 0


def test_a_bug_in_one_sprite_is_reported_with_its_traceback(
    cli: Callable[..., Result], make_project: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    project = make_project(manifest(FIRST))
    build_json(cli, project)
    real = worker.post_process

    def buggy(job: worker.PostJob) -> worker.Rendered:
        if job.output == "s05.png":
            raise ZeroDivisionError("division by zero")
        return real(job)

    monkeypatch.setattr(worker, "post_process", buggy)  # -j 1: batches run in this process
    (project / "pixelbuild.yaml").write_text(manifest(SECOND))
    result = cli("build", "-C", project, "--json", "-j", "1")
    assert result.code == 1
    report = result.json
    assert list(report["failures"]) == ["s05"] and report["post_processed"] == SPRITES - 1
    assert report["failures"]["s05"].startswith("internal error (ZeroDivisionError: division by zero); this is a bug.")
