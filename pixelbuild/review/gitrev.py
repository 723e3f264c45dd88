"""Reading a project as it was at a git revision, with git itself (never the working tree).

Everything read this way is treated as hostile: paths are checked, sizes bounded, symlinks and
submodules skipped, and only git's own object reads (``git cat-file --batch``, the one-process form of
``git show REV:path``) are used.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from pixelbuild.errors import PixelbuildError, UsageError
from pixelbuild.review.media import inside, safe_relative

#: Bounds on what a revision may make us read.
MAX_FILE_BYTES = 64 << 20
MAX_PROJECT_FILE_BYTES = 4 << 20
MAX_PROJECT_BYTES = 128 << 20
MAX_PROJECT_FILES = 50_000


@dataclass(frozen=True, slots=True)
class TreeFile:
    """A regular file of the revision: its path relative to the project folder, and its size."""

    path: str
    size: int


def _git(cwd: Path, *args: str) -> str:
    try:
        done = subprocess.run(
            ["git", "-c", "core.quotepath=off", *args], cwd=cwd, capture_output=True, check=False, timeout=120
        )
    except FileNotFoundError:
        raise UsageError("'pixelbuild diff' needs git, which is not installed") from None
    if done.returncode != 0:
        raise _GitFailed(done.stderr.decode("utf-8", "replace").strip())
    return done.stdout.decode("utf-8", "surrogateescape")


class _GitFailed(Exception):
    pass


class Revision:
    """The project folder ``project_dir`` at git revision ``rev``; close it when done."""

    def __init__(self, project_dir: Path, rev: str) -> None:
        self.project_dir = project_dir
        self.rev = rev
        if rev.startswith("-"):
            raise UsageError(f"'{rev}' is not a git revision")
        try:
            self.prefix = _git(project_dir, "rev-parse", "--show-prefix").strip()
        except _GitFailed:
            raise UsageError(
                f"{project_dir} is not inside a git repository; 'pixelbuild diff' compares with git"
            ) from None
        try:
            self.commit = _git(
                project_dir, "rev-parse", "--verify", "--quiet", "--end-of-options", f"{rev}^{{commit}}"
            ).strip()
        except _GitFailed:
            raise UsageError(f"'{rev}' is not a commit of the git repository at {project_dir}") from None
        self._batch: subprocess.Popen[bytes] | None = None

    def close(self) -> None:
        """Stop the reader process."""
        if self._batch is not None:
            assert self._batch.stdin is not None
            self._batch.stdin.close()
            self._batch.wait(timeout=10)
            self._batch = None

    def __enter__(self) -> Revision:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _process(self) -> subprocess.Popen[bytes]:
        if self._batch is None:
            self._batch = subprocess.Popen(
                ["git", "cat-file", "--batch"],
                cwd=self.project_dir,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
            )
        return self._batch

    def read(self, relative: str, limit: int = MAX_FILE_BYTES) -> bytes | None:
        """The bytes of the project file ``relative`` at the revision; None if absent, not a regular blob,
        or larger than ``limit``."""
        if not safe_relative(relative):
            return None
        process = self._process()
        assert process.stdin is not None and process.stdout is not None
        process.stdin.write(f"{self.commit}:{self.prefix}{relative}\n".encode("utf-8", "surrogateescape"))
        process.stdin.flush()
        header = process.stdout.readline().decode("utf-8", "replace").split()
        if len(header) != 3:
            return None  # "<name> missing" or "ambiguous"
        kind, size = header[1], int(header[2])
        if kind != "blob" or size > limit:
            _discard(process.stdout, size + 1)
            return None
        data = process.stdout.read(size)
        process.stdout.read(1)
        return data

    def files(self, under: str = "") -> list[TreeFile]:
        """Regular files of the revision below the project folder (or its ``under`` subfolder)."""
        spec = f"{self.prefix}{under}".rstrip("/") or "."
        try:
            listing = _git(self.project_dir, "ls-tree", "-r", "-z", "--long", "--full-tree", self.commit, "--", spec)
        except _GitFailed as error:
            raise PixelbuildError(f"git could not list {self.rev}: {error}") from None
        found = []
        for line in listing.split("\0"):
            if not line:
                continue
            meta, _, path = line.partition("\t")
            parts = meta.split()
            # Regular files only: symlinks (120000) and submodules (160000) are never followed.
            if len(parts) != 4 or parts[0] not in ("100644", "100755") or not path.startswith(self.prefix):
                continue
            found.append(TreeFile(path[len(self.prefix) :], int(parts[3])))
        return found

    def materialize(self, target: Path, skip: tuple[str, ...]) -> int:
        """Write the revision's project files (but those under the ``skip`` folders, and any too large)
        into ``target``, for loading its manifest; return how many were written."""
        written = 0
        total = 0
        for file in self.files():
            if any(file.path == folder or file.path.startswith(folder.rstrip("/") + "/") for folder in skip):
                continue
            if (
                file.size > MAX_PROJECT_FILE_BYTES
                or total + file.size > MAX_PROJECT_BYTES
                or written >= MAX_PROJECT_FILES
            ):
                continue
            destination = inside(target, file.path)
            data = self.read(file.path, MAX_PROJECT_FILE_BYTES) if destination is not None else None
            if destination is None or data is None:
                continue
            destination.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(destination, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o644)
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
            total += file.size
            written += 1
        return written


def _discard(stream: IO[bytes], count: int) -> None:
    while count > 0:
        chunk = stream.read(min(count, 1 << 20))
        if not chunk:
            return
        count -= len(chunk)
