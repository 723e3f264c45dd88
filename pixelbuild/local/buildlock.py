"""The build lock (``.pixelbuild/build.lock``): one build, ``gc`` or ``pull`` at a time changes a project
folder's outputs, lock and cache.

The lock is the operating system's, on an open descriptor of that file (``flock`` on POSIX, ``msvcrt.locking``
on Windows): it goes with the process, so a killed build never leaves it held, and the file's content never
matters. Written over the standard library rather than taken from ``filelock``, whose import costs about
12 ms, a twentieth of an edit build, for this one non-blocking exclusive lock.
"""

from __future__ import annotations

import os
import sys
import time
from types import TracebackType
from typing import TYPE_CHECKING

from pixelbuild.errors import PixelbuildError

if TYPE_CHECKING:
    from pixelbuild.local.layout import ProjectPaths

#: How long to wait for another process to let go before saying it is busy.
WAIT_S = 0.2
_POLL_S = 0.01


class ProjectLock:
    """``with ProjectLock(paths):`` holds the project folder's build lock, or raises a ``PixelbuildError``
    naming what holds it (``doing``: what this process wanted to do)."""

    def __init__(self, paths: ProjectPaths, doing: str = "build") -> None:
        paths.check_state()
        paths.state_dir.mkdir(parents=True, exist_ok=True)
        if paths.build_lock.is_symlink():
            # pixelbuild never makes one: a link there (from an archive) could point at any file.
            paths.build_lock.unlink()
        self.paths = paths
        self.doing = doing
        self._fd: int | None = None

    def __enter__(self) -> ProjectLock:
        flags = os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
        fd = os.open(self.paths.build_lock, flags, 0o666)
        deadline = time.monotonic() + WAIT_S
        try:
            while not _try_lock(fd):
                if time.monotonic() >= deadline:
                    raise PixelbuildError(
                        f"cannot {self.doing}: another pixelbuild (a build or gc) is working in "
                        f"{self.paths.project_dir} right now (it holds {self.paths.display(self.paths.build_lock)}); "
                        "wait for it to finish"
                    )
                time.sleep(_POLL_S)
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            try:
                _unlock(fd)
            finally:
                os.close(fd)  # closing lets go in any case


if sys.platform == "win32":
    import msvcrt

    def _try_lock(fd: int) -> bool:
        """Lock the file's first byte without waiting; False when another process holds it."""
        os.lseek(fd, 0, os.SEEK_SET)
        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True

    def _unlock(fd: int) -> None:
        os.lseek(fd, 0, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)

else:
    import fcntl

    def _try_lock(fd: int) -> bool:
        """Lock the file without waiting; False when another process (or descriptor) holds it."""
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True

    def _unlock(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_UN)
