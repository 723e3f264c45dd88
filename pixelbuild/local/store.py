"""The local content-addressed cache (``.pixelbuild/cache``), after Bazel's action cache + CAS.

*Blobs* are files named by the xxh3_128 of their bytes, verified on every read. *Actions* map a stage
key (a generation, post or pack key) to a small typed record naming the blobs it produced:

* ``GenerationRecord``: a generation's raw frames (``gen``), what generated them and with which seed;
* ``PostRecord``: a sprite's finished image (``post``), with its pixel hash and size;
* ``PackRecord``: an atlas's files (``pack``), images with their pixel hash and size, data files without.

Records are JSON, decoded and checked against their type on every read (a damaged or crafted record is a
cache miss, never acted on). Reverting a manifest edit finds the old key's action again, so the old
asset comes back with no generator call. ``gc`` deletes what ``live_actions`` does not name.
"""

from __future__ import annotations

import contextlib
import os
import re
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal, TypeAlias, overload

import msgspec

from pixelbuild.fsutil import atomic_write_bytes
from pixelbuild.hashing import hash_bytes
from pixelbuild.local.layout import ACTION_KINDS, action_path, actions_dir, blob_path, blobs_dir

if TYPE_CHECKING:
    from pixelbuild.backends.base import BackendIdentity
    from pixelbuild.keys import SpriteKeys
    from pixelbuild.lock import Lock

#: The largest action record read back (they are small: a few blob names and an identity).
MAX_RECORD_BYTES = 1 << 20
#: The most images one record may name (a batch of frames, or an atlas's files).
MAX_RECORD_IMAGES = 4096

#: A blob name or pixel hash: an xxh3_128 digest (anything else read back is damage, or an attack: blob
#: names become paths under the cache).
Digest = Annotated[str, msgspec.Meta(pattern="^[0-9a-f]{32}$")]
#: An image's width or height.
Side = Annotated[int, msgspec.Meta(gt=0, le=1 << 20)]
#: What generated an image (``BackendIdentity`` as the lock records it: name, version, models).
Identity: TypeAlias = dict[str, str | int | bool | list[str] | None]
ActionKind = Literal["gen", "post", "pack"]


class RawImage(msgspec.Struct, frozen=True, omit_defaults=True):
    """One generated frame: its blob (a raw PNG) and, when known, its size."""

    blob: Digest
    width: Side | None = None
    height: Side | None = None


class FinishedImage(msgspec.Struct, frozen=True):
    """A post-processed sprite's image: its blob (the output PNG), pixel hash and size."""

    blob: Digest
    pixel_hash: Digest
    width: Side
    height: Side


class PackedFile(msgspec.Struct, frozen=True, omit_defaults=True):
    """One file of a packed atlas: its blob, and for an image its pixel hash and size."""

    blob: Digest
    pixel_hash: Digest | None = None
    width: Side | None = None
    height: Side | None = None


class GenerationRecord(msgspec.Struct, frozen=True, omit_defaults=True):
    """What a generation (``gen`` key) produced: its raw frames, what generated them, and the seed."""

    images: Annotated[list[RawImage], msgspec.Meta(min_length=1, max_length=MAX_RECORD_IMAGES)]
    identity: Identity
    seed: int | None = None


class PostRecord(msgspec.Struct, frozen=True):
    """What post-processing (``post`` key) produced: the finished image, and what generated its frames."""

    images: Annotated[list[FinishedImage], msgspec.Meta(min_length=1, max_length=MAX_RECORD_IMAGES)]
    identity: Identity


class PackRecord(msgspec.Struct, frozen=True):
    """What packing an atlas (``pack`` key) produced: its files, in the order of ``AtlasSpec.outputs``."""

    images: Annotated[list[PackedFile], msgspec.Meta(min_length=1, max_length=MAX_RECORD_IMAGES)]


ActionRecord: TypeAlias = GenerationRecord | PostRecord | PackRecord
RECORD_TYPES: Mapping[str, type[ActionRecord]] = {"gen": GenerationRecord, "post": PostRecord, "pack": PackRecord}
_KIND_OF: Mapping[type[ActionRecord], ActionKind] = {GenerationRecord: "gen", PostRecord: "post", PackRecord: "pack"}
_DECODERS = {kind: msgspec.json.Decoder(record_type) for kind, record_type in RECORD_TYPES.items()}
_ENCODER = msgspec.json.Encoder()


def identity_of(made_by: BackendIdentity) -> Identity:
    """The identity a record (and the lock) keeps of the backend that made an image."""
    return {"name": made_by.name, "version": made_by.version, "models": list(made_by.models)}


def kind_of(record: ActionRecord) -> ActionKind:
    """The stage kind (``gen``, ``post``, ``pack``) whose record ``record`` is."""
    return _KIND_OF[type(record)]


def encode_record(record: ActionRecord) -> bytes:
    """The JSON bytes of an action record, as the store (and a remote cache) keeps them."""
    return _ENCODER.encode(record)


def decode_record(kind: str, data: bytes) -> ActionRecord | None:
    """The record of stage ``kind`` in ``data``, or None if it is larger than ``MAX_RECORD_BYTES``, not JSON,
    or not of that kind's type (bad blob names, sizes, counts: damaged or crafted)."""
    decoder = _DECODERS.get(kind)
    if decoder is None or len(data) > MAX_RECORD_BYTES:
        return None
    try:
        record: ActionRecord = decoder.decode(data)
    except (msgspec.DecodeError, RecursionError):
        return None
    return record


_DIGEST = re.compile(r"[0-9a-f]{32}")


