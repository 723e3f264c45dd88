"""Content hashes of files, and the cache that spares re-reading them (``.pixelbuild/state/files.json``).

``file_digest`` is pixelbuild's one file hasher (xxh3_128, as every key and lock hash): the no-op stamp,
``check``, the spec cache and the output comparisons all read files through it. ``FileHashCache`` keeps
digests by path, trusted while the file's size, mtime, ctime and inode are unchanged (as git's index
does, racily clean files excepted), so a build does not re-read every asset. The same cache keeps the
sha256 of pinned model files for the ComfyUI preflight (``algorithm="sha256"``): model pins are sha256
because that is what model hubs publish, so those files need that algorithm, not another cache.

Kept light: the no-op check imports this module (not msgspec, time or hashlib until they are needed).
"""

from __future__ import annotations

import os
import stat as stat_module
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import xxhash

from pixelbuild.local.seal import NotRegularFile

if TYPE_CHECKING:
    from pathlib import Path

#: (size, mtime ns, ctime ns, inode): what a file is known by between two reads.
Signature = tuple[int, int, int, int]
#: A wall clock in nanoseconds (``time.time_ns``); tests inject their own.
Clock = Callable[[], int]

#: How recent a change makes a file racily clean: coarser than any file system's timestamps (FAT: 2 s)...
RACY_NS = 2_000_000_000
#: ...or, for a file whose mtime has a fraction of a second (a fine-grained file system, stamped from the
#: kernel's coarse clock, a tick of 10 ms at most), well above one tick.
FINE_RACY_NS = 100_000_000
#: The largest file the cache's own table may be.
_MAX_TABLE_BYTES = 256 << 20
#: Read in one piece up to this size (most files), in chunks of ``_CHUNK`` above it.
_ONE_READ = 16 << 20
_CHUNK = 4 << 20
_O_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
#: Without blocking: a FIFO in a file's place must not hang a build (it is not a regular file).
_READ_FLAGS = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
#: Entries are (size, mtime, ctime, inode, digest) since format 2.
_TABLE_FORMAT = 2


def stat_signature(path: str) -> Signature | None:
    """(size, mtime ns, ctime ns, inode) of ``path``, or None if it does not exist."""
    try:
        info = os.stat(path)
    except (OSError, ValueError):
        return None
    return info.st_size, info.st_mtime_ns, info.st_ctime_ns, info.st_ino


def is_racy(signature: Signature, taken_ns: int) -> bool:
    """Whether a file with ``signature``, taken at wall-clock time ``taken_ns``, could change unseen."""
    window = RACY_NS if signature[1] % 1_000_000_000 == 0 else FINE_RACY_NS
    return max(signature[1], signature[2]) >= taken_ns - window


def file_digest(
    path: str, limit: int | None = None, algorithm: str = "xxh3_128", *, dir_fd: int | None = None
) -> str:
    """The hex digest of the regular file at ``path`` (xxh3_128, or ``sha256``).

    Raises ``FileNotFoundError`` if it is absent, ``NotRegularFile`` (an ``OSError``) for a FIFO, device or
    folder in its place or a file larger than ``limit``, and ``OSError`` if it cannot be read. With
    ``dir_fd``, ``path`` is a name in that folder, and a symbolic link there is not followed (an ``OSError``).
    """
    fd = os.open(path, _READ_FLAGS) if dir_fd is None else os.open(path, _READ_FLAGS | _O_NOFOLLOW, dir_fd=dir_fd)
    try:
        info = os.fstat(fd)
        if not stat_module.S_ISREG(info.st_mode):
            raise NotRegularFile(f"{path} is not a regular file")
        if limit is not None and info.st_size > limit:
            raise NotRegularFile(f"{path} is larger than {limit} bytes")
        if algorithm == "sha256":
            import hashlib

            hasher: Any = hashlib.sha256()
        else:
            hasher = xxhash.xxh3_128()
        # Plain reads on the descriptor, sized by fstat: most files take one read of their size (+1, to see
        # one that grew) and one that finds the end. (A buffered file object asked for up to 16 MiB
        # allocated that much for each small file: 25 µs a file, most of check's hashing.)
        size = 0
        wanted = min(info.st_size, _ONE_READ) + 1
        while chunk := os.read(fd, wanted):
            size += len(chunk)
            if limit is not None and size > limit:  # grown since the check above
                raise NotRegularFile(f"{path} is larger than {limit} bytes")
            hasher.update(chunk)
            wanted = _CHUNK
        return str(hasher.hexdigest())
    finally:
        os.close(fd)


