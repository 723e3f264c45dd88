"""Loading a large uncached manifest in worker processes (``pixelbuild.preload``): the session it leads to,
the caches it writes and the errors it reports are those of loading alone; a worker that fails, dies or is
interrupted changes nothing, and none outlives its parent.

Whatever forks runs in a fresh interpreter (``_run``): a test process may hold threads, and then nothing is
forked (``can_fork``). The threshold is lowered through ``preload``'s parameters (``MIN_BYTES`` for the
command line), not by writing megabytes of YAML.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from pixelbuild import preload
from pixelbuild.local.layout import ProjectPaths
from pixelbuild.project import open_session
from tests.conftest import REPO, Result

ROOT = """\
version: 1
project:
  output: assets
  backend: placeholder
include: [parts/*.yaml]
defaults:
  size: 32
  negative_prompt: blurry
  post:
    - resize: {size: 16, filter: box}
"""

PART = """\
{defaults}sprites:
  - id: p{n}/slime
    prompt: red slime {n}
    seed: {n}
  - id: p{n}/coin_{{tint}}
    prompt: "{{tint}} coin"
    matrix: {{tint: [gold, silver]}}
  - id: p{n}/knight
    prompt: knight {n}
    workflow: custom
    post:
      - resize: {{size: 8, filter: box}}
      - palette: {{file: ../palettes/four.hex}}
  - id: p{n}/door
    prompt: door {n}
    output: doors/door{n}.png
"""

PRELUDE = """\
import json, os, signal, sys, time
from pathlib import Path
from pixelbuild import preload
from pixelbuild.local.layout import ProjectPaths
from pixelbuild.project import open_session

paths = ProjectPaths.for_manifest(Path(sys.argv[1]) / "pixelbuild.yaml")

def keys(session):
    return {name: [k.post, list(k.generations)] for name, k in session.keys.items()}

"""


def _project(root: Path, files: int = 6) -> Path:
    """A root manifest including ``files`` files of five sprites each (a matrix, a local workflow, a palette
    file, an explicit output), every other one with defaults of its own; the second includes a sixth file of
    one sprite."""
    root.mkdir()
    (root / "pixelbuild.yaml").write_text(ROOT)
    (root / "workflows").mkdir()
    (root / "workflows/custom.json").write_text('{"1": {"class_type": "KSampler", "inputs": {}}}')
    (root / "palettes").mkdir()
    (root / "palettes/four.hex").write_text("000000\n555555\naaaaaa\nffffff\n")
    (root / "parts").mkdir()
    for index in range(files):
        defaults = "defaults:\n  steps: 12\n" if index % 2 else ""
        (root / f"parts/p{index:02}.yaml").write_text(PART.format(n=f"{index:02}", defaults=defaults))
    # A file that includes one: its worker loads it, the session the file it includes (with its defaults).
    nested = root / "parts/p01.yaml"
    nested.write_text("include: [sub/extra.yaml]\n" + nested.read_text())
    (root / "parts/sub").mkdir()
    (root / "parts/sub/extra.yaml").write_text("sprites:\n  - id: sub/gem\n    prompt: gem\n")
    return root


def _run(code: str, project: Path, **env: str) -> Any:
    """Run ``code`` (after ``PRELUDE``) in a fresh interpreter on ``project``; what it leaves in ``out``."""
    script = PRELUDE + textwrap.dedent(code) + "\nprint(json.dumps(out))\n"
    environment = {**os.environ, "XDG_CACHE_HOME": str(project.parent / "xdg"), **env}
    done = subprocess.run(
        [sys.executable, "-c", script, str(project)],
        cwd=REPO,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return json.loads(done.stdout.splitlines()[-1])


def _command(project: Path, *args: str, jobs: str) -> Result:
    """``pixelbuild ARGS -C project`` in a fresh interpreter, with the preload threshold at 0."""
    script = (
        "import sys\nfrom pixelbuild import preload\nfrom pixelbuild.cli import main\n"
        "preload.MIN_BYTES = 0\nsys.exit(main(sys.argv[1:]))\n"
    )
    environment = {**os.environ, "XDG_CACHE_HOME": str(project.parent / "xdg"), "PIXELBUILD_LOAD_JOBS": jobs}
    done = subprocess.run(
        [sys.executable, "-c", script, *args, "-C", str(project)],
        cwd=REPO,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )
    return Result(done.returncode, done.stdout, done.stderr)


def _state(project: Path) -> dict[str, bytes]:
    """Every file of the project's local state by relative path, but the file-hash table (which files it
    keeps depends on how long ago they changed: see ``filehashes.is_racy``)."""
    state = project / ".pixelbuild"
    files = {path.relative_to(state).as_posix(): path for path in sorted(state.rglob("*")) if path.is_file()}
    return {name: path.read_bytes() for name, path in files.items() if name != "state/files.json"}


ALONE = "session = open_session(paths, preloaded=preload.Preloaded())\nsession.hashes.save()\nout = keys(session)\n"


def test_workers_make_the_session_and_the_caches_that_loading_alone_makes(tmp_path: Path) -> None:
    project = _project(tmp_path / "project")
    alone = _run(ALONE, project)
    state = _state(project)
    shutil.rmtree(project / ".pixelbuild")
    split = _run(
        """
        loaded = preload.preload(paths, jobs=3, min_bytes=0)
        assert not (paths.project_dir / ".pixelbuild/state").exists(), "a worker wrote to the cache"
        session = open_session(paths, preloaded=loaded)
        session.hashes.save()
        out = [loaded.shares, loaded.files, keys(session)]
        """,
        project,
    )
    assert split[:2] == [3, 6]  # two forked workers and this process, two files each
    assert split[2] == alone and len(alone) == 6 * 5 + 1
    assert _state(project) == state  # the same files, byte for byte
    assert len([name for name in state if name.startswith("state/resolved/")]) == 1 + 6 + 1  # every file


def test_check_reports_the_same_with_workers(tmp_path: Path) -> None:
    project = _project(tmp_path / "project")
    documents = []
    for jobs in ("1", "3", "1"):  # the last: on the caches the workers made
        if jobs == "3":
            shutil.rmtree(project / ".pixelbuild")
        result = _command(project, "check", "--json", jobs=jobs)
        assert result.code == 1 and result.err == "", result.out + result.err  # never built: all missing
        documents.append(json.loads(result.out))
    assert documents[0] == documents[1] == documents[2]
    assert len(documents[0]["problems"]) == 6 * 5 + 1


def _paths(project: Path) -> ProjectPaths:
    return ProjectPaths.for_manifest(project / "pixelbuild.yaml")


def _break(project: Path, name: str, old: str, new: str) -> None:
    path = project / "parts" / name
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))


@pytest.mark.parametrize(
    ("breaks", "expected"),
    [
        pytest.param(
            [("p03.yaml", "workflow: custom", "workflow: nosuch")],
            "p03.yaml:12:15: sprite 'p03/knight', field 'workflow': unknown workflow 'nosuch'",
            id="in a forked worker's share",
        ),
        pytest.param(
            # Loading checks every file's schema before resolving any: p04's comes first.
            [("p03.yaml", "workflow: custom", "workflow: nosuch"), ("p04.yaml", "seed: 04", "seed: many")],
            "p04.yaml:4:11: sprite 'p04/slime', field 'seed'",
            id="schema after resolution, in two shares",
        ),
        pytest.param(
            # Each share resolves; only the whole manifest clashes (the later sprite names its output).
            [("p05.yaml", "output: doors/door05.png", "output: doors/door01.png")],
            "p05.yaml:18:13: sprite 'p05/door', field 'output': duplicate output 'doors/door01.png'",
            id="across shares",
        ),
    ],
)
def test_a_bad_manifest_fails_with_workers_as_it_fails_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, breaks: list[tuple[str, str, str]], expected: str
) -> None:
    project = _project(tmp_path / "project")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    shares = [[path.name for path in share.files] for share in preload.split(_paths(project), 3, 0)]
    # Shares of 3 (by size): p01 + p04 and p00 + p03 go to forked workers, p02 + p05 stay in this process.
    assert shares == [["p01.yaml", "p04.yaml"], ["p00.yaml", "p03.yaml"], ["p02.yaml", "p05.yaml"]]
    for name, old, new in breaks:
        _break(project, name, old, new)
    alone = _command(project, "plan", jobs="1")
    split = _command(project, "plan", jobs="3")
    assert alone.code == 2 and expected in alone.err, alone.err
    assert (split.code, split.out, split.err) == (alone.code, alone.out, alone.err)
    assert not (project / ".pixelbuild").exists()  # nothing written, workers or not


def test_a_worker_that_dies_or_fails_leaves_its_share_to_the_session(tmp_path: Path) -> None:
    project = _project(tmp_path / "project")
    alone = _run(ALONE, project)
    shutil.rmtree(project / ".pixelbuild")
    split = _run(
        """
        shares = preload.split(paths, 3, 0)

        def work(share):
            if share == shares[0]:
                os.kill(os.getpid(), signal.SIGKILL)
            if share == shares[1]:
                raise RuntimeError("a bug")
            return preload.load_share(share)

        loaded = preload.preload(paths, jobs=3, min_bytes=0, work=work)
        session = open_session(paths, preloaded=loaded)
        try:
            os.waitpid(-1, os.WNOHANG)
            left = True
        except ChildProcessError:
            left = False
        out = [loaded.shares, loaded.files, left, keys(session)]
        """,
        project,
    )
    assert split[:3] == [1, 2, False]  # this process's share alone arrived; both workers were reaped
    assert split[3] == alone


def test_no_process_to_be_had_leaves_the_shares_to_the_session(tmp_path: Path) -> None:
    project = _project(tmp_path / "project")
    alone = _run(ALONE, project)
    shutil.rmtree(project / ".pixelbuild")
    split = _run(
        """
        import errno

        forks = []

        def fork():
            forks.append(1)
            raise OSError(errno.EAGAIN, "Resource temporarily unavailable")

        def descriptors():
            return sorted(os.listdir("/proc/self/fd")) if os.path.isdir("/proc/self/fd") else []

        os.fork = fork
        before = descriptors()
        loaded = preload.preload(paths, jobs=3, min_bytes=0)
        leaked = [fd for fd in descriptors() if fd not in before]
        session = open_session(paths, preloaded=loaded)
        out = [len(forks), loaded.shares, loaded.files, leaked, keys(session)]
        """,
        project,
    )
    assert split[:4] == [1, 1, 2, []]  # one try (its pipe closed), then this process's share alone
    assert split[4] == alone


def test_an_interrupted_preload_leaves_no_worker(tmp_path: Path) -> None:
    project = _project(tmp_path / "project")
    out = _run(
        """
        parent = os.getpid()

        def work(share):
            if os.getpid() == parent:
                raise KeyboardInterrupt  # Ctrl-C while this process loads its own share
            time.sleep(60)

        try:
            preload.preload(paths, jobs=3, min_bytes=0, work=work)
            out = "not interrupted"
        except KeyboardInterrupt:
            try:
                os.waitpid(-1, os.WNOHANG)
                out = "a worker is left"
            except ChildProcessError:
                out = "no worker left"
        """,
        project,
    )
    assert out == "no worker left"


def _alive(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    return "\nState:\tZ" not in status


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc to see the workers")
def test_workers_die_with_a_killed_parent(tmp_path: Path) -> None:
    project = _project(tmp_path / "project")
    pids = tmp_path / "pids"
    pids.mkdir()
    script = PRELUDE + textwrap.dedent(
        f"""
        parent = os.getpid()

        def work(share):
            if os.getpid() != parent:
                Path({str(pids)!r}, str(os.getpid())).write_text("")
                time.sleep(60)
            while len(os.listdir({str(pids)!r})) < 2:
                time.sleep(0.01)
            os.kill(parent, signal.SIGKILL)

        preload.preload(paths, jobs=3, min_bytes=0, work=work)
        """
    )
    environment = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "xdg")}
    done = subprocess.run([sys.executable, "-c", script, str(project)], cwd=REPO, env=environment, timeout=60)
    assert done.returncode == -9
    workers = [int(name) for name in os.listdir(pids)]
    assert len(workers) == 2
    deadline = time.monotonic() + 20
    while any(_alive(pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(_alive(pid) for pid in workers)


def test_without_fork_or_beside_a_thread_the_session_loads_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    paths = _paths(_project(tmp_path / "project"))
    assert len(preload.split(paths, 3, 0)) == 3  # worth splitting, were it allowed
    stop = threading.Event()
    thread = threading.Thread(target=stop.wait)
    thread.start()
    try:
        assert not preload.can_fork()
        assert preload.preload(paths, jobs=3, min_bytes=0) == preload.Preloaded()
    finally:
        stop.set()
        thread.join()
    monkeypatch.delattr(os, "fork")
    assert not preload.can_fork()
    assert preload.preload(paths, jobs=3, min_bytes=0) == preload.Preloaded()
    assert len(open_session(paths).keys) == 6 * 5 + 1


def test_shares_are_balanced_uncached_files_in_include_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    project = _project(tmp_path / "project", files=5)
    big = project / "parts/p00.yaml"
    more = [PART.format(n=f"{10 + i}", defaults="").split("sprites:\n")[1] for i in range(3)]
    big.write_text(big.read_text() + "".join(more))  # four files' worth
    paths = _paths(project)
    shares = preload.split(paths, 2, 0)
    names = [[path.name for path in share.files] for share in shares]
    assert names == [["p00.yaml"], ["p01.yaml", "p02.yaml", "p03.yaml", "p04.yaml"]]
    assert preload.split(paths, 2, 10**9) == []  # below the threshold
    total = sum(path.stat().st_size for path in (project / "parts").glob("*.yaml"))
    assert len(preload.split(paths, 5, total // 2)) == 4  # shares of half the threshold at least
    assert len(preload.split(paths, 5, total)) == 2
    open_session(paths, preloaded=preload.Preloaded())
    assert preload.split(paths, 2, 0) == []  # all cached


def test_load_jobs_come_from_the_environment_else_the_cores(
    monkeypatch: pytest.MonkeyPatch, cli: Callable[..., Result], make_project: Callable[..., Path]
) -> None:
    monkeypatch.setenv("PIXELBUILD_LOAD_JOBS", "3")
    assert preload.load_jobs() == 3
    monkeypatch.delenv("PIXELBUILD_LOAD_JOBS")
    assert preload.load_jobs() >= 1
    # The cores that the processes running now (this one too) leave idle.
    assert preload.idle_cores(4, b"0.52 0.61 0.70 1/187 4242\n") == 4
    assert preload.idle_cores(4, b"2.52 2.61 2.70 3/187 4242\n") == 2
    assert preload.idle_cores(2, b"3.10 3.00 2.90 2/187 4242\n") == 1
    assert preload.idle_cores(2, b"9.00 9.00 9.00 9/187 4242\n") == 1
    assert preload.idle_cores(2, b"garbage") == 2
    project = make_project()
    for value in ("0", "two", "-1", "²"):
        monkeypatch.setenv("PIXELBUILD_LOAD_JOBS", value)
        result = cli("plan", "-C", project)
        assert result.code == 2
        assert f"PIXELBUILD_LOAD_JOBS must be a whole number of processes, at least 1; got '{value}'" in result.err
