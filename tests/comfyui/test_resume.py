"""GPU time survives a killed build: prompts noted in the ledger are collected by the next build, and a
server that dies mid-build costs only the prompts it held (fake servers on loopback, real subprocesses)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pixelbuild.backends.comfyui.ledger import PromptLedger
from pixelbuild.builder import BuildOptions, build
from pixelbuild.local.layout import ledger_path
from pixelbuild.testing import FakeComfyServer
from tests.comfyui.test_build import SIX, manifest
from tests.conftest import REPO, Result, build_json, snapshot

Factory = Callable[..., FakeComfyServer]


def _prefix(graph: dict[str, Any]) -> str:
    """The SaveImage prefix of a posted graph: ``pixelbuild/<first 16 characters of the generation key>``."""
    (prefix,) = [node["inputs"]["filename_prefix"] for node in graph.values() if node["class_type"] == "SaveImage"]
    return str(prefix)


def _prompts(fake: FakeComfyServer) -> list[str]:
    """The prefix of every prompt the server holds: finished, running and pending (in that order)."""
    graphs = [entry["prompt"][2] for entry in fake.history.values()]
    graphs += [item.prompt for item in ([fake.running] if fake.running else []) + list(fake.queue)]
    return [_prefix(graph) for graph in graphs]


def _start_build(project: Path) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if k != "PIXELBUILD_COMFYUI_URL"}
    env["PYTHONPATH"] = str(REPO)
    command = [sys.executable, "-m", "pixelbuild", "build", "-C", str(project), "--progress", "none"]
    return subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _kill_when_queued(process: subprocess.Popen[bytes], fake: FakeComfyServer, pending: int = 2) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not (fake.running_id() and len(fake.pending_ids()) >= pending):
        assert process.poll() is None, "the build ended before its prompts were queued"
        time.sleep(0.01)
    assert len(fake.pending_ids()) >= pending, "prompts should be queued on the server"
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=10)


def _wait(condition: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not condition():
        time.sleep(0.02)
    assert condition()


def test_sigkilled_build_is_resumed_from_the_server_without_new_prompts(
    cli: Callable[..., Result], make_project: Callable[..., Path], fake_factory: Factory
) -> None:
    fake = fake_factory()
    fake.knobs.image_time = 0.25
    text = manifest([fake.url], SIX, extra_settings="max_in_flight: 3")
    project = make_project(text)
    _kill_when_queued(_start_build(project), fake)
    killed_run = _prompts(fake)  # the process is dead: nothing more arrives
    assert len(killed_run) == fake.accepted >= 3
    ledger = ledger_path(project).read_text().splitlines()
    assert len(ledger) >= len(killed_run)  # every prompt was noted before it was posted
    _wait(lambda: fake.running_id() is None and not fake.pending_ids())  # the server finishes them

    report = build_json(cli, project)
    new = _prompts(fake)[len(killed_run) :]
    assert not set(new) & set(killed_run), "prompts of the killed build were submitted again"
    assert len(new) == 6 - len(set(killed_run)) == fake.accepted - len(killed_run)
    assert report["generator_calls"] == 6 and not report.get("failures")

    # Byte for byte what a build that was never interrupted makes.
    other = fake_factory()
    reference = make_project(manifest([other.url], SIX, extra_settings="max_in_flight: 3"))
    build_json(cli, reference)
    assert other.accepted == 6
    ours, theirs = snapshot(project), snapshot(reference)
    del ours["pixelbuild.yaml"], theirs["pixelbuild.yaml"]  # they name different servers
    assert ours.keys() == theirs.keys() and ours == theirs
    assert ours["pixelbuild.lock"] == theirs["pixelbuild.lock"] and len(ours) == 7
    # Every key settled: the ledger has nothing left to ask about.
    assert PromptLedger(ledger_path(project)).load() == {}
    assert ledger_path(project).read_bytes() == b""


def test_rerun_adopts_prompts_still_queued_and_waits_for_them(
    make_project: Callable[..., Path], fake: FakeComfyServer
) -> None:
    fake.knobs.image_time = 0.25
    project = make_project(manifest([fake.url], SIX, extra_settings="max_in_flight: 3"))
    _kill_when_queued(_start_build(project), fake)
    fake.knobs.hold = True  # the queued prompts stay queued while the rerun looks for them
    killed_run = _prompts(fake)
    _wait(lambda: fake.running_id() is None)
    still_queued = fake.pending_ids()
    assert len(still_queued) >= 2
    polls = fake.requests["GET /queue"]
    reports = []
    runner = threading.Thread(target=lambda: reports.append(build(project / "pixelbuild.yaml", BuildOptions())))
    runner.start()
    _wait(lambda: fake.requests["GET /queue"] >= polls + 2)  # surveyed, and following them
    assert fake.pending_ids()[: len(still_queued)] == still_queued  # not deleted, not duplicated
    fake.release()
    runner.join(timeout=60)
    (report,) = reports
    assert report.ok and report.generator_calls == 6
    new = _prompts(fake)[len(killed_run) :]
    assert not set(new) & set(killed_run)
    assert fake.accepted == len(killed_run) + len(new) == len(set(killed_run) | set(new)) == 6


def test_a_server_killed_mid_build_costs_only_its_in_flight_prompts(fake_factory: Factory, tmp_path: Path) -> None:
    """Every prompt is generated once, but those the dead server held: each is submitted once elsewhere."""
    from collections import Counter

    from pixelbuild.backends.comfyui import create
    from tests.comfyui.util import make_job

    servers = [fake_factory() for _ in range(3)]
    for server, image_time in zip(servers, (0.05, 0.08, 0.1), strict=True):
        server.knobs.image_time = image_time
    doomed = servers[1]
    jobs = [make_job(f"k{n:02d}", seed=n) for n in range(24)]
    settings = {"servers": [s.url for s in servers], "max_in_flight": 2, "retries": 1, "timeout": 5}
    backend = create({**settings, "unavailable_timeout": 5}, tmp_path)
    try:
        backend.start(jobs)
        _wait(lambda: len(doomed.history) >= 2 and doomed.running_id() is not None and bool(doomed.pending_ids()))

        async def kill() -> list[dict[str, Any]]:
            # In the server's own loop, so nothing starts or ends between the count and the kill.
            held = [doomed.running.prompt] if doomed.running else []
            held += [item.prompt for item in doomed.queue]
            await doomed._astop()
            return [entry["prompt"][2] for entry in doomed.history.values()] + held

        on_doomed = [_prefix(graph) for graph in doomed._call(kill())]
        results = {job.key: backend.result(job.key) for job in jobs}
    finally:
        backend.close()
    collected_there = {_prefix_of(key) for key, result in results.items() if result.info["server"] == doomed.url}
    lost = set(on_doomed) - collected_there
    assert 1 <= len(lost) <= 2  # what it held at the kill: K = 2 prompts in flight
    elsewhere = Counter(prefix for server in servers if server is not doomed for prefix in _prompts(server))
    every = {_prefix_of(job.key) for job in jobs}
    assert elsewhere == Counter(every - collected_there)  # the rest, each exactly once (lost ones included)
    assert sum(server.accepted for server in servers) == len(jobs) + len(lost)


def _prefix_of(key: str) -> str:
    return f"pixelbuild/{key[:16]}"
