"""The journal (``.pixelbuild/journal.jsonl``): work finished since the lock was last written.

Each finished sprite or atlas appends one JSON line as soon as it is done, so an interrupted build loses
nothing: the next build (or ``check``, ``plan``) folds the journal into the lock (``lock.apply_journal``).
Every line read back is checked as the lock's entries are (``lock.journal_record``); a damaged or crafted
one is ignored with a warning, never acted on.
"""

from __future__ import annotations

import contextlib
import json
import os
import stat
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from pixelbuild.errors import disk_full
from pixelbuild.hashing import loads_finite
from pixelbuild.lock import MAX_LOCK_BYTES, LockFormatError, journal_record
from pixelbuild.notices import warn_once

if TYPE_CHECKING:
    from pixelbuild.lock import AtlasEntry, LockEntry

#: The largest journal read back: as large as a lock may be.
MAX_JOURNAL_BYTES = MAX_LOCK_BYTES


class Journal:
    """Append-only record of finished sprites, one JSON object per line; safe to call from threads."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._handle: IO[str] | None = None
        self._closed = False

    def _write(self, *records: Mapping[str, Any]) -> None:
        text = "".join(
            json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=False) + "\n" for record in records
        )
        with self._lock:
            if self._closed:
                return  # work in flight when the build stopped: the next build restores or redoes it
            try:
                if self._handle is None:
                    self.path.parent.mkdir(parents=True, exist_ok=True)
                    self._handle = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 - kept open for the run
                # One write + flush per call: a crash loses at most the lines being written (a torn last line
                # is skipped when read back).
                self._handle.write(text)
                self._handle.flush()
            except OSError as error:
                full = disk_full(error, self.path)
                if full is None:
                    raise
                # Drop the handle: its buffer holds a torn line that a later flush must not append.
                handle, self._handle = self._handle, None
                if handle is not None:
                    with contextlib.suppress(OSError):
                        handle.close()
                raise full from error

    def record_set(self, sprite_id: str, entry: LockEntry) -> None:
        """Note that ``sprite_id`` finished with ``entry``."""
        self._write({"op": "set", "id": sprite_id, "entry": entry.to_json()})

    def record_sets(self, entries: Sequence[tuple[str, LockEntry]]) -> None:
        """Note that each sprite finished with its entry, in one write."""
        self._write(*({"op": "set", "id": sprite_id, "entry": entry.to_json()} for sprite_id, entry in entries))

    def record_remove(self, sprite_id: str) -> None:
        """Note that ``sprite_id``'s outputs were removed."""
        self._write({"op": "remove", "id": sprite_id})

    def record_atlas(self, atlas_id: str, entry: AtlasEntry) -> None:
        """Note that atlas ``atlas_id`` was packed into ``entry``."""
        self._write({"op": "set_atlas", "id": atlas_id, "entry": entry.to_json()})

    def record_atlas_remove(self, atlas_id: str) -> None:
        """Note that atlas ``atlas_id``'s outputs were removed."""
        self._write({"op": "remove_atlas", "id": atlas_id})

    def close(self) -> None:
        """Close the file (it stays on disk until folded); later records are dropped, so a thread that
        outlives an interrupted build cannot bring back a journal the lock has already folded."""
        with self._lock:
            self._closed = True
            handle, self._handle = self._handle, None
            if handle is not None:
                try:
                    handle.close()
                except OSError as error:
                    full = disk_full(error, self.path)
                    if full is None:
                        raise
                    raise full from error


def read_journal(path: Path) -> list[dict[str, Any]]:
    """Every complete, valid record of the journal at ``path``, its entry already parsed.

    A torn last line (a crash mid-write) is ignored silently; any other damaged or crafted record is
    ignored with one warning, never acted on.
    """
    try:
        with os.fdopen(os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0)), "rb") as handle:
            info = os.fstat(handle.fileno())
            if not stat.S_ISREG(info.st_mode) or info.st_size > MAX_JOURNAL_BYTES:
                warn_once("journal", f"ignored {path}: not a journal pixelbuild writes (too large, or not a file)")
                return []
            text = handle.read().decode("utf-8", "replace")
    except FileNotFoundError:
        return []
    records = []
    damaged = 0
    lines = text.splitlines()
    for number, line in enumerate(lines, 1):
        try:
            record = loads_finite(line)
        except (ValueError, RecursionError):  # NonFiniteNumber included: damage, as any record pixelbuild did not write
            damaged += number < len(lines)  # the last line may be the one a crash cut short
            continue
        try:
            records.append(journal_record(record))
        except LockFormatError:
            damaged += 1
    if damaged:
        warn_once("journal", f"ignored {damaged} damaged record(s) in {path}")
    return records
