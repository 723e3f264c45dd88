"""Kill-point and disk-full campaigns: real ``pixelbuild build`` processes (``-j 1`` and ``-j 2``) on a small
project with an incremental change (edits, a removal, a move, new sprites, an atlas), killed with SIGKILL at
seeded random times, or run on a nearly full file system.

After every kill: the lock parses and is valid; every lock entry's outputs match their files or ``check``
names the sprite; no temporary file is left outside the output root and the state folder; nothing is
written outside the project; the killed process's workers exit (its pipes close) within a bound; a rerun
converges (exit 0, then ``check`` exit 0) within a bound.

Bounded by default (``--kill-points``, 4 kills); ``pytest tests/test_kill_campaign.py --kill-points 40 -s``
runs a longer campaign and prints its figures, ``--kill-seed`` another one.
"""

from __future__ import annotations

import collections
import contextlib
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pixelbuild.local.filehashes import file_digest
from pixelbuild.local.journal import read_journal
from pixelbuild.lock import apply_journal, read_lock
from pixelbuild.names import TEMP_PREFIX
from tests.conftest import REPO

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")

#: The longest a rerun, a check or the exit of a killed build's workers may take before it counts as stuck.
BOUND_S = 60.0


def _manifest(changed: bool) -> str:
    sprites = []
    for i in range(24):
        if changed and i == 3:
            continue  # removed
        prompt = f"creature {i}" + (" in red" if changed and i % 2 == 0 else "")
        output = f"    output: moved/c{i}.png\n" if changed and i == 5 else ""
        sprites.append(f"  - id: c{i}\n    prompt: {prompt}\n{output}")
    if changed:
        sprites += [f"  - id: new{i}\n    prompt: newcomer {i}\n" for i in range(3)]
    atlas = "atlases:\n  - id: sheet\n    sprites: [c0, c1, c2]\n"
    return (
        "version: 1\nproject:\n  output: assets\ndefaults:\n  size: 128\n"
        "  post:\n    - resize: {size: 16, filter: box}\nsprites:\n" + "".join(sprites) + atlas
    )


def _run(project: Path, *args: str, timeout: float = BOUND_S) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    return subprocess.run(
        [sys.executable, "-m", "pixelbuild", *args, "-C", str(project)],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _listing(folder: Path) -> set[str]:
    return {str(path.relative_to(folder)) for path in folder.rglob("*")}


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, float]:
    """A built project (its local state included), and how long the incremental build takes."""
    root = tmp_path_factory.mktemp("kill-base")
    project = root / "game"
    project.mkdir()
    (project / "pixelbuild.yaml").write_text(_manifest(False))
    assert _run(project, "build").returncode == 0
    timing = root / "timing"
    shutil.copytree(project, timing)
    (timing / "pixelbuild.yaml").write_text(_manifest(True))
    start = time.monotonic()
    done = _run(timing, "build", "-j", "2")
    assert done.returncode == 0, done.stderr
    return project, time.monotonic() - start


def _check_after_kill(project: Path, outside: Path, before_outside: set[str]) -> str:
    """The assertions every kill point must pass; returns where the kill landed."""
    lock_path = project / "pixelbuild.lock"
    lock = read_lock(lock_path)  # raises on a damaged lock
    journal_path = project / ".pixelbuild/journal.jsonl"
    check = _run(project, "check")
    assert "Traceback" not in check.stderr and "internal error" not in check.stderr, check.stderr
    if journal_path.exists():  # check reads the lock as the journal leaves it (as plan and build do)
        assert "journal" in check.stdout, check.stdout
        lock = apply_journal(lock, read_journal(journal_path))
    for sprite_id, entry in lock.sprites.items():
        for output in entry.outputs:
            path = project / "assets" / output.path
            if not path.exists() or file_digest(str(path)) != output.file_hash:
                assert sprite_id in check.stdout, (sprite_id, check.stdout)
    leftovers = [
        str(path.relative_to(project))
        for path in project.rglob(f"{TEMP_PREFIX}*")
        if path.relative_to(project).parts[0] not in ("assets", ".pixelbuild")
    ]
    assert leftovers == []
    assert _listing(outside) == before_outside, "a write outside the project"
    if journal_path.exists():
        return "mid-build (journal kept)"
    written = {output.path for entry in lock.sprites.values() for output in entry.outputs}
    return "after the lock" if "moved/c5.png" in written else "before any record"


