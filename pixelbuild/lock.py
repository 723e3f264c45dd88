"""The lock file (``pixelbuild.lock``) and the journal of finished work that feeds it.

The lock is JSON with deterministic bytes: sprites sorted by id, one block per sprite and one line per
field, no timestamps, so two branches that touched different sprites merge without conflict. It is
replaced atomically. During a build every finished sprite is appended to a journal
(``.pixelbuild/journal.jsonl``); the journal is folded into the lock at the end of the run, or by the
next run after a crash, so finished work survives without rewriting the lock after every sprite.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from pixelbuild.errors import ManifestError
from pixelbuild.fsutil import atomic_write_bytes

LOCK_VERSION = 1
_ENCODER = json.JSONEncoder(sort_keys=True, ensure_ascii=False)


@dataclass(frozen=True, slots=True)
class OutputRecord:
    """One file a build wrote: its path under the output root and its byte hash; for images also the
    hash of the decoded pixels and the size (an atlas's data files have none)."""

    path: str
    file_hash: str
    pixel_hash: str | None = None
    width: int | None = None
    height: int | None = None

    def to_json(self) -> dict[str, Any]:
        """The record as a JSON object."""
        record: dict[str, Any] = {"path": self.path, "file_hash": self.file_hash}
        if self.pixel_hash is not None:
            record.update(pixel_hash=self.pixel_hash, width=self.width, height=self.height)
        return record

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> OutputRecord:
        """Read a record written by ``to_json``."""
        if "pixel_hash" not in data:
            return cls(data["path"], data["file_hash"])
        return cls(data["path"], data["file_hash"], data["pixel_hash"], int(data["width"]), int(data["height"]))


@dataclass(frozen=True, slots=True)
class AtlasEntry:
    """What the lock knows of one atlas: its pack key, members and the files it wrote."""

    pack_key: str
    members: tuple[str, ...]
    outputs: tuple[OutputRecord, ...]

    def to_json(self) -> dict[str, Any]:
        """The entry as a JSON object."""
        return {
            "pack_key": self.pack_key,
            "members": list(self.members),
            "outputs": [output.to_json() for output in self.outputs],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> AtlasEntry:
        """Read an entry written by ``to_json``."""
        return cls(data["pack_key"], tuple(data["members"]), tuple(OutputRecord.from_json(o) for o in data["outputs"]))


@dataclass(frozen=True, slots=True)
class LockEntry:
    """What the lock knows of one sprite: its stage keys, seeds, generator identity and outputs."""

    generations: tuple[tuple[str, int], ...]
    post_key: str
    backend: Mapping[str, Any]
    fields: Mapping[str, str]
    outputs: tuple[OutputRecord, ...]

    @property
    def generation_keys(self) -> tuple[str, ...]:
        """The generation keys, in frame order."""
        return tuple(key for key, _seed in self.generations)

    def to_json(self) -> dict[str, Any]:
        """The entry as a JSON object."""
        return {
            "generations": [{"key": key, "seed": seed} for key, seed in self.generations],
            "post_key": self.post_key,
            "backend": dict(self.backend),
            "fields": dict(self.fields),
            "outputs": [output.to_json() for output in self.outputs],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> LockEntry:
        """Read an entry written by ``to_json``."""
        return cls(
            generations=tuple((item["key"], int(item["seed"])) for item in data["generations"]),
            post_key=data["post_key"],
            backend=data["backend"],
            fields=data["fields"],
            outputs=tuple(OutputRecord.from_json(item) for item in data["outputs"]),
        )


@dataclass(slots=True)
class Lock:
    """The whole lock: an entry per sprite id and one per atlas id."""

    sprites: dict[str, LockEntry] = field(default_factory=dict)
    atlases: dict[str, AtlasEntry] = field(default_factory=dict)


def _render_section(entries: Mapping[str, LockEntry] | Mapping[str, AtlasEntry]) -> str:
    if not entries:
        return "{}"
    blocks = []
    for entry_id in sorted(entries):
        entry = entries[entry_id].to_json()
        body = ",\n".join(f'      "{name}": {_ENCODER.encode(entry[name])}' for name in sorted(entry))
        blocks.append(f"    {_ENCODER.encode(entry_id)}: {{\n{body}\n    }}")
    return "{\n" + ",\n".join(blocks) + "\n  }"


def lock_outputs(lock: Lock) -> list[OutputRecord]:
    """Every output the lock records, sprites' and atlases'."""
    records = [output for entry in lock.sprites.values() for output in entry.outputs]
    records += [output for atlas in lock.atlases.values() for output in atlas.outputs]
    return records


def render_lock(lock: Lock) -> bytes:
    """Serialise ``lock`` to its deterministic bytes (``atlases`` only when there are some)."""
    lines = ["{", f'  "version": {LOCK_VERSION},']
    if lock.atlases:
        lines.append(f'  "atlases": {_render_section(lock.atlases)},')
    lines.append(f'  "sprites": {_render_section(lock.sprites)}')
    lines.append("}")
    return ("\n".join(lines) + "\n").encode("utf-8")


def parse_lock(raw: bytes, display: str) -> Lock:
    """Parse lock bytes; a damaged lock is a ManifestError naming the file and line."""
    try:
        data = json.loads(raw)
    except ValueError as error:
        line = getattr(error, "lineno", None)
        raise ManifestError(
            f"the lock file is not valid JSON ({getattr(error, 'msg', error)}); restore it from version "
            "control, or delete it to rebuild every sprite",
            file=display,
            line=line,
        ) from None
    if not isinstance(data, dict) or data.get("version") != LOCK_VERSION:
        raise ManifestError(
            f"unsupported lock format (expected version {LOCK_VERSION}); was it written by a newer pixelbuild?",
            file=display,
            line=1,
        )
    try:
        sprites = {sprite_id: LockEntry.from_json(entry) for sprite_id, entry in data.get("sprites", {}).items()}
        atlases = {atlas_id: AtlasEntry.from_json(entry) for atlas_id, entry in data.get("atlases", {}).items()}
    except (KeyError, TypeError, ValueError) as error:
        raise ManifestError(f"the lock file has a malformed entry ({error!r})", file=display) from None
    return Lock(sprites, atlases)


def read_lock(path: Path, display: str | None = None) -> Lock:
    """Read the lock at ``path``; a missing lock is an empty one."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return Lock()
    return parse_lock(raw, display or str(path))


def write_lock(path: Path, lock: Lock) -> bytes:
    """Atomically replace the lock at ``path``; return the bytes written."""
    raw = render_lock(lock)
    atomic_write_bytes(path, raw, durable=True)
    return raw


class Journal:
    """Append-only record of finished sprites, one JSON object per line; safe to call from threads."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._handle: IO[str] | None = None

    def _write(self, record: Mapping[str, Any]) -> None:
        line = json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=False) + "\n"
        with self._lock:
            if self._handle is None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._handle = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 - kept open for the run
            # One write + flush per line: a crash loses at most the line being written.
            self._handle.write(line)
            self._handle.flush()

    def record_set(self, sprite_id: str, entry: LockEntry) -> None:
        """Note that ``sprite_id`` finished with ``entry``."""
        self._write({"op": "set", "id": sprite_id, "entry": entry.to_json()})

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
        """Close the file (it stays on disk until folded)."""
        with self._lock:
            if self._handle is not None:
                self._handle.close()
                self._handle = None


def read_journal(path: Path) -> list[dict[str, Any]]:
    """Every complete record of the journal at ``path`` (a torn last line is ignored)."""
    try:
        text = path.read_text("utf-8")
    except FileNotFoundError:
        return []
    records = []
    for line in text.splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue  # the line a crash cut short
        if isinstance(record, dict) and record.get("op") in _JOURNAL_OPS and "id" in record:
            records.append(record)
    return records


_JOURNAL_OPS = ("set", "remove", "set_atlas", "remove_atlas")


def apply_journal(lock: Lock, records: Iterable[Mapping[str, Any]]) -> Lock:
    """Return ``lock`` with the journal ``records`` applied in order."""
    sprites = dict(lock.sprites)
    atlases = dict(lock.atlases)
    for record in records:
        op = record["op"]
        if op == "set":
            sprites[record["id"]] = LockEntry.from_json(record["entry"])
        elif op == "remove":
            sprites.pop(record["id"], None)
        elif op == "set_atlas":
            atlases[record["id"]] = AtlasEntry.from_json(record["entry"])
        else:
            atlases.pop(record["id"], None)
    return Lock(sprites, atlases)
