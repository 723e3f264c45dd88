"""The progress display on a real pseudo-terminal: lines above one live bar, each said once, within the width."""

from __future__ import annotations

import fcntl
import os
import re
import select
import struct
import subprocess
import sys
import termios
import time
from collections.abc import Callable
from pathlib import Path

from pixelbuild.progress import BarProgress
from tests.conftest import REPO

# CSI (cursor moves, erase, colours) and OSC sequences, and the other two-byte escapes.
ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[@-Z\\-_]")
IDS = [f"characters/long-named-hero-number-{i}" for i in range(6)]  # 35 characters: tight in 50 columns


def run_in_pty(args: list[str], columns: int, env: dict[str, str], timeout: float = 60) -> tuple[int, str]:
    """Run ``args`` with a pseudo-terminal of ``columns`` x 24 as stdin, stdout and stderr; return the exit
    code and everything it wrote."""
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, columns, 0, 0))
    process = subprocess.Popen(args, stdin=slave, stdout=slave, stderr=slave, env=env, start_new_session=True)
    os.close(slave)
    chunks = []
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.5)
            if not ready:
                if process.poll() is not None:
                    break
                continue
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: the last writer closed the terminal
                break
            if not data:
                break
            chunks.append(data)
    finally:
        os.close(master)
        if process.poll() is None:
            process.kill()
    return process.wait(timeout=10), b"".join(chunks).decode("utf-8", "replace")


def test_bar_on_a_50_column_terminal(make_project: Callable[..., Path]) -> None:
    sprites = "".join(f"  - {{id: {sprite_id}, prompt: hero {n}}}\n" for n, sprite_id in enumerate(IDS))
    project = make_project(
        "version: 1\ndefaults: {size: 32, post: [{resize: {size: 8}}]}\nsprites:\n"
        + sprites
        + "atlases:\n  - {id: heroes, sprites: ['characters/*']}\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "FORCE_COLOR", "PIXELBUILD_DEBUG")}
    env.update(
        PYTHONPATH=str(REPO),
        COLUMNS="50",
        LINES="24",
        TERM="xterm-256color",
        SLOW_GENERATOR_SECONDS="0.15",  # long enough for the bar to be drawn many times
        SLOW_GENERATOR_FAIL=IDS[3],
    )
    command = [sys.executable, str(REPO / "tests/slow_pixelbuild.py"), "build", "-C", str(project)]
    code, output = run_in_pty(command, 50, env)
    assert code == 1, output
    assert "\x1b[" in output  # a terminal display, not plain lines
    pieces = [ANSI.sub("", piece) for piece in re.split(r"\r\n|\n|\r", output)]
    too_wide = [piece for piece in pieces if len(piece) > 50]
    assert not too_wide, too_wide
    for sprite_id in IDS[:3] + IDS[4:]:
        assert pieces.count(f"generated {sprite_id}") == 1, (sprite_id, pieces)
    assert pieces.count("packed atlas heroes") == 0  # a failed member: the atlas fails too
    assert ANSI.sub("", output).count("FAILED") == 2, pieces  # the member and the atlas, once each
    assert sum(1 for piece in pieces if piece.startswith(f"FAILED {IDS[3]}: ")) == 1
    assert any(re.match(r"building .* \d/7 ", piece) for piece in pieces), pieces  # the live bar
    (summary,) = [piece for piece in pieces if " up to date (" in piece]
    assert summary.startswith("5 generated, 2 failed, 0 up to date")


def test_python_m_pixelbuild_in_a_50_column_pty(make_project: Callable[..., Path]) -> None:
    sprites = "".join(f"  - {{id: {sprite_id}, prompt: hero {n}}}\n" for n, sprite_id in enumerate(IDS))
    project = make_project("version: 1\ndefaults: {size: 32, post: [{resize: {size: 8}}]}\nsprites:\n" + sprites)
    env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "FORCE_COLOR", "PIXELBUILD_DEBUG")}
    env.update(PYTHONPATH=str(REPO), COLUMNS="50", LINES="24", TERM="xterm-256color")
    code, output = run_in_pty([sys.executable, "-m", "pixelbuild", "build", "-C", str(project)], 50, env)
    assert code == 0, output
    pieces = [ANSI.sub("", piece) for piece in re.split(r"\r\n|\n|\r", output)]
    assert all(len(piece) <= 50 for piece in pieces), pieces
    assert [piece for piece in pieces if piece.startswith("generated ")] == [f"generated {i}" for i in IDS]
    assert sum(1 for piece in pieces if piece.startswith("6 generated, 0 up to date (")) == 1


def test_bar_label_shows_what_runs_now() -> None:
    import io

    progress = BarProgress(io.StringIO())
    progress.working("a", "generating")
    progress.working("b", "generating")
    assert progress._label() == "generating b (+1)"
    progress.working("a", "post-processing")
    assert progress._label() == "post-processing a (+1)"
    progress.done("a", "generate")
    assert progress._label() == "generating b"
    progress.failed("b", "broke")
    assert progress._label() == ""