def is_digest(digest: object) -> bool:
    """Whether ``digest`` is a blob name or key: 32 lowercase hex digits (xxh3_128)."""
    return isinstance(digest, str) and _DIGEST.fullmatch(digest) is not None


def record_to_json(record: ActionRecord) -> dict[str, Any]:
    """An action record as plain JSON data (to embed it in another document, e.g. a remote cache's)."""
    data: dict[str, Any] = msgspec.to_builtins(record)
    return data


def record_from_json(kind: str, data: Any) -> ActionRecord | None:
    """The record of stage ``kind`` in plain JSON data, checked as ``decode_record`` checks bytes; None if
    it is not one."""
    record_type = RECORD_TYPES.get(kind)
    if record_type is None:
        return None
    try:
        return msgspec.convert(data, record_type)
    except (msgspec.ValidationError, RecursionError):
        return None


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


def live_actions(lock: Lock, keys: Iterable[SpriteKeys] = (), atlas_keys: Iterable[str] = ()) -> set[tuple[str, str]]:
    """The actions ``gc`` keeps: every one the lock's entries name, plus those of the current manifest's
    sprites (``keys``) and atlases (``atlas_keys``), built or not."""
    live = {("post", entry.post_key) for entry in lock.sprites.values()}
    live |= {("gen", key) for entry in lock.sprites.values() for key in entry.generation_keys}
    live |= {("pack", entry.pack_key) for entry in lock.atlases.values()}
    for sprite_keys in keys:
        live.add(("post", sprite_keys.post))
        live.update(("gen", key) for key in sprite_keys.generations)
    live.update(("pack", key) for key in atlas_keys)
    return live


class GcReport(msgspec.Struct, frozen=True):
    """What ``Store.gc`` removed."""

    actions: int
    blobs: int
    bytes: int


class Store:
    """Blobs and typed action records under ``root``; safe for concurrent writers (atomic renames)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _blob_path(self, digest: str) -> Path:
        if not is_digest(digest):
            raise ValueError(f"not a blob name: {digest!r}")
        return blob_path(self.root, digest)

    def _action_path(self, kind: str, key: str) -> Path:
        if kind not in ACTION_KINDS or not is_digest(key):
            raise ValueError(f"not an action: {kind!r} {key!r}")
        return action_path(self.root, kind, key)

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
        if not is_digest(digest):
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
        return is_digest(digest) and self._blob_path(digest).is_file()

    def put_action(self, key: str, record: ActionRecord) -> None:
        """Record that the stage of ``record``'s kind with ``key`` produced ``record`` (which names its blobs)."""
        path = self._action_path(kind_of(record), key)
        _refuse_linked_shard(path)
        atomic_write_bytes(path, encode_record(record))

    @overload
    def get_action(self, kind: Literal["gen"], key: str) -> GenerationRecord | None: ...
    @overload
    def get_action(self, kind: Literal["post"], key: str) -> PostRecord | None: ...
    @overload
    def get_action(self, kind: Literal["pack"], key: str) -> PackRecord | None: ...
    @overload
    def get_action(self, kind: str, key: str) -> ActionRecord | None: ...
    def get_action(self, kind: str, key: str) -> ActionRecord | None:
        """The record of a stage run, or None if absent, unreadable, damaged or missing a blob."""
        path = self._action_path(kind, key)
        try:
            with open(path, "rb") as handle:
                raw = handle.read(MAX_RECORD_BYTES + 1)
        except OSError:  # absent, a folder, unreadable
            return None
        record = decode_record(kind, raw)
        if record is None or not all(self.has_blob(item.blob) for item in record.images):
            return None  # damaged or crafted: a cache miss (the build drops it and says so), never acted on
        with contextlib.suppress(OSError):
            os.utime(path)  # last use, for gc --keep-days
        return record

    def drop_action(self, kind: str, key: str) -> None:
        """Forget the record of a stage run (it is missing a blob or damaged)."""
        with contextlib.suppress(OSError):
            self._action_path(kind, key).unlink()

    def has_action(self, kind: str, key: str) -> bool:
        """Whether a record of stage ``kind`` with ``key`` exists (not verified: ``get_action`` does that)."""
        return self._action_path(kind, key).is_file()

    def gc(self, live: Iterable[tuple[str, str]], keep_seconds: float = 0.0) -> GcReport:
        """Delete actions not in ``live`` (and not used within ``keep_seconds``), then unreferenced blobs."""
        live_set = set(live)
        cutoff = time.time() - keep_seconds
        removed_actions = 0
        referenced: set[str] = set()
        for kind in ACTION_KINDS:
            for path in _entries(actions_dir(self.root, kind), ".json"):
                key = path.stem
                keep = (kind, key) in live_set or (keep_seconds > 0 and path.stat().st_mtime >= cutoff)
                if keep:
                    try:
                        raw = path.read_bytes() if path.stat().st_size <= MAX_RECORD_BYTES else b""
                    except OSError:
                        raw = b""
                    record = decode_record(kind, raw)
                    if record is not None:
                        referenced.update(item.blob for item in record.images)
                        continue
                    # an unreadable or crafted record is garbage
                path.unlink(missing_ok=True)
                removed_actions += 1
        removed_blobs = 0
        freed = 0
        for path in _entries(blobs_dir(self.root), ""):
            if path.name not in referenced:
                freed += path.stat().st_size
                path.unlink(missing_ok=True)
                removed_blobs += 1
        shards = [path.parent for path in _entries(blobs_dir(self.root), "", files=False)]
        for kind in ACTION_KINDS:
            shards += [path.parent for path in _entries(actions_dir(self.root, kind), "", files=False)]
        for folder in shards:
            with contextlib.suppress(OSError):
                folder.rmdir()
        return GcReport(removed_actions, removed_blobs, freed)
