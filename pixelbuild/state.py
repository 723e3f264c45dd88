"""Local build state under ``.pixelbuild/state`` (never committed, always safe to delete).

* ``FileHashCache``: content hashes of files, trusted while their size, mtime, ctime and inode are
  unchanged (as git's index does, racily clean files excepted), so a build does not re-read every asset.
* The no-op *stamp* (written here, checked by ``pixelbuild.noop``): after a build that left everything up
  to date, what it read (manifest digests, include globs, referenced files' stats, the lock's digest) and
  wrote (outputs' stats).
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import xxhash

from pixelbuild import __version__
from pixelbuild.noop import STAMP_FORMAT, Signature, file_digest, is_racy, ref_path, signatures, stat_signature
from pixelbuild.statekey import read_sealed, seal

#: Entries are (size, mtime, ctime, inode, digest) since format 2.
_HASHES_FORMAT = f"2/{__version__}"


class FileHashCache:
    """xxh3_128 digests of files by absolute path, reused while (size, mtime, ctime, inode) match.

    A file changed just before its stats were taken (``noop.is_racy``) is racily clean (a second change
    in the same timestamp tick would look the same), so its digest is not kept: it is hashed again.
    """

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._entries: dict[str, list[Any]] | None = None
        self._dirty = False
        # Taken before any stat of this run, so every signature below is at least this recent.
        self._taken_ns = time.time_ns()

    def _load(self) -> dict[str, list[Any]]:
        if self._entries is None:
            self._entries = {}
            if self.path is not None:
                try:
                    # Sealed: a planted table could make a hand-made file look like one pixelbuild wrote.
                    payload = read_sealed("hashes", str(self.path), 256 << 20)
                    data = json.loads(payload) if payload is not None else None
                    if isinstance(data, dict) and data.get("version") == _HASHES_FORMAT:
                        files = data.get("files")
                        self._entries = files if isinstance(files, dict) else {}
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
        if isinstance(cached, list) and len(cached) == 5 and tuple(cached[:4]) == signature:
            return str(cached[4])
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
        from pixelbuild.fsutil import atomic_write_bytes

        payload = json.dumps({"version": _HASHES_FORMAT, "files": self._entries}, separators=(",", ":"))
        try:
            atomic_write_bytes(self.path, seal("hashes", self.path.name, payload.encode("utf-8")))
            self._dirty = False
        except OSError:
            pass


@dataclass(frozen=True, slots=True)
class StampInputs:
    """What a finished, fully up-to-date build read and wrote; every path relative to the project."""

    project_dir: str  # the project folder's real path (a copy or a move must verify once)
    manifest: str  # the manifest's file name: the stamp belongs to it
    manifests: Sequence[tuple[str, str]]  # (path, digest of bytes)
    globs: Sequence[tuple[str, str, Sequence[str]]]  # (base folder, pattern, sorted matches)
    files: Sequence[str]  # referenced files: project paths or ``builtin:<name>``
    absent: Sequence[str]  # paths that must not exist
    lock_digest: str
    output: str  # the output root
    outputs: Sequence[str]  # every output, relative to the output root
    sprites: int


def write_stamp(path: Path, inputs: StampInputs) -> None:
    """Record a no-op stamp (the stats of files and outputs are taken now; racily clean ones are hashed)."""
    from pixelbuild.fsutil import atomic_write_bytes

    # Taken before any stat: a file changed since (or just before) cannot look older than this.
    taken_ns = time.time_ns()
    output_dir = os.path.join(inputs.project_dir, inputs.output)
    racy: list[list[str]] = []
    groups: dict[str, dict[str, Any]] = {}
    try:
        for group, base, paths, resolve in (
            ("files", inputs.project_dir, list(inputs.files), True),
            ("outputs", output_dir, list(inputs.outputs), False),
        ):
            flat = signatures(base, paths, resolve, taken_ns)
            for index, item in enumerate(paths):
                size, mtime, change, inode = flat[4 * index : 4 * index + 4]
                signature = (size, mtime + taken_ns, mtime + change + taken_ns, inode)
                if is_racy(signature, taken_ns):
                    full = ref_path(base, item) if resolve else os.path.join(base, item)
                    digest = file_digest(full)
                    if digest is None or stat_signature(full) != signature:
                        raise FileNotFoundError(item)  # changing under our feet: no stamp
                    racy.append([group, item, digest])
            groups[group] = {"paths": paths, "signatures": flat}
    except OSError:
        clear_stamp(path)
        return
    payload = {
        "format": STAMP_FORMAT,
        "version": __version__,
        "project": inputs.project_dir,
        "manifest": inputs.manifest,
        "manifests": [list(row) for row in inputs.manifests],
        "globs": [[base, pattern, list(matches)] for base, pattern, matches in inputs.globs],
        "absent": list(inputs.absent),
        "lock": inputs.lock_digest,
        "output": inputs.output,
        "t0": taken_ns,
        "files": groups["files"],
        "outputs": groups["outputs"],
        "racy": racy,
        "sprites": inputs.sprites,
    }
    atomic_write_bytes(path, seal("stamp", path.name, json.dumps(payload, separators=(",", ":")).encode("utf-8")))


def clear_stamp(path: Path) -> None:
    """Forget the stamp: the next build takes the full path."""
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
