"""The prompt ledger: every prompt the project hands a ComfyUI server, written down before it is posted.

A build killed with SIGKILL leaves its prompts queued on the servers, and they still run; the next build
reads this ledger and collects their results instead of paying for them again (``backend.py``).

The file is ``.pixelbuild/comfyui/prompts.jsonl`` in the project folder (``layout.ledger_path``), one JSON
object per line:

- ``{"op": "submit", "server", "prompt_id", "key", "graph", "t"}``: before ``POST /prompt`` (we choose the
  prompt id; ComfyUI keeps it), ``graph`` being ``graph_fingerprint`` of what is posted;
- ``{"op": "drop", "prompt_id"}``: the prompt is of no further use (rejected, taken back, lost);
- ``{"op": "settled", "key"}``: the generation's result is in the cache: forget every prompt of that key.

It is compacted (rewritten atomically) when a backend loads it, so it holds only prompts still worth
asking about. Every line is treated as hostile: fields are checked against strict patterns, sizes are
bounded, and a record is only ever used for a server that is configured now, for a generation key the
build needs now, and after the server's own copy of the prompt matched the fingerprint (see backend.py).
Lines are flushed one by one, like the lock's journal: a killed process loses at most the line being
written (not fsync'ed: a power cut is not what this guards against).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
import stat
import threading
import time
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from pixelbuild.backends.comfyui.messages import valid_prompt_id
from pixelbuild.fsutil import atomic_write_bytes
from pixelbuild.local.layout import ledger_path

log = logging.getLogger(__name__)

MAX_FILE_BYTES = 8 * 1024 * 1024  # more than this is not ours: read no further
MAX_LINE_CHARS = 2048
MAX_RECORDS = 20_000  # after compaction, the newest ones are kept
MAX_PER_KEY = 8  # prompts remembered per generation key (a few crashes' worth)
MAX_AGE_S = 14 * 24 * 3600.0  # ComfyUI keeps at most 10,000 history entries; older prompts are gone anyway

_KEY = re.compile(r"[A-Za-z0-9][A-Za-z0-9:._-]{0,127}\Z")
_FINGERPRINT = re.compile(r"[0-9a-f]{64}\Z")
_URL = re.compile(r"https?://[A-Za-z0-9.:\[\]_-]{1,255}(/[A-Za-z0-9._~/-]{0,200})?\Z")


def graph_fingerprint(graph: Mapping[str, Any]) -> str:
    """sha256 of the graph's JSON with sorted keys: the same for our copy and the server's (round-tripped)."""
    text = json.dumps(graph, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass(frozen=True, slots=True)
class PromptRecord:
    """One submitted prompt: where, its id, the generation key it computes, its graph's fingerprint, when."""

    server: str
    prompt_id: str
    key: str
    graph: str
    time: float

    def to_json(self) -> dict[str, Any]:
        """The ``submit`` line of this record."""
        return {
            "op": "submit",
            "server": self.server,
            "prompt_id": self.prompt_id,
            "key": self.key,
            "graph": self.graph,
            "t": round(self.time, 3),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> PromptRecord | None:
        """The record of a ``submit`` line, or None if any field is missing, mistyped or malformed."""
        server, prompt_id, key, graph, when = (data.get(name) for name in ("server", "prompt_id", "key", "graph", "t"))
        if not (isinstance(server, str) and _URL.match(server)):
            return None
        if not valid_prompt_id(prompt_id) or not (isinstance(key, str) and _KEY.match(key)):
            return None
        if not (isinstance(graph, str) and _FINGERPRINT.match(graph)):
            return None
        if isinstance(when, bool) or not isinstance(when, int | float) or not 0 <= when < 1e11:
            return None
        assert isinstance(prompt_id, str)
        return cls(server, prompt_id, key, graph, float(when))


class PromptLedger:
    """The ledger file of one project; thread-safe. ``load`` once, then ``submitted``/``dropped``/``settled``."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._handle: IO[str] | None = None
        self._broken = False  # the file cannot be written: generation goes on without a ledger

    @classmethod
    def for_project(cls, project_root: Path) -> PromptLedger:
        """The ledger of the project at ``project_root``."""
        return cls(ledger_path(project_root))

    def load(self, *, now: float | None = None) -> dict[str, list[PromptRecord]]:
        """Every live record, by generation key (oldest first), and rewrite the file with only those."""
        now = time.time() if now is None else now
        records = _fold(_read_lines(self.path))
        fresh = [record for record in records if now - MAX_AGE_S <= record.time <= now + 3600]
        by_key: dict[str, list[PromptRecord]] = {}
        for record in fresh[-MAX_RECORDS:]:
            by_key.setdefault(record.key, []).append(record)
        for items in by_key.values():
            del items[:-MAX_PER_KEY]
        kept = sorted((record for items in by_key.values() for record in items), key=lambda record: record.time)
        self._rewrite(kept)
        return by_key

    def submitted(self, record: PromptRecord) -> None:
        """Note a prompt about to be posted (call before ``POST /prompt``)."""
        self._append(record.to_json())

    def dropped(self, prompt_id: str) -> None:
        """Note that a prompt is of no further use."""
        self._append({"op": "drop", "prompt_id": prompt_id})

    def settled(self, key: str) -> None:
        """Note that the generation ``key`` is done and cached: its prompts are no longer needed."""
        self._append({"op": "settled", "key": key})

    def close(self) -> None:
        """Close the file."""
        with self._lock:
            if self._handle is not None:
                with contextlib.suppress(OSError):
                    self._handle.close()
                self._handle = None

    def _rewrite(self, records: Collection[PromptRecord]) -> None:
        with self._lock:
            if self._handle is not None:
                return  # appends have begun: never replace the file under them
            data = "".join(_line(record.to_json()) for record in records).encode("utf-8")
            try:
                if records or self.path.exists():
                    atomic_write_bytes(self.path, data)
            except OSError as error:
                self._warn(error)

    def _append(self, record: Mapping[str, Any]) -> None:
        with self._lock:
            if self._broken:
                return
            try:
                if self._handle is None:
                    self.path.parent.mkdir(parents=True, exist_ok=True)
                    # O_NOFOLLOW: a link planted there (even a dangling one) must not take our appends elsewhere.
                    flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0)
                    self._handle = os.fdopen(os.open(self.path, flags, 0o666), "a", encoding="utf-8")
                self._handle.write(_line(record))
                self._handle.flush()
            except OSError as error:
                self._warn(error)

    def _warn(self, error: OSError) -> None:
        self._broken = True
        log.warning(
            "cannot write the ComfyUI prompt ledger %s (%s): a build killed now would submit its queued prompts again",
            self.path,
            error.strerror or error,
        )


def _line(record: Mapping[str, Any]) -> str:
    return json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=True) + "\n"


def _read_lines(path: Path) -> list[str]:
    try:
        # Not a regular file (a FIFO would block the build forever): not ours; compaction replaces it.
        if not stat.S_ISREG(os.stat(path).st_mode):
            log.warning("the ComfyUI prompt ledger %s is not a regular file; ignoring it", path)
            return []
        with open(path, "rb") as handle:
            raw = handle.read(MAX_FILE_BYTES + 1)
    except FileNotFoundError:
        return []
    except OSError as error:
        log.warning("cannot read the ComfyUI prompt ledger %s: %s", path, error.strerror or error)
        return []
    if len(raw) > MAX_FILE_BYTES:
        log.warning("the ComfyUI prompt ledger %s is over %d bytes; reading its start only", path, MAX_FILE_BYTES)
        raw = raw[:MAX_FILE_BYTES]
    return raw.decode("utf-8", errors="replace").splitlines()


def _fold(lines: list[str]) -> list[PromptRecord]:
    """Apply the lines in order; keep the valid ``submit`` records not dropped or settled later."""
    live: dict[str, PromptRecord] = {}
    by_key: dict[str, set[str]] = {}
    for line in lines:
        if len(line) > MAX_LINE_CHARS:
            continue
        try:
            data = json.loads(line)
        except ValueError:
            continue  # a torn last line, or garbage
        if not isinstance(data, dict):
            continue
        op = data.get("op")
        if op == "submit":
            record = PromptRecord.from_json(data)
            if record is not None:
                live.pop(record.prompt_id, None)  # re-inserted: the newest position counts
                live[record.prompt_id] = record
                by_key.setdefault(record.key, set()).add(record.prompt_id)
        elif op == "drop" and valid_prompt_id(data.get("prompt_id")):
            live.pop(data["prompt_id"], None)
        elif op == "settled" and isinstance(data.get("key"), str):
            for prompt_id in by_key.pop(data["key"], ()):
                record = live.get(prompt_id)
                if record is not None and record.key == data["key"]:
                    del live[prompt_id]
    return list(live.values())
