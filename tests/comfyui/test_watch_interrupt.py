"""Ctrl-C during a ``watch`` build takes our prompts back from the server, exactly as ``build`` does."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from pixelbuild.testing.fakecomfy import FakeComfyServer
from tests.comfyui.test_build import SIX, manifest
from tests.conftest import REPO

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")


@pytest.mark.parametrize(("stop", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_interrupting_a_watch_build_withdraws_queued_prompts(
    make_project: Callable[..., Path], fake: FakeComfyServer, stop: signal.Signals, code: int
) -> None:
    fake.knobs.image_time = 0.5
    project = make_project(manifest([fake.url], SIX, extra_settings="max_in_flight: 3"))
    env = {k: v for k, v in os.environ.items() if k != "PIXELBUILD_COMFYUI_URL"}
    env["PYTHONPATH"] = str(REPO)
    process = subprocess.Popen(
        [sys.executable, "-m", "pixelbuild", "watch", "-C", str(project), "--progress", "none"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not (fake.running_id() and fake.pending_ids()):
        assert process.poll() is None, process.communicate()
        time.sleep(0.02)
    assert fake.pending_ids(), "prompts should be queued on the server"
    process.send_signal(stop)
    out, err = process.communicate(timeout=30)
    assert process.returncode == code, err.decode()
    assert b"Traceback" not in err
    assert b"interrupted: finished sprites are in the lock" in out
    assert fake.pending_ids() == []
    deadline = time.monotonic() + 30  # a bound for a hang only: an interrupt lands at the next sampler step
    while time.monotonic() < deadline and fake.running_id() is not None:
        time.sleep(0.02)
    assert fake.running_id() is None
    assert fake.deleted
