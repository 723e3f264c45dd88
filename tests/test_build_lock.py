"""The build lock: one build, gc or pull per project folder at a time; the lock dies with its process; a link
planted in its place is never followed."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from pixelbuild.errors import PixelbuildError
from pixelbuild.local.buildlock import ProjectLock
from pixelbuild.local.layout import ProjectPaths
from tests.conftest import Result

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="the holder process is signalled POSIX-style")

#: A process that takes the project's build lock, says so, and holds it until its stdin closes.
HOLDER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from pixelbuild.local.buildlock import ProjectLock
    from pixelbuild.local.layout import ProjectPaths

    with ProjectLock(ProjectPaths.for_manifest(Path(sys.argv[1]))):
        print("held", flush=True)
        sys.stdin.read()
    """
)


def _paths(project: Path) -> ProjectPaths:
    return ProjectPaths.for_manifest(project / "pixelbuild.yaml")


def test_a_second_holder_is_told_who_is_busy_and_gets_it_once_free(make_project: Callable[..., Path]) -> None:
    paths = _paths(make_project())
    busy = r"cannot gc: another pixelbuild .* is working in .*build\.lock"
    with ProjectLock(paths), pytest.raises(PixelbuildError, match=busy), ProjectLock(paths, "gc"):
        pass
    with ProjectLock(paths, "gc"):  # let go: free again
        pass


def test_a_build_refuses_while_another_process_holds_the_lock_which_dies_with_it(
    cli: Callable[..., Result], make_project: Callable[..., Path]
) -> None:
    project = make_project()
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(project / "pixelbuild.yaml")],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        busy = cli("build", "-C", project)
        assert busy.code != 0 and "another pixelbuild" in busy.err and not (project / "pixelbuild.lock").exists()
    finally:
        holder.kill()  # killed, not released: the system drops the lock with the process
        holder.wait()
    assert cli("build", "-C", project).code == 0


def test_a_link_in_the_locks_place_is_not_followed(make_project: Callable[..., Path], tmp_path: Path) -> None:
    paths = _paths(make_project())
    elsewhere = tmp_path / "not-yours.txt"
    elsewhere.write_text("keep me")
    paths.state_dir.mkdir(parents=True)
    paths.build_lock.symlink_to(elsewhere)
    with ProjectLock(paths):
        assert not paths.build_lock.is_symlink()
    assert elsewhere.read_text() == "keep me"