def test_sigkill_at_random_points_always_converges(
    base: tuple[Path, float], tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    project_base, duration = base
    points: int = request.config.getoption("--kill-points")
    rng = random.Random(request.config.getoption("--kill-seed"))
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "victim.txt").write_text("precious")
    before_outside = _listing(outside)
    outcomes: collections.Counter[str] = collections.Counter()
    for point in range(points):
        jobs = "1" if point % 2 == 0 else "2"
        project = tmp_path / f"game{point}"
        shutil.copytree(project_base, project)
        (project / "pixelbuild.yaml").write_text(_manifest(True))
        delay = rng.uniform(0.2, duration * 0.95)
        env = dict(os.environ, PYTHONPATH=str(REPO))
        process = subprocess.Popen(
            [sys.executable, "-m", "pixelbuild", "build", "-C", str(project), "-j", jobs, "--progress", "none"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        time.sleep(delay)
        finished_first = process.poll() is not None
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGKILL)  # the main process only: its workers must notice
        try:
            process.communicate(timeout=BOUND_S)  # returns once every holder of its pipes has exited
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.communicate()
            pytest.fail(f"kill point {point} (-j {jobs}, {delay:.2f} s): the workers outlived the build")
        landed = "finished" if finished_first else _check_after_kill(project, outside, before_outside)
        rerun = _run(project, "build", "--progress", "none")
        assert rerun.returncode == 0, (point, delay, rerun.stdout, rerun.stderr)
        assert "Traceback" not in rerun.stderr
        check = _run(project, "check")
        assert check.returncode == 0, (point, delay, check.stdout)
        assert not (project / ".pixelbuild/journal.jsonl").exists()
        outcomes[f"-j {jobs}: {landed}"] += 1
        shutil.rmtree(project)
    assert (outside / "victim.txt").read_text() == "precious"
    print(
        f"\nkill campaign: {points} SIGKILLs (seed {request.config.getoption('--kill-seed')}, incremental build "
        f"~{duration:.1f} s): "
        + ", ".join(f"{k}: {v}" for k, v in sorted(outcomes.items()))
        + "; every one converged, 0 stuck, 0 writes outside"
    )


# -------------------------------------------------------------------------------------------- disk full


@pytest.fixture
def small_disk(tmp_path: Path) -> Path:
    """A 16 MiB tmpfs (root only): a real ENOSPC from the kernel, not a simulated one."""
    mount = tmp_path / "disk"
    mount.mkdir()
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a small tmpfs needs root (and mount(8))")
    made = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(mount)], capture_output=True)
    if made.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {made.stderr.decode(errors='replace').strip()}")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


def test_disk_full_leaves_nothing_half_written_and_a_rerun_converges(small_disk: Path) -> None:
    project = small_disk / "game"
    project.mkdir()
    manifest = _manifest(False).replace("size: 128\n  post:\n    - resize: {size: 16, filter: box}\n", "size: 256\n")
    (project / "pixelbuild.yaml").write_text(manifest)
    filler = small_disk / "filler"
    # Leave room for the manifest and a few outputs, not for all of them.
    free = os.statvfs(small_disk).f_bavail * os.statvfs(small_disk).f_frsize
    with open(filler, "wb") as handle:
        handle.write(b"\0" * max(0, free - 600_000))
    result = _run(project, "build", "-j", "1", "--progress", "none")
    shown = result.stdout + result.stderr
    assert result.returncode == 1, shown
    assert "Traceback" not in shown and "internal error" not in shown, shown
    assert f"no space left on device at {project}" in shown, shown
    leftovers = [str(path) for path in project.rglob(f"{TEMP_PREFIX}*")]
    assert leftovers == []
    if (project / "pixelbuild.lock").exists():
        read_lock(project / "pixelbuild.lock")
    for png in (project / "assets").rglob("*.png"):  # every output there is whole
        from pixelbuild.png import decode_png

        decode_png(png.read_bytes())
    filler.unlink()
    rerun = _run(project, "build", "--progress", "none")
    assert rerun.returncode == 0, rerun.stderr
    assert _run(project, "check").returncode == 0


