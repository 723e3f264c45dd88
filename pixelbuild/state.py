"""Local build state under ``.pixelbuild/state`` (never committed, always safe to delete).

* ``FileHashCache``: content hashes of files, trusted while their size and mtime are unchanged (as git's
  index does), so a build does not re-read every asset.
* The no-op *stamp* (written here, checked by ``pixelbuild.noop``): after a build that left everything up
  to date, what it read (manifest digests, include globs, referenced files' stats, the lock's digest) and
  wrote (outputs' stats).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import xxhash

from pixelbuild import __version__
from pixelbuild.noop import STAMP_FORMAT, stat_signature


class FileHashCache:
    """xxh3_128 digests of files by absolute path, reused while (size, mtime_ns) match."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._entries: dict[str, list[Any]] | None = None
        self._dirty = False

    def _load(self) -> dict[str, list[Any]]:
        if self._entries is None:
            self._entries = {}
            if self.path is not None:
                try:
                    data = json.loads(self.path.read_bytes())
                    if isinstance(data, dict) and data.get("version") == __version__:
                        self._entries = data["files"]
                except (OSError, ValueError, KeyError):
                    pass
        return self._entries

    def hash(self, path: Path | str) -> str | None:
        """The content hash of ``path``, or None if it does not exist."""
        entries = self._load()
        key = str(path)
        signature = stat_signature(key)
        if signature is None:
            return None
        cached = entries.get(key)
        if cached is not None and (cached[0], cached[1]) == signature:
            return str(cached[2])
        hasher = xxhash.xxh3_128()
        try:
            with open(key, "rb") as handle:
                while chunk := handle.read(1 << 20):
                    hasher.update(chunk)
        except OSError:
            return None
        digest = hasher.hexdigest()
        self.remember(path, digest, signature)
        return digest

    def remember(self, path: Path | str, digest: str, signature: tuple[int, int] | None = None) -> None:
        """Record that ``path`` (as it is now on disk) has content hash ``digest``."""
        if signature is None:
            signature = stat_signature(str(path))
            if signature is None:
                return
        self._load()[str(path)] = [signature[0], signature[1], digest]
        self._dirty = True

    def save(self) -> None:
        """Write the cache back if it changed (best effort)."""
        if not self._dirty or self.path is None or self._entries is None:
            return
        from pixelbuild.fsutil import atomic_write_bytes

        payload = json.dumps({"version": __version__, "files": self._entries}, separators=(",", ":"))
        try:
            atomic_write_bytes(self.path, payload.encode("utf-8"))
            self._dirty = False
        except OSError:
            pass


@dataclass(frozen=True, slots=True)
class StampInputs:
    """What a finished, fully up-to-date build read and wrote."""

    manifests: Sequence[tuple[str, str]]  # (absolute path, digest of bytes)
    globs: Sequence[tuple[str, str, Sequence[str]]]  # (base folder, pattern, sorted matches)
    files: Sequence[str]  # absolute paths of referenced files
    absent: Sequence[str]  # absolute paths that must not exist
    lock_digest: str
    outputs: Sequence[str]  # absolute paths of every output
    sprites: int


def write_stamp(path: Path, inputs: StampInputs) -> None:
    """Record a no-op stamp (the stats of files and outputs are taken now)."""
    from pixelbuild.fsutil import atomic_write_bytes

    def stats(paths: Iterable[str]) -> list[list[Any]]:
        rows = []
        for item in paths:
            signature = stat_signature(item)
            if signature is None:
                raise FileNotFoundError(item)
            rows.append([item, signature[0], signature[1]])
        return rows

    try:
        payload = {
            "format": STAMP_FORMAT,
            "version": __version__,
            "manifests": [list(row) for row in inputs.manifests],
            "globs": [[base, pattern, list(matches)] for base, pattern, matches in inputs.globs],
            "files": stats(inputs.files),
            "absent": list(inputs.absent),
            "lock": inputs.lock_digest,
            "outputs": stats(inputs.outputs),
            "sprites": inputs.sprites,
        }
    except FileNotFoundError:
        clear_stamp(path)
        return
    atomic_write_bytes(path, json.dumps(payload, separators=(",", ":")).encode("utf-8"))


def clear_stamp(path: Path) -> None:
    """Forget the stamp: the next build takes the full path."""
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
