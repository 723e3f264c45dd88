"""Validated manifest documents by the digest of their file's bytes (``.pixelbuild/state/manifests``).

A file whose bytes are unchanged is neither parsed nor validated again: its document comes from here. Entries
are sealed (``pixelbuild.local.seal``): one this user's pixelbuild did not write is a miss, never a way past
validation.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from pixelbuild._version import __version__
from pixelbuild.errors import ManifestError

_CACHE_FORMAT = f"1/{__version__}"
#: The largest entry read back.
_MAX_ENTRY_BYTES = 256 << 20


class ParseCache:
    """Validated documents by the digest of their file's bytes, under ``root``: the document without
    its sprites as ``<digest>.json``, the sprites as ``<digest>.sprites.json`` (read only when needed).

    A ``deferred`` cache keeps what it is given until ``flush``, so that a manifest that turns out to be
    bad (in another file, or when resolved) leaves nothing on disk. Files a worker process made
    (``sealed`` there, ``stage`` here) are served from memory and written by ``flush`` too.
    """

    def __init__(self, root: Path | None, *, deferred: bool = False) -> None:
        self.root = root
        self.deferred = deferred
        self.pending: list[tuple[str, bool, Mapping[str, Any]]] = []
        self.staged: dict[Path, bytes] = {}

    def _path(self, digest: str, is_root: bool, part: str = "") -> Path | None:
        if self.root is None:
            return None
        return self.root / f"{digest}{'.root' if is_root else ''}{part}.json"

    def _read(self, path: Path) -> Any | None:
        from pixelbuild.local.seal import read_sealed, unseal

        try:
            # Sealed: an entry this user's pixelbuild did not write (planted, carried in) is a miss, never
            # a way past validation.
            staged = self.staged.get(path)
            if staged is not None:
                payload = unseal("parse", path.name, staged)
            else:
                payload = read_sealed("parse", str(path), _MAX_ENTRY_BYTES)
            if payload is None:
                return None
            cached = json.loads(payload)
        except (OSError, ValueError):
            return None
        if not isinstance(cached, dict) or cached.get("format") != _CACHE_FORMAT:
            return None
        return cached.get("data")

    def holds(self, digest: str, is_root: bool) -> bool:
        """Whether both files of ``digest`` are on disk (whether they are sound is known only when read)."""
        header_path = self._path(digest, is_root)
        sprites_path = self._path(digest, is_root, ".sprites")
        return header_path is not None and sprites_path is not None and header_path.exists() and sprites_path.exists()

    def get(self, digest: str, is_root: bool) -> tuple[dict[str, Any], Callable[[], list[Any]]] | None:
        """The cached header of ``digest`` and a loader of its sprites, or None."""
        path = self._path(digest, is_root)
        if path is None:
            return None
        header = self._read(path)
        sprites_path = self._path(digest, is_root, ".sprites")
        if not isinstance(header, dict) or sprites_path is None:
            return None
        if sprites_path not in self.staged and not sprites_path.exists():
            return None

        def sprites() -> list[Any]:
            assert sprites_path is not None
            loaded = self._read(sprites_path)
            if not isinstance(loaded, list):
                folder = sprites_path.parent
                raise ManifestError(f"pixelbuild's parse cache is damaged; delete {folder} and build again")
            return loaded

        return header, sprites

    def flush(self) -> None:
        """Write what a deferred cache holds."""
        pending, self.pending, self.deferred = self.pending, [], False
        staged, self.staged = self.staged, {}
        for path, data in [*staged.items(), *self._sealed(pending)]:
            _write(path, data)

    def put(self, digest: str, is_root: bool, data: Mapping[str, Any]) -> None:
        """Store a validated document (best effort: a cache write never fails a build)."""
        if self.deferred:
            self.pending.append((digest, is_root, data))
            return
        for path, sealed in self._sealed([(digest, is_root, data)]):
            _write(path, sealed)

    def sealed(self) -> list[tuple[Path, bytes]]:
        """The files ``flush`` would write for what a deferred cache holds, sealed, written nowhere (a worker
        process hands them to the process that keeps them)."""
        return self._sealed(self.pending)

    def stage(self, files: Iterable[tuple[Path, bytes]]) -> None:
        """Serve ``files`` (what ``sealed`` gave in a worker process) as if on disk, and write them on ``flush``."""
        self.staged.update(files)

    def _sealed(self, documents: Iterable[tuple[str, bool, Mapping[str, Any]]]) -> list[tuple[Path, bytes]]:
        from pixelbuild.local.seal import seal

        files: list[tuple[Path, bytes]] = []
        for digest, is_root, data in documents:
            header_path = self._path(digest, is_root)
            sprites_path = self._path(digest, is_root, ".sprites")
            if header_path is None or sprites_path is None:
                continue
            header = {key: value for key, value in data.items() if key != "sprites"}
            # The sprites first: a header on disk says its sprites are there.
            for path, part in ((sprites_path, list(data.get("sprites", ()))), (header_path, header)):
                payload = json.dumps({"format": _CACHE_FORMAT, "data": part}, separators=(",", ":"))
                files.append((path, seal("parse", path.name, payload.encode("utf-8"))))
        return files


def _write(path: Path, data: bytes) -> None:
    from pixelbuild.fsutil import atomic_write_bytes

    with contextlib.suppress(OSError):  # best effort: a cache write never fails a build
        atomic_write_bytes(path, data)
