"""Atomic file writes for pixelbuild's own files (lock, state, cache): a reader sees the old file or the
new one, never half of one. Files under the output root go through ``pixelbuild.fsguard`` instead."""

from __future__ import annotations

import contextlib
import errno
import os
from pathlib import Path

from pixelbuild.errors import disk_full
from pixelbuild.names import TEMP_PREFIX


def atomic_write_bytes(path: Path, data: bytes, *, durable: bool = False, scratch: Path | None = None) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder (or in ``scratch``) and a rename.

    With ``durable`` the data is fsync'ed before the rename (for the lock; assets can be rebuilt). A
    ``scratch`` folder (pixelbuild's own, on the same file system) keeps the temporary file that a killed
    write leaves out of the user's folder; on another file system the write falls back to ``path``'s folder.
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if scratch is not None:
            scratch.mkdir(parents=True, exist_ok=True)
        # The target's name is not part of the temporary one: a 255-byte name would push it over the limit.
        temp = (scratch or path.parent) / f"{TEMP_PREFIX}{os.urandom(8).hex()}"
        # os.open with 0o666 lets the umask decide the mode, as for any file the user creates.
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_BINARY", 0)
        fd = os.open(temp, flags, 0o666)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                if durable:
                    handle.flush()
                    os.fsync(handle.fileno())
            os.replace(temp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                temp.unlink()
            raise
    except OSError as error:
        if scratch is not None and error.errno == errno.EXDEV:
            atomic_write_bytes(path, data, durable=durable)
            return
        # A full disk is the user's to fix, not a bug: say where (a write error names no file).
        full = disk_full(error, path)
        if full is None:
            raise
        raise full from error