def test_a_temporary_file_left_by_a_killed_write_is_swept_by_the_next_build(tmp_path: Path) -> None:
    project = tmp_path / "game"
    project.mkdir()
    (project / "pixelbuild.yaml").write_text(_manifest(False))
    assert _run(project, "build").returncode == 0
    # What SIGKILL during an atlas write leaves (found by the campaign above).
    leftover = project / "assets/atlases" / f"{TEMP_PREFIX}21640f8f3a1d6b7b"
    leftover.parent.mkdir(parents=True, exist_ok=True)
    leftover.write_bytes(b"half a png")
    (project / "pixelbuild.yaml").write_text(_manifest(True))
    assert _run(project, "build").returncode == 0
    assert not leftover.exists()
    assert _run(project, "check").returncode == 0


def test_an_output_written_by_a_build_killed_before_its_journal_line_is_not_a_stuck_state(tmp_path: Path) -> None:
    # Found by the campaign above (-j 2, killed at 0.83 s): the output held the new bytes, the lock the old
    # record, and every later build refused to overwrite 'a file changed since pixelbuild wrote it'.
    project = tmp_path / "game"
    project.mkdir()
    manifest = project / "pixelbuild.yaml"
    manifest.write_text(_manifest(False))
    assert _run(project, "build").returncode == 0
    old_lock = (project / "pixelbuild.lock").read_bytes()
    manifest.write_text(_manifest(False).replace("creature 4\n", "creature 4 in gold\n"))
    assert _run(project, "build").returncode == 0
    (project / "pixelbuild.lock").write_bytes(old_lock)  # the journal line that would record c4 was never written
    rerun = _run(project, "build", "--progress", "none")
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    assert _run(project, "check").returncode == 0
    # A real hand edit is still refused.
    (project / "assets/c4.png").write_bytes(b"drawn by hand")
    manifest.write_text(_manifest(False).replace("creature 4\n", "creature 4 in silver\n"))
    refused = _run(project, "build", "--progress", "none")
    assert refused.returncode == 1 and "would overwrite assets/c4.png" in refused.stdout + refused.stderr


_KILLED_IN_THE_LOCK_WRITE = """
import os, signal, sys
replace = os.replace
def killed_before_the_lock_is_replaced(src, dst, *args, **kwargs):
    if os.fspath(dst).endswith("pixelbuild.lock"):
        os.kill(os.getpid(), signal.SIGKILL)
    return replace(src, dst, *args, **kwargs)
os.replace = killed_before_the_lock_is_replaced
from pixelbuild.cli import main
sys.exit(main(sys.argv[1:]))
"""


def test_a_build_killed_while_writing_the_lock_leaves_no_file_beside_it(tmp_path: Path) -> None:
    # Found by the campaign above under load (the lock's fsync is slow then): the temporary file of the lock
    # was made beside it, in the user's repository, and no build ever removed it.
    project = tmp_path / "game"
    project.mkdir()
    (project / "pixelbuild.yaml").write_text(_manifest(False))
    assert _run(project, "build").returncode == 0
    (project / "pixelbuild.yaml").write_text(_manifest(True))
    env = dict(os.environ, PYTHONPATH=str(REPO))
    killed = subprocess.run(
        [sys.executable, "-c", _KILLED_IN_THE_LOCK_WRITE, "build", "-C", str(project), "--progress", "none"],
        env=env,
        capture_output=True,
        timeout=BOUND_S,
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    beside = sorted(path.name for path in project.iterdir())
    assert beside == [".pixelbuild", "assets", "pixelbuild.lock", "pixelbuild.yaml"]
    state = project / ".pixelbuild"
    assert [path.name for path in state.glob(f"{TEMP_PREFIX}*")] != []  # the killed write's, swept below
    read_lock(project / "pixelbuild.lock")  # the old lock, whole
    rerun = _run(project, "build", "--progress", "none")
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    assert list(state.glob(f"{TEMP_PREFIX}*")) == []
    assert _run(project, "check").returncode == 0
