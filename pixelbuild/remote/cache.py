"""The remote cache's layout and its trust rules.

``ac/<action key>`` holds a small JSON record: the stage kind, the local store's record of what the stage
produced (blob digests, sizes in pixels, identity) and the byte size of each blob. ``cas/<digest>`` holds
the blobs: raw generations, post-processed outputs and atlas files alike.

Everything read back is hostile input: a record is bounded and validated as the local store validates
its own, every blob is bounded by the size its record gives and verified against its digest before the
local store takes it. A damaged blob is discarded, said once, and fetched once more; if it is still
wrong the stage counts as absent (it is redone here, and writing it through repairs the remote).

The first failure to reach the remote turns it off for the rest of the command, with one warning: a
remote that is down, slow or refusing costs one bounded wait, never one per stage.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import msgspec

from pixelbuild.hashing import hash_bytes
from pixelbuild.local.layout import ACTION_KINDS
from pixelbuild.local.store import MAX_RECORD_BYTES, ActionRecord, Store, is_digest
from pixelbuild.local.store import decode_record as decode_local
from pixelbuild.local.store import encode_record as encode_local
from pixelbuild.remote.config import RemoteConfig
from pixelbuild.remote.transport import RemoteUnavailable, TooLarge, Transport, open_transport

FORMAT = 1
#: The largest blob taken from a remote: an image at the pixel limit, encoded, stays well below it.
MAX_BLOB_BYTES = 1 << 29
#: A stage is (kind, key): kind is one of the store's action kinds.
Stage = tuple[str, str]


def record_name(key: str) -> str:
    """The remote name of an action record."""
    if not is_digest(key):
        raise ValueError(f"not an action key: {key!r}")
    return f"ac/{key}"


def blob_name(digest: str) -> str:
    """The remote name of a blob."""
    if not is_digest(digest):
        raise ValueError(f"not a blob digest: {digest!r}")
    return f"cas/{digest}"


class _Envelope(msgspec.Struct, frozen=True):
    """``ac/<key>`` as stored: the stage kind, the local store's record (its own JSON) and each blob's size."""

    format: int
    kind: str
    record: msgspec.Raw
    sizes: dict[str, int]


_ENVELOPE = msgspec.json.Decoder(_Envelope)


def encode_record(kind: str, record: ActionRecord, sizes: dict[str, int]) -> bytes:
    """The bytes of ``ac/<key>`` for a local record and the sizes of its blobs."""
    return msgspec.json.encode(_Envelope(FORMAT, kind, msgspec.Raw(encode_local(record)), dict(sorted(sizes.items()))))


def decode_record(kind: str, raw: bytes) -> tuple[ActionRecord, dict[str, int]] | None:
    """The local record and blob sizes in ``raw``, or None when it is not a well-formed record of ``kind`` (the
    record is checked as the local store checks its own; each blob named has a size, within bounds)."""
    if len(raw) > MAX_RECORD_BYTES:
        return None
    try:
        envelope = _ENVELOPE.decode(raw)
    except (msgspec.DecodeError, RecursionError):
        return None
    if envelope.format != FORMAT or envelope.kind != kind:
        return None
    record = decode_local(kind, bytes(envelope.record))
    if record is None or {item.blob for item in record.images} != set(envelope.sizes):
        return None
    if not all(type(size) is int and 0 < size <= MAX_BLOB_BYTES for size in envelope.sizes.values()):
        return None
    return record, envelope.sizes


@dataclass(slots=True)
class Tally:
    """What a remote cache moved in one command."""

    fetched: int = 0
    pushed: int = 0
    skipped: int = 0
    missing: int = 0
    bytes_down: int = 0
    bytes_up: int = 0
    damaged: list[str] = field(default_factory=list)


class RemoteCache:
    """A remote cache in front of which sits the local ``store``; safe to use from many threads."""

    def __init__(self, config: RemoteConfig, store: Store, transport: Transport | None = None) -> None:
        self.config = config
        self.store = store
        self.tally = Tally()
        self.down: str | None = None  # why the remote was given up on, once it was
        self._transport = transport
        self._lock = threading.Lock()
        self._sent_blobs: set[str] = set()
        self._warnings: list[str] = []

    # ------------------------------------------------------------------ state

    @property
    def warnings(self) -> list[str]:
        """What went wrong, each said once: the remote given up on, damaged objects discarded."""
        with self._lock:
            found = list(self._warnings)
            if self.tally.damaged:
                shown = ", ".join(self.tally.damaged[:3]) + (", ..." if len(self.tally.damaged) > 3 else "")
                found.append(
                    f"remote cache {self.config.url}: {len(self.tally.damaged)} damaged object(s) discarded "
                    f"({shown}); their work was fetched again or redone"
                )
            return found

    def _give_up(self, reason: str) -> None:
        with self._lock:
            if self.down is None:
                self.down = reason
                self._warnings.append(
                    f"remote cache {self.config.url}: {reason}; going on without it for the rest of this command"
                )

    def _damaged(self, name: str) -> None:
        with self._lock:
            if name not in self.tally.damaged:
                self.tally.damaged.append(name)

    def _transport_or_none(self) -> Transport | None:
        if self.down is not None:
            return None
        if self._transport is None:
            with self._lock:
                if self._transport is None and self.down is None:
                    try:
                        self._transport = open_transport(self.config.url, self.config.timeout)
                    except RemoteUnavailable as error:
                        self.down = error.reason
                        self._warnings.append(
                            f"remote cache {self.config.url}: {error.reason}; going on without it for the rest of "
                            "this command"
                        )
        return self._transport if self.down is None else None

    # ------------------------------------------------------------------ reading

    def _get(self, transport: Transport, name: str, max_bytes: int) -> bytes | None:
        data = transport.get(name, max_bytes)
        if data is not None:
            with self._lock:
                self.tally.bytes_down += len(data)
        return data

    def _fetch_blob(self, transport: Transport, digest: str, size: int) -> bool:
        """Download blob ``digest`` into the local store, verified (a bad copy is fetched once more)."""
        name = blob_name(digest)
        for _attempt in range(2):
            try:
                data = self._get(transport, name, size)
            except TooLarge:
                data = b""
            if data is None:
                return False
            if len(data) == size and hash_bytes(data) == digest:
                self.store.put_blob(data)
                return True
            self._damaged(name)
        return False

    def fetch(self, kind: str, key: str) -> bool:
        """Bring stage ``(kind, key)`` from the remote into the local store; False when the remote lacks it,
        holds it damaged, or is unavailable. Blobs land before the record, so no local record names a
        missing blob."""
        transport = self._transport_or_none()
        if transport is None:
            return False
        try:
            try:
                raw = self._get(transport, record_name(key), MAX_RECORD_BYTES)
            except TooLarge:
                raw = b""
            if raw is None:
                with self._lock:
                    self.tally.missing += 1
                return False
            decoded = decode_record(kind, raw)
            if decoded is None:
                self._damaged(record_name(key))
                return False
            record, sizes = decoded
            for digest, size in sizes.items():
                if not self.store.has_blob(digest) and not self._fetch_blob(transport, digest, size):
                    return False
            self.store.put_action(key, record)
        except RemoteUnavailable as error:
            self._give_up(error.reason)
            return False
        with self._lock:
            self.tally.fetched += 1
        return True

    # ------------------------------------------------------------------ writing

    def push(self, kind: str, key: str, *, skip_present: bool = False) -> bool:
        """Upload stage ``(kind, key)`` from the local store: blobs first, the record last (a reader never
        sees a record whose blobs are not all there). ``skip_present``: leave a stage the remote already
        has. False when the local store lacks it or the remote is unavailable."""
        transport = self._transport_or_none()
        if transport is None:
            return False
        record = self.store.get_action(kind, key)
        if record is None:
            with self._lock:
                self.tally.missing += 1
            return False
        name = record_name(key)
        try:
            if skip_present and transport.exists(name):
                with self._lock:
                    self.tally.skipped += 1
                return True
            sizes: dict[str, int] = {}
            for item in record.images:
                digest = item.blob
                data = self.store.read_blob(digest)
                if data is None:
                    with self._lock:
                        self.tally.missing += 1
                    return False
                sizes[digest] = len(data)
                with self._lock:
                    sent = digest in self._sent_blobs
                if not sent:
                    transport.put(blob_name(digest), data)
                    with self._lock:
                        self._sent_blobs.add(digest)
                        self.tally.bytes_up += len(data)
            payload = encode_record(kind, record, sizes)
            transport.put(name, payload)
        except RemoteUnavailable as error:
            self._give_up(error.reason)
            return False
        with self._lock:
            self.tally.pushed += 1
            self.tally.bytes_up += len(payload)
        return True

    # ------------------------------------------------------------------ many at once

    def run_many(
        self, work: Callable[[str, str], bool], stages: Sequence[Stage], on_done: Callable[[int], None] | None = None
    ) -> set[Stage]:
        """``work(kind, key)`` for each stage, ``config.transfers`` at a time; the stages it succeeded for.
        ``on_done(n)`` is called (from one thread at a time) after each, with the number done so far."""
        done: set[Stage] = set()
        if not stages or self._transport_or_none() is None:
            return done
        counter = [0]

        def one(stage: Stage) -> None:
            ok = self.down is None and work(*stage)
            with self._lock:
                counter[0] += 1
                if ok:
                    done.add(stage)
                if on_done is not None:
                    on_done(counter[0])

        with ThreadPoolExecutor(max_workers=min(self.config.transfers, len(stages))) as pool:
            for _ in pool.map(one, stages):
                pass
        return done


def unique(stages: Iterable[Stage]) -> list[Stage]:
    """``stages`` without repeats, in order, checked (a lock could name anything)."""
    seen: dict[Stage, None] = {}
    for kind, key in stages:
        if kind in ACTION_KINDS and is_digest(key):
            seen.setdefault((kind, key), None)
    return list(seen)
