"""The lock file (``pixelbuild.lock``) and the journal of finished work that feeds it.

The lock is JSON with deterministic bytes: sprites sorted by id, one block per sprite and one line per
field, no timestamps, so two branches that touched different sprites merge without conflict. It is
replaced atomically. During a build every finished sprite is appended to a journal
(``.pixelbuild/journal.jsonl``, written and read by ``pixelbuild.local.journal``); the journal is folded
into the lock here (``apply_journal``) at the end of the run, or by the next run after a crash, so finished
work survives without rewriting the lock after every sprite.
"""

from __future__ import annotations

import json
import os
import re
import stat
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import msgspec

from pixelbuild.errors import ManifestError
from pixelbuild.fsguard import all_confined, confined_path_problem
from pixelbuild.hashing import NonFiniteNumber, finite_float, loads_finite

LOCK_VERSION = 1
_ENCODER = json.JSONEncoder(sort_keys=True, ensure_ascii=False)

#: The largest lock (and journal) pixelbuild reads: ~1 KB per sprite, so room for 250,000 sprites.
MAX_LOCK_BYTES = 256 << 20
#: The most outputs one lock entry may list (a sprite has one; an atlas its image and data files).
MAX_OUTPUTS = 64
#: The most generations (frames) and atlas members one entry may list.
MAX_ITEMS = 1 << 20
_HEX_KEY = re.compile(r"[0-9a-f]{32}")
_FIELD_DIGESTS = re.compile(r"(?:[0-9a-f]{16})*")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class LockFormatError(ValueError):
    """A lock or journal entry that is not what pixelbuild writes; ``needle`` helps find its line."""

    def __init__(self, message: str, needle: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.needle = needle


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise LockFormatError(message)


def _hex_key(value: Any, what: str) -> str:
    if type(value) is not str or _HEX_KEY.fullmatch(value) is None:
        raise LockFormatError(f"{what} is not a 32-digit hex key")
    return value


def _output_path(value: Any) -> str:
    problem = confined_path_problem(value)
    if problem is None:
        return str(value)
    shown = value if isinstance(value, str) else repr(value)
    raise LockFormatError(
        f"output path {json.dumps(shown, ensure_ascii=False)[:300]} {problem}; every output must be a "
        "normalised relative path inside the output root, and pixelbuild never writes or deletes anything else",
        needle=json.dumps(value, ensure_ascii=False) if isinstance(value, str) else None,
    )


def _size(value: Any) -> int:
    _require(type(value) is int and 0 < value <= 1 << 20, "an output's width or height is not a sane size")
    return int(value)


def _list(value: Any, what: str, limit: int) -> list[Any]:
    if not isinstance(value, list) or len(value) > limit:
        raise LockFormatError(f"{what} is not a list of at most {limit} items")
    return value


def _object(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise LockFormatError(f"{what} is not an object")
    return value


class OutputRecord(msgspec.Struct, frozen=True):
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
    def from_json(cls, data: Any) -> OutputRecord:
        """Read a record written by ``to_json``; raise ``LockFormatError`` on anything else."""
        data = _object(data, "an output")
        path = _output_path(data.get("path"))
        file_hash = _hex_key(data.get("file_hash"), "an output's file_hash")
        if "pixel_hash" not in data:
            return cls(path, file_hash)
        pixels = _hex_key(data["pixel_hash"], "an output's pixel_hash")
        return cls(path, file_hash, pixels, _size(data.get("width")), _size(data.get("height")))


class AtlasEntry(msgspec.Struct, frozen=True):
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
    def from_json(cls, data: Any) -> AtlasEntry:
        """Read an entry written by ``to_json``; raise ``LockFormatError`` on anything else."""
        data = _object(data, "an atlas entry")
        members = _list(data.get("members"), "members", MAX_ITEMS)
        _require(all(isinstance(member, str) for member in members), "a member is not a sprite id")
        outputs = _list(data.get("outputs"), "outputs", MAX_OUTPUTS)
        return cls(
            _hex_key(data.get("pack_key"), "pack_key"),
            tuple(members),
            tuple(OutputRecord.from_json(output) for output in outputs),
        )


class LockEntry(msgspec.Struct, frozen=True):
    """What the lock knows of one sprite: its stage keys, seeds, generator identity and outputs."""

    generations: tuple[tuple[str, int], ...]
    post_key: str
    backend: Mapping[str, Any]
    fields: Mapping[str, str]
    outputs: tuple[OutputRecord, ...]

    @property
    def generation_keys(self) -> tuple[str, ...]:
        """The generation keys, in frame order."""
        return tuple([key for key, _seed in self.generations])

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
    def from_json(cls, data: Any) -> LockEntry:
        """Read an entry written by ``to_json``; raise ``LockFormatError`` on anything else."""
        data = _object(data, "a sprite entry")
        generations = []
        for item in _list(data.get("generations"), "generations", MAX_ITEMS):
            item = _object(item, "a generation")
            seed = item.get("seed")
            if type(seed) is not int:
                raise LockFormatError("a generation's seed is not an integer")
            generations.append((_hex_key(item.get("key"), "a generation key"), seed))
        fields = _object(data.get("fields"), "fields")
        try:  # one match for all digests: this runs for every sprite of the lock
            digests = "".join(fields.values())
        except TypeError:
            digests = "?"
        _require(
            _FIELD_DIGESTS.fullmatch(digests) is not None and len(digests) == 16 * len(fields),
            "a field digest is not 16 hex digits",
        )
        return cls(
            generations=tuple(generations),
            post_key=_hex_key(data.get("post_key"), "post_key"),
            backend=_object(data.get("backend"), "backend"),
            fields=fields,
            outputs=tuple(OutputRecord.from_json(item) for item in _list(data.get("outputs"), "outputs", MAX_OUTPUTS)),
        )


class Lock(msgspec.Struct):
    """The whole lock: an entry per sprite id and one per atlas id."""

    sprites: dict[str, LockEntry] = msgspec.field(default_factory=dict)
    atlases: dict[str, AtlasEntry] = msgspec.field(default_factory=dict)


def _render_block(entry_id: str, entry: LockEntry | AtlasEntry) -> str:
    """One entry's block, ``    "<id>": {`` to ``    }``: the unit ``render_lock`` joins and ``splice_lock`` swaps."""
    try:
        return _render_known(entry_id, entry)
    except TypeError:  # a value of a type pixelbuild does not write there: the encoder renders it, as ever
        return _render_encoded(entry_id, entry)


def _render_encoded(entry_id: str, entry: LockEntry | AtlasEntry) -> str:
    """``_render_block`` by the JSON encoder, field by field: the definition of a block's bytes."""
    data = entry.to_json()
    body = ",\n".join(f'      "{name}": {_ENCODER.encode(data[name])}' for name in sorted(data))
    return f"    {_ENCODER.encode(entry_id)}: {{\n{body}\n    }}"


#: What ``_ENCODER`` writes for a string (``ensure_ascii=False``); raises TypeError for anything else.
_string = json.encoder.encode_basestring


def _integer(value: Any) -> str:
    if type(value) is not int:  # a bool or a float renders otherwise: the encoder does it
        raise TypeError
    return int.__repr__(value)


def _render_output(output: OutputRecord) -> str:
    # The keys of OutputRecord.to_json, sorted.
    if output.pixel_hash is None:
        return f'{{"file_hash": {_string(output.file_hash)}, "path": {_string(output.path)}}}'
    return (
        f'{{"file_hash": {_string(output.file_hash)}, "height": {_integer(output.height)}, '
        f'"path": {_string(output.path)}, "pixel_hash": {_string(output.pixel_hash)}, '
        f'"width": {_integer(output.width)}}}'
    )


def _render_known(entry_id: str, entry: LockEntry | AtlasEntry) -> str:
    """``_render_encoded``'s bytes, written from the fields' known shapes (a 10,000-sprite lock renders 4x
    faster); TypeError for a value of another type. A test holds the two to the same bytes."""
    outputs = ", ".join([_render_output(output) for output in entry.outputs])
    if isinstance(entry, AtlasEntry):
        members = ", ".join([_string(member) for member in entry.members])
        pack_key = _string(entry.pack_key)
        body = f'      "members": [{members}],\n      "outputs": [{outputs}],\n      "pack_key": {pack_key}'
    else:
        fields = entry.fields
        digests = ", ".join([f"{_string(name)}: {_string(fields[name])}" for name in sorted(fields)])
        generations = ", ".join(
            [f'{{"key": {_string(key)}, "seed": {_integer(seed)}}}' for key, seed in entry.generations]
        )
        body = (
            f'      "backend": {_ENCODER.encode(dict(entry.backend))},\n      "fields": {{{digests}}},\n'
            f'      "generations": [{generations}],\n      "outputs": [{outputs}],\n'
            f'      "post_key": {_string(entry.post_key)}'
        )
    return f"    {_string(entry_id)}: {{\n{body}\n    }}"


def _render_section(entries: Mapping[str, LockEntry] | Mapping[str, AtlasEntry]) -> str:
    if not entries:
        return "{}"
    return "{\n" + ",\n".join(_render_block(entry_id, entries[entry_id]) for entry_id in sorted(entries)) + "\n  }"


def lock_outputs(lock: Lock) -> list[OutputRecord]:
    """Every output the lock records, sprites' and atlases'."""
    records = [output for entry in lock.sprites.values() for output in entry.outputs]
    records += [output for atlas in lock.atlases.values() for output in atlas.outputs]
    return records


def render_lock(lock: Lock) -> bytes:
    """Serialise ``lock`` to its deterministic bytes (``atlases`` only when there are some)."""
    atlases = [_render_section(lock.atlases).encode("utf-8")] if lock.atlases else None
    return _assemble(atlases, [_render_section(lock.sprites).encode("utf-8")])


def _assemble(atlases: Sequence[bytes | memoryview] | None, sprites: Sequence[bytes | memoryview]) -> bytes:
    """The lock's bytes from the parts of its sections, joined once (a 10,000-sprite lock is ~7 MB: every
    concatenation would copy all of it again)."""
    parts: list[bytes | memoryview] = [b'{\n  "version": %d,\n' % LOCK_VERSION]
    if atlases is not None:
        parts += [b'  "atlases": ', *atlases, b",\n"]
    parts += [b'  "sprites": ', *sprites, b"\n}\n"]
    return b"".join(parts)


class LockText:
    """The bytes of a lock that ``render_lock`` wrote, searched by entry: a build that changed a few entries
    renders only those (``splice``) and reads only the entries it needs (``entry``), never the whole lock.

    Entries are sorted by id, so a binary search over the bytes finds one in ~20 short reads. Only for
    bytes known to come from ``render_lock`` (their digest is the one the stamp recorded): the search
    trusts the layout, not the content, so every entry read through it is still validated.
    """

    __slots__ = ("_sections", "raw")

    def __init__(self, raw: bytes, sections: dict[str, tuple[int, int]]) -> None:
        self.raw = raw
        # Per section: (first block's start, last block's end), or (0, 0) when it is empty.
        self._sections = sections

    @classmethod
    def index(cls, raw: bytes) -> LockText | None:
        """Frame ``raw`` by section; None if it is not laid out as ``render_lock`` lays a lock out."""
        head = b'{\n  "version": %d,\n' % LOCK_VERSION
        if not raw.startswith(head) or not raw.endswith(b"\n}\n"):
            return None
        sections: dict[str, tuple[int, int]] = {}
        position = len(head)
        for name in ("atlases", "sprites"):
            label = b'  "%s": ' % name.encode()
            tail = b",\n" if name == "atlases" else b"\n}\n"
            if not raw.startswith(label, position):
                if name == "sprites":
                    return None
                sections[name] = (0, 0)
                continue
            position += len(label)
            if raw.startswith(b"{}" + tail, position) and name == "sprites":
                sections[name] = (0, 0)  # render_lock leaves an empty atlases section out
                position += 2 + len(tail)
                continue
            # Only section bodies hold a line indented by exactly two spaces: their closing brace.
            end = raw.find(b"\n  }" + tail, position)
            if not raw.startswith(b'{\n    "', position) or end < 0 or raw[end - 6 : end] != b"\n    }":
                return None
            sections[name] = (position + 2, end)
            position = end + 4 + len(tail)
        if position != len(raw):
            return None
        return cls(raw, sections)

    def has(self, section: str) -> bool:
        """Whether ``section`` (``sprites`` or ``atlases``) holds any entry."""
        return self._sections[section] != (0, 0)

    def _head(self, at: int, stop: int) -> tuple[int, str] | None:
        """The first block starting at or after ``at`` and before ``stop``: its start and id."""
        # The head's six bytes may reach past ``stop``; only its start must come before it.
        found = self.raw.find(b'\n    "', at - 1, stop + 5)
        if found < 0 or found + 1 >= stop:
            return None
        start = found + 1
        line_end = self.raw.find(b"\n", start)
        line = self.raw[start:line_end]
        if line_end < 0 or not line.endswith(b'": {'):
            raise LockFormatError("the lock is not laid out as pixelbuild writes it")
        name = line[4:-3]
        try:
            entry_id = json.loads(name) if b"\\" in name else name[1:-1].decode("utf-8")
        except (ValueError, UnicodeDecodeError):
            raise LockFormatError("an entry id is not a JSON string") from None
        if not isinstance(entry_id, str):
            raise LockFormatError("an entry id is not a JSON string")
        return start, entry_id

    def _locate(self, section: str, entry_id: str) -> tuple[int, int, bool]:
        """(start, end, found): the block of ``entry_id``, or where it would start (the next block's start,
        or the section's end + 2, as if a separator followed) and the same position again."""
        first, last = self._sections[section]
        low, high = first, last
        best: tuple[int, str] | None = None  # the first block whose id is >= entry_id, so far
        while low < high:
            middle = (low + high) // 2
            head = self._head(middle, high)
            if head is None:
                high = middle
            elif head[1] >= entry_id:
                best, high = head, middle
            else:
                low = head[0] + 1
        if best is None:
            return last + 2, last + 2, False
        start, found_id = best
        if found_id != entry_id:
            return start, start, False
        following = self.raw.find(b'\n    "', start, last)
        return start, (following - 1 if following >= 0 else last), True

    def ids(self, section: str) -> list[str]:
        """Every entry id of ``section``, in order: a walk over all its blocks (meant for ``atlases``, which
        are few). Raises ``LockFormatError`` if the bytes are not laid out as ``render_lock`` lays them out."""
        found: list[str] = []
        first, last = self._sections[section]
        at = first
        while self.has(section) and (head := self._head(at, last)) is not None:
            found.append(head[1])
            at = head[0] + 1
        return found

    def contains(self, entry_id: str) -> bool:
        """Whether the lock holds a sprite entry ``entry_id``."""
        return self.has("sprites") and self._locate("sprites", entry_id)[2]

    def entry(self, entry_id: str) -> LockEntry | None:
        """The sprite entry ``entry_id`` (validated as ``parse_lock`` validates it), or None if absent.

        Raises ``LockFormatError`` for an entry that is not what pixelbuild writes.
        """
        if not self.has("sprites"):
            return None
        start, end, found = self._locate("sprites", entry_id)
        if not found:
            return None
        _check_id(entry_id)
        return LockEntry.from_json(self._block_value(start, end))

    def atlas(self, atlas_id: str) -> AtlasEntry | None:
        """The atlas entry ``atlas_id`` (validated), or None if absent."""
        if not self.has("atlases"):
            return None
        start, end, found = self._locate("atlases", atlas_id)
        if not found:
            return None
        _check_id(atlas_id)
        return AtlasEntry.from_json(self._block_value(start, end))

    def _block_value(self, start: int, end: int) -> Any:
        try:
            return loads_finite(self.raw[self.raw.index(b"\n", start) - 1 : end])  # from the block's "{"
        except (ValueError, RecursionError):
            raise LockFormatError("the entry is not valid JSON") from None

    def splice(self, sprites: Mapping[str, LockEntry | None], atlases: Mapping[str, AtlasEntry | None]) -> bytes:
        """The bytes ``render_lock`` gives for this lock with ``sprites`` and ``atlases`` set (None:
        removed); only those entries are rendered, every other block is copied.

        Raises ``LockFormatError`` if the bytes are not laid out as ``render_lock`` lays them out.
        """
        atlas_parts = self._splice_section("atlases", atlases)
        return _assemble(atlas_parts if atlas_parts != [b"{}"] else None, self._splice_section("sprites", sprites))

    def _splice_section(
        self, name: str, changes: Mapping[str, LockEntry | None] | Mapping[str, AtlasEntry | None]
    ) -> list[bytes | memoryview]:
        """The parts of section ``name`` with ``changes`` made: runs of blocks as views of the bytes (copied
        once, by ``_assemble``), changed blocks rendered."""
        raw = memoryview(self.raw)
        first, last = self._sections[name]
        pieces: list[bytes | memoryview] = []
        cursor = first  # the next block to copy; last + 2 once every block is copied
        for entry_id in sorted(changes):
            start, end, found = self._locate(name, entry_id) if self.has(name) else (0, 0, False)
            if start > cursor:
                pieces.append(raw[cursor : start - 2])  # a run of blocks, their separators included
            entry = changes[entry_id]
            if entry is not None:
                pieces.append(_render_block(entry_id, entry).encode("utf-8"))
            cursor = max(cursor, end + 2 if found else start)
        if self.has(name) and cursor < last + 2:
            pieces.append(raw[cursor:last])
        if not pieces:
            return [b"{}"]
        parts: list[bytes | memoryview] = [b"{\n"]
        for piece in pieces:
            parts += [piece, b",\n"]
        parts[-1] = b"\n  }"
        return parts


#: Values checked per batch: big enough that the per-batch cost vanishes, small enough that the joined
#: strings stay under malloc's mmap threshold (freeing big temporaries raises it and costs peak memory).
_BATCH = 2048


def _all_hex(digests: list[str], size: int) -> bool:
    """Whether every one of ``digests`` is ``size`` lowercase hex digits: a few C-speed passes per batch,
    not a Python check per value (a 10,000-sprite lock holds 200,000 digests)."""
    if digests and set(map(len, digests)) != {size}:
        return False
    for start in range(0, len(digests), _BATCH):
        joined = "".join(digests[start : start + _BATCH])
        try:
            # fromhex skips whitespace, so a space would make the decoded length come up short.
            if joined != joined.lower() or len(bytes.fromhex(joined)) * 2 != len(joined):
                return False
        except ValueError:
            return False
    return True


def _fast_outputs(items: Any, paths: list[str], digests: list[str]) -> tuple[OutputRecord, ...]:
    if type(items) is not list or len(items) > MAX_OUTPUTS:
        raise TypeError
    records = []
    for item in items:
        path, file_hash = item["path"], item["file_hash"]
        paths.append(path)
        digests.append(file_hash)
        pixels = item.get("pixel_hash")
        if pixels is None:
            records.append(OutputRecord(path, file_hash))
            continue
        width, height = item["width"], item["height"]
        if type(width) is not int or type(height) is not int or not (0 < width <= 1 << 20 and 0 < height <= 1 << 20):
            raise TypeError
        digests.append(pixels)
        records.append(OutputRecord(path, file_hash, pixels, width, height))
    return tuple(records)


class _BatchChecks:
    """Digests, field digests and output paths collected from many entries, checked in batches: a few
    C-speed passes per batch instead of a Python check per value."""

    __slots__ = ("digests", "fields", "paths")

    def __init__(self) -> None:
        self.digests: list[str] = []
        self.fields: list[str] = []
        self.paths: list[str] = []

    def full(self) -> bool:
        """Whether a batch is due (the lists are checked and emptied batch by batch: big temporary lists
        would cost peak memory, see _BATCH)."""
        return len(self.fields) > _BATCH

    def passed(self) -> bool:
        """Whether everything collected since the last batch is sound; empties the lists."""
        ok = _all_hex(self.digests, 32) and _all_hex(self.fields, 16) and all_confined(self.paths)
        self.digests.clear()
        self.fields.clear()
        self.paths.clear()
        return ok


def _ids_ok(ids: list[str]) -> bool:
    """Whether every id is as ``_check_id`` wants it: a sane length, no control character."""
    # One search over all ids (a single-character class matches the joined text iff it matches an id).
    lengths = [len(entry_id) for entry_id in ids]
    return not (ids and not 0 < min(lengths) <= max(lengths) <= 1024) and not _CONTROL.search(" ".join(ids))


def _parse_fast(data: dict[str, Any]) -> Lock | None:
    """The lock, if it is exactly what pixelbuild writes; None sends it through the detailed reader, which
    names the entry and line of the problem. Digests, paths and ids are checked in batches at the end."""
    checks = _BatchChecks()
    sprites: dict[str, LockEntry] = {}
    atlases: dict[str, AtlasEntry] = {}
    try:
        for sprite_id, entry in data.get("sprites", {}).items():
            if checks.full() and not checks.passed():
                return None
            generations = entry["generations"]
            if type(generations) is not list or len(generations) > MAX_ITEMS:
                return None
            pairs = tuple((item["key"], item["seed"]) for item in generations)
            backend, digest_map = entry["backend"], entry["fields"]
            if type(backend) is not dict or type(digest_map) is not dict:
                return None
            outputs = _fast_outputs(entry["outputs"], checks.paths, checks.digests)
            checks.digests.append(entry["post_key"])
            checks.digests.extend([key for key, _seed in pairs])
            checks.fields.extend(digest_map.values())
            sprites[sprite_id] = LockEntry(pairs, entry["post_key"], backend, digest_map, outputs)
            if any(type(seed) is not int for _key, seed in pairs):
                return None
        for atlas_id, entry in data.get("atlases", {}).items():
            members = entry["members"]
            if type(members) is not list or len(members) > MAX_ITEMS or not all(type(m) is str for m in members):
                return None
            outputs = _fast_outputs(entry["outputs"], checks.paths, checks.digests)
            checks.digests.append(entry["pack_key"])
            atlases[atlas_id] = AtlasEntry(entry["pack_key"], tuple(members), outputs)
        if not checks.passed() or not _ids_ok([*sprites, *atlases]):
            return None
    except (KeyError, TypeError, AttributeError, ValueError):
        return None  # str.join and friends refuse anything but strings
    return Lock(sprites, atlases)


# The lock's objects as typed records. An unknown key is refused, not skipped: msgspec skips a value
# without reading it as json.loads does (its UTF-8, a float too large), so the readers below judge those.
class _Generation(msgspec.Struct, forbid_unknown_fields=True):
    key: str
    seed: int


class _Output(msgspec.Struct, forbid_unknown_fields=True):
    path: str
    file_hash: str
    pixel_hash: str | None = None
    width: int | None = None
    height: int | None = None


class _SpriteFields(msgspec.Struct, forbid_unknown_fields=True):
    generations: list[_Generation]
    post_key: str
    backend: dict[str, Any]
    fields: dict[str, str]
    outputs: list[_Output]


class _AtlasFields(msgspec.Struct, forbid_unknown_fields=True):
    pack_key: str
    members: tuple[str, ...]
    outputs: list[_Output]


class _LockFile(msgspec.Struct, forbid_unknown_fields=True):
    version: int
    sprites: dict[str, _SpriteFields] = {}
    atlases: dict[str, _AtlasFields] = {}


# Floats can only be in free-form values (``backend``); one too large for a float is refused, as loads_finite does.
_LOCK_DECODER = msgspec.json.Decoder(_LockFile, float_hook=finite_float)


def _typed_outputs(items: list[_Output], paths: list[str], digests: list[str]) -> tuple[OutputRecord, ...] | None:
    """The records of ``items`` as ``_fast_outputs`` makes them, their paths and digests collected for the
    batch checks; None if one is not as it would have them (too many, a size out of range, ...)."""
    if len(items) > MAX_OUTPUTS:
        return None
    records = []
    for item in items:
        path, file_hash, pixels, width, height = item.path, item.file_hash, item.pixel_hash, item.width, item.height
        paths.append(path)
        digests.append(file_hash)
        if pixels is None:
            if width is not None or height is not None:
                return None  # _fast_outputs drops them: let it
            records.append(OutputRecord(path, file_hash))
            continue
        if width is None or height is None or not (0 < width <= 1 << 20 and 0 < height <= 1 << 20):
            return None
        digests.append(pixels)
        records.append(OutputRecord(path, file_hash, pixels, width, height))
    return tuple(records)


def _parse_typed(raw: bytes) -> Lock | None:
    """The lock, if its bytes are exactly what pixelbuild writes, decoded straight into typed records
    (msgspec: no dict per JSON object); None sends them to the readers below, which decide (and name the
    problem). Whatever this accepts, ``_parse_fast`` accepts as the same ``Lock``; a test holds them to it."""
    if not raw.isascii():
        try:
            raw.decode("utf-8")  # json.loads reads all of it, and refuses (or decodes otherwise) what is not
        except UnicodeDecodeError:
            return None
    try:
        document = _LOCK_DECODER.decode(raw)
    except msgspec.MsgspecError:
        return None
    if document.version != LOCK_VERSION:
        return None
    checks = _BatchChecks()
    sprites: dict[str, LockEntry] = {}
    for sprite_id, entry in document.sprites.items():
        if checks.full() and not checks.passed():
            return None
        outputs = _typed_outputs(entry.outputs, checks.paths, checks.digests)
        if outputs is None or len(entry.generations) > MAX_ITEMS:
            return None
        pairs = tuple([(generation.key, generation.seed) for generation in entry.generations])
        checks.digests.append(entry.post_key)
        checks.digests.extend([key for key, _seed in pairs])
        checks.fields.extend(entry.fields.values())
        sprites[sprite_id] = LockEntry(pairs, entry.post_key, entry.backend, entry.fields, outputs)
    atlases: dict[str, AtlasEntry] = {}
    for atlas_id, atlas in document.atlases.items():
        outputs = _typed_outputs(atlas.outputs, checks.paths, checks.digests)
        if outputs is None or len(atlas.members) > MAX_ITEMS:
            return None
        checks.digests.append(atlas.pack_key)
        atlases[atlas_id] = AtlasEntry(atlas.pack_key, atlas.members, outputs)
    if not checks.passed() or not _ids_ok([*sprites, *atlases]):
        return None
    return Lock(sprites, atlases)


def parse_lock(raw: bytes, display: str, *, skip_bad_entries: bool = False) -> Lock:
    """Parse lock bytes; a damaged lock is a ManifestError naming the file and line.

    ``skip_bad_entries`` drops an entry that is not what pixelbuild writes (a bad output path, ...) instead,
    for read-only looks at old revisions.
    """
    typed = _parse_typed(raw)
    if typed is not None:
        return typed
    try:
        data = loads_finite(raw)
    except RecursionError:
        raise ManifestError(
            "the lock file nests deeper than any lock pixelbuild writes; restore it from version control, or "
            "delete it to rebuild every sprite",
            file=display,
            line=1,
        ) from None
    except NonFiniteNumber as error:
        shown = raw.decode("utf-8", "replace")
        at = shown.find(error.token)
        raise ManifestError(
            f"the lock file holds {error.token[:40]}, which is not a finite number (pixelbuild never writes one); "
            "restore it from version control, or delete it to rebuild every sprite",
            file=display,
            line=shown.count("\n", 0, at) + 1 if at >= 0 else None,
        ) from None
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
    fast = _parse_fast(data)
    if fast is not None:
        return fast
    text: str | None = None

    def entries(section: str) -> dict[str, Any]:
        found = data.get(section, {})
        if not isinstance(found, dict):
            raise ManifestError(f"'{section}' in the lock file is not an object", file=display, line=1)
        return found

    def bad(what: str, entry_id: str, error: LockFormatError) -> ManifestError:
        nonlocal text
        text = text if text is not None else raw.decode("utf-8", "replace")
        return ManifestError(
            f"{what} '{entry_id[:200]}': {error.message}. Restore the lock from version control, or remove this entry",
            file=display,
            line=_line_of(text, entry_id, error.needle),
        )

    sprites: dict[str, LockEntry] = {}
    for sprite_id, entry in entries("sprites").items():
        try:
            _check_id(sprite_id)
            sprites[sprite_id] = LockEntry.from_json(entry)
        except LockFormatError as error:
            if skip_bad_entries:
                continue
            raise bad("sprite", sprite_id, error) from None
    atlases: dict[str, AtlasEntry] = {}
    for atlas_id, entry in entries("atlases").items():
        try:
            _check_id(atlas_id)
            atlases[atlas_id] = AtlasEntry.from_json(entry)
        except LockFormatError as error:
            if skip_bad_entries:
                continue
            raise bad("atlas", atlas_id, error) from None
    return Lock(sprites, atlases)


def _check_id(entry_id: str) -> None:
    # Ids are never used as paths, but they are printed: no control characters, a sane length.
    _require(0 < len(entry_id) <= 1024 and not _CONTROL.search(entry_id), "the id is not a valid id")


def _line_of(text: str, entry_id: str, needle: str | None) -> int | None:
    """The line of ``needle`` (a JSON-encoded value) after the entry ``entry_id`` in the lock text, else the
    entry's own line."""
    start = text.find(json.dumps(entry_id, ensure_ascii=False) + ":")
    if start < 0:
        start = text.find(json.dumps(entry_id) + ":")
    if start < 0:
        return None
    at = text.find(needle, start) if needle else -1
    return text.count("\n", 0, at if at >= 0 else start) + 1


def read_lock(path: Path, display: str | None = None) -> Lock:
    """Read the lock at ``path``; a missing lock is an empty one."""
    shown = display or str(path)
    raw = read_lock_bytes(path, shown)
    return Lock() if raw is None else parse_lock(raw, shown)


def read_lock_bytes(path: Path, display: str) -> bytes | None:
    """The bytes of the lock at ``path`` (None if there is none); a folder, FIFO or oversized file in its
    place is a ManifestError."""
    shown = display
    try:
        # Without blocking: a FIFO in the lock's place (an archive can carry one) must not hang the build.
        with os.fdopen(os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0)), "rb") as handle:
            if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
                raise ManifestError(
                    "the lock is not a regular file (a folder, a FIFO or a device); restore it from version control",
                    file=shown,
                )
            size = os.fstat(handle.fileno()).st_size
            if size > MAX_LOCK_BYTES:
                raise ManifestError(
                    f"the lock file is {size / 1e6:.0f} MB, more than the {MAX_LOCK_BYTES >> 20} MiB pixelbuild "
                    "reads; it is not a lock pixelbuild wrote. Restore it from version control",
                    file=shown,
                )
            return handle.read()
    except FileNotFoundError:
        return None


