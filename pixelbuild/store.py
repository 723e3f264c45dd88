"""The local content-addressed cache (``.pixelbuild/cache``), after Bazel's action cache + CAS.

*Blobs* are files named by the hash of their bytes. *Actions* map a stage key (a generation key or a
post key) to a small JSON record naming the blobs it produced. Reverting a manifest edit finds the old
key's action again, so the old asset comes back with no generator call.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pixelbuild.fsutil import atomic_write_bytes
from pixelbuild.hashing import hash_bytes, loads_finite

ACTION_KINDS = ("gen", "post", "pack")
#: Blob names are xxh3-128 digests; anything else read back from a record is damage (or an attack).
_DIGEST = re.compile(r"[0-9a-f]{32}")
#: The largest action record read back (they are small: a few blob names and an identity).
MAX_RECORD_BYTES = 1 << 20
#: The most images one record may name (a batch of frames, or an atlas's files).
MAX_RECORD_IMAGES = 4096


def valid_record(kind: str, record: Any) -> bool:
    """Whether ``record`` has the shape the engine writes for stage ``kind``: one or more images whose
    blob names are 32 hex digits (they become paths under the cache), sane sizes, bounded lists."""
    if not isinstance(record, dict):
        return False
    images = record.get("images")
    if not isinstance(images, list) or not 0 < len(images) <= MAX_RECORD_IMAGES:
        return False
    needed = {"pixel_hash", "width", "height"} if kind == "post" else {"blob"}
    for item in images:
        if not isinstance(item, dict) or not needed <= item.keys():
            return False
        if not isinstance(item.get("blob"), str) or not _DIGEST.fullmatch(item["blob"]):
            return False
        for name in ("width", "height"):
            if name in item and not (type(item[name]) is int and 0 < item[name] <= 1 << 20):
                return False
        if "pixel_hash" in item and not (isinstance(item["pixel_hash"], str) and _DIGEST.fullmatch(item["pixel_hash"])):
            return False
    return kind == "pack" or isinstance(record.get("identity"), dict)


def _refuse_linked_shard(path: Path) -> None:
    # The folders above the shard are checked once per command (``ProjectPaths.check_state``).
    if os.path.islink(path.parent):
        from pixelbuild.fsguard import LinkedStateError

        raise LinkedStateError(
            f"{path.parent} is a symbolic link; pixelbuild never writes through a link in its cache. Remove the "
            "link and run again"
        )


def _entries(top: Path, suffix: str, *, files: bool = True) -> list[Path]:
    """The regular files ``top/<2 hex>/<name><suffix>`` (with ``files=False``, one path inside each such shard
    folder), never following a link: ``top`` or a shard that is a link is skipped, as is a file that is one."""
    found: list[Path] = []
    if os.path.islink(top) or not os.path.isdir(top):
        return found
    with os.scandir(top) as shards:
        for shard in shards:
            if not shard.is_dir(follow_symlinks=False):
                continue
            if not files:
                found.append(Path(shard.path) / "-")
                continue
            with os.scandir(shard.path) as names:
                found += [
                    Path(name.path)
                    for name in names
                    if name.name.endswith(suffix) and name.is_file(follow_symlinks=False)
                ]
    return found


@dataclass(frozen=True, slots=True)
class GcReport:
    """What ``Store.gc`` removed."""

    actions: int
    blobs: int
    bytes: int


class Store:
    """Blobs and action records under ``root``; safe for concurrent writers (atomic renames)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _blob_path(self, digest: str) -> Path:
        if not _DIGEST.fullmatch(digest):
            raise ValueError(f"not a blob name: {digest!r}")
        return self.root / "blobs" / digest[:2] / digest

    def _action_path(self, kind: str, key: str) -> Path:
        if kind not in ACTION_KINDS or not _DIGEST.fullmatch(key):
            raise ValueError(f"not an action: {kind!r} {key!r}")
        return self.root / "actions" / kind / key[:2] / f"{key}.json"

    def put_blob(self, data: bytes) -> str:
        """Store ``data`` (if not already there) and return its hash."""
        digest = hash_bytes(data)
        path = self._blob_path(digest)
        if not path.exists():
            _refuse_linked_shard(path)
            atomic_write_bytes(path, data)
        return digest

    def read_blob(self, digest: str) -> bytes | None:
        """The bytes of blob ``digest``, or None if it is missing or damaged (a damaged one is deleted, so
        that storing the right bytes again replaces it)."""
        if not isinstance(digest, str) or not _DIGEST.fullmatch(digest):
            return None
        path = self._blob_path(digest)
        try:
            data = path.read_bytes()
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            return None
        if hash_bytes(data) != digest:
            with contextlib.suppress(OSError):
                path.unlink()
            return None
        return data

    def blob_path(self, digest: str) -> Path:
        """Where blob ``digest`` lives (for readers that link or stream it; it may be absent)."""
        return self._blob_path(digest)

    def has_blob(self, digest: str) -> bool:
        """Whether blob ``digest`` is present (not verified)."""
        return isinstance(digest, str) and bool(_DIGEST.fullmatch(digest)) and self._blob_path(digest).is_file()

    def put_action(self, kind: str, key: str, record: Mapping[str, Any]) -> None:
        """Record that stage ``kind`` with ``key`` produced ``record`` (which names its blobs)."""
        payload = json.dumps(record, sort_keys=True, separators=(",", ":")).encode("utf-8")
        path = self._action_path(kind, key)
        _refuse_linked_shard(path)
        atomic_write_bytes(path, payload)

    def get_action(self, kind: str, key: str) -> dict[str, Any] | None:
        """The record of a stage run, or None if absent, unreadable or missing a blob."""
        path = self._action_path(kind, key)
        try:
            with open(path, "rb") as handle:
                raw = handle.read(MAX_RECORD_BYTES + 1)
            record: dict[str, Any] | None = loads_finite(raw)
        except FileNotFoundError:
            return None
        except (OSError, ValueError, RecursionError):
            record = None
        if record is None or len(raw) > MAX_RECORD_BYTES or not valid_record(kind, record):
            return None  # damaged or crafted: a cache miss (the build drops it and says so), never acted on
        if not all(self.has_blob(item["blob"]) for item in record["images"]):
            return None
        with contextlib.suppress(OSError):
            os.utime(path)  # last use, for gc --keep-days
        return record

    def drop_action(self, kind: str, key: str) -> None:
        """Forget the record of a stage run (it is missing a blob or damaged)."""
        with contextlib.suppress(OSError):
            self._action_path(kind, key).unlink()

    def has_action(self, kind: str, key: str) -> bool:
        """Whether a usable record of stage ``kind`` with ``key`` exists."""
        return self._action_path(kind, key).is_file()

    def gc(self, live: Iterable[tuple[str, str]], keep_seconds: float = 0.0) -> GcReport:
        """Delete actions not in ``live`` (and not used within ``keep_seconds``), then unreferenced blobs."""
        live_set = set(live)
        cutoff = time.time() - keep_seconds
        removed_actions = 0
        referenced: set[str] = set()
        for kind in ACTION_KINDS:
            for path in _entries(self.root / "actions" / kind, ".json"):
                key = path.stem
                keep = (kind, key) in live_set or (keep_seconds > 0 and path.stat().st_mtime >= cutoff)
                if keep:
                    try:
                        record = loads_finite(path.read_bytes()) if path.stat().st_size <= MAX_RECORD_BYTES else None
                    except (OSError, ValueError, RecursionError):
                        record = None
                    if record is not None and valid_record(kind, record):
                        referenced.update(item["blob"] for item in record["images"])
                        continue
                    # an unreadable or crafted record is garbage
                path.unlink(missing_ok=True)
                removed_actions += 1
        removed_blobs = 0
        freed = 0
        for path in _entries(self.root / "blobs", ""):
            if path.name not in referenced:
                freed += path.stat().st_size
                path.unlink(missing_ok=True)
                removed_blobs += 1
        shards = [path.parent for path in _entries(self.root / "blobs", "", files=False)]
        for kind in ACTION_KINDS:
            shards += [path.parent for path in _entries(self.root / "actions" / kind, "", files=False)]
        for folder in shards:
            with contextlib.suppress(OSError):
                folder.rmdir()
        return GcReport(removed_actions, removed_blobs, freed)