def digest_or_none(path: str, limit: int | None = None) -> str | None:
    """``file_digest`` of ``path``, or None if it is missing, not a regular file, too large or unreadable."""
    try:
        return file_digest(path, limit)
    except (OSError, ValueError):
        return None


def _now_ns() -> int:
    import time

    return time.time_ns()


class FileHashCache:
    """Digests of files by absolute path, reused while (size, mtime, ctime, inode) match.

    A file changed just before its stats were taken (``is_racy``, against ``clock``) is racily clean (a
    second change in the same timestamp tick would look the same), so its digest is not kept: it is
    hashed again. ``path`` None keeps the digests for this process only.
    """

    def __init__(self, path: Path | None, clock: Clock | None = None, algorithm: str = "xxh3_128") -> None:
        self.path = path
        self.algorithm = algorithm
        self._entries: dict[str, list[Any]] | None = None
        self._dirty = False
        # Taken before any stat of this run, so every signature below is at least this recent.
        self._taken_ns = (clock or _now_ns)()

    def _format(self) -> str:
        from pixelbuild._version import __version__

        return f"{_TABLE_FORMAT}/{self.algorithm}/{__version__}"

    def _load(self) -> dict[str, list[Any]]:
        if self._entries is None:
            self._entries = {}
            if self.path is not None:
                import msgspec  # 2x json's speed on a table of 10,000 files

                from pixelbuild.local.seal import read_sealed

                try:
                    # Sealed: a planted table could make a hand-made file look like one pixelbuild wrote.
                    payload = read_sealed("hashes", str(self.path), _MAX_TABLE_BYTES)
                    data = msgspec.json.decode(payload) if payload is not None else None
                    if isinstance(data, dict) and data.get("version") == self._format():
                        files = data.get("files")
                        self._entries = files if isinstance(files, dict) else {}
                except (OSError, ValueError, KeyError, RecursionError):
                    pass
        return self._entries

    def hash(self, path: Path | str) -> str | None:
        """The content hash of ``path``, or None if it does not exist (or is not a readable regular file)."""
        entries = self._load()
        key = str(path)
        signature = stat_signature(key)
        if signature is None:
            return None
        cached = entries.get(key)
        if isinstance(cached, list) and len(cached) == 5 and tuple(cached[:4]) == signature:
            return str(cached[4])
        try:
            digest = file_digest(key, algorithm=self.algorithm)
        except (OSError, ValueError):
            return None
        self.remember(path, digest, signature)
        return digest

    def remember(self, path: Path | str, digest: str, signature: Signature | None = None) -> None:
        """Record that ``path`` (as it is now on disk, or as ``signature`` saw it) has hash ``digest``."""
        if signature is None:
            signature = stat_signature(str(path))
            if signature is None:
                return
        entries = self._load()
        if is_racy(signature, self._taken_ns):
            if entries.pop(str(path), None) is not None:
                self._dirty = True
            return
        entries[str(path)] = [*signature, digest]
        self._dirty = True

    def save(self) -> None:
        """Write the cache back if it changed (best effort)."""
        if not self._dirty or self.path is None or self._entries is None:
            return
        import msgspec  # 10x json's speed on a table of 10,000 files

        from pixelbuild.fsutil import atomic_write_bytes
        from pixelbuild.local.seal import seal

        payload = msgspec.json.encode({"version": self._format(), "files": self._entries})
        try:
            atomic_write_bytes(self.path, seal("hashes", self.path.name, payload))
            self._dirty = False
        except OSError:
            pass