def journal_record(record: Any) -> dict[str, Any]:
    """A journal record (JSON data read back) checked as lock entries are, its entry parsed; raises
    ``LockFormatError`` for anything pixelbuild does not write."""
    record = _object(record, "a journal record")
    op, entry_id = record.get("op"), record.get("id")
    _require(op in _JOURNAL_OPS and isinstance(entry_id, str), "not a journal record")
    _check_id(entry_id)
    if op == "set":
        return {"op": op, "id": entry_id, "entry": LockEntry.from_json(record.get("entry"))}
    if op == "set_atlas":
        return {"op": op, "id": entry_id, "entry": AtlasEntry.from_json(record.get("entry"))}
    return {"op": op, "id": entry_id}


_JOURNAL_OPS = ("set", "remove", "set_atlas", "remove_atlas")


def apply_journal(lock: Lock, records: Iterable[Mapping[str, Any]]) -> Lock:
    """Return ``lock`` with the journal ``records`` (as ``read_journal`` returns them) applied in order."""
    sprites = dict(lock.sprites)
    atlases = dict(lock.atlases)
    for record in records:
        op, entry = record["op"], record.get("entry")
        if op == "set":
            sprites[record["id"]] = entry if isinstance(entry, LockEntry) else LockEntry.from_json(entry)
        elif op == "remove":
            sprites.pop(record["id"], None)
        elif op == "set_atlas":
            atlases[record["id"]] = entry if isinstance(entry, AtlasEntry) else AtlasEntry.from_json(entry)
        else:
            atlases.pop(record["id"], None)
    return Lock(sprites, atlases)


def journal_changes(
    records: Iterable[Mapping[str, Any]],
) -> tuple[dict[str, LockEntry | None], dict[str, AtlasEntry | None]]:
    """The entries the journal ``records`` (as ``read_journal`` returns them) set, each as its last record
    left it (None: removed), sprites and atlases: what ``LockText.splice`` takes."""
    sprites: dict[str, LockEntry | None] = {}
    atlases: dict[str, AtlasEntry | None] = {}
    for record in records:
        op, entry = record["op"], record.get("entry")
        if op == "set":
            sprites[record["id"]] = entry if isinstance(entry, LockEntry) else LockEntry.from_json(entry)
        elif op == "remove":
            sprites[record["id"]] = None
        elif op == "set_atlas":
            atlases[record["id"]] = entry if isinstance(entry, AtlasEntry) else AtlasEntry.from_json(entry)
        else:
            atlases[record["id"]] = None
    return sprites, atlases
