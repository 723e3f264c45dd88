"""What ``build``, ``push`` and ``pull`` do with a remote cache.

``build`` reads through before it plans for good: every stage the plan would make is looked up on the
remote (the post-processed output first, the raw generations only for what that leaves), downloaded,
verified and put in the local store, so the plan restores or post-processes it instead. It writes through
while it runs: each stage the local store takes is uploaded in the background, and the uploads are
flushed, within bounded time, when the build ends.
"""

from __future__ import annotations

import fnmatch
import os
import sys
import threading
import time
from collections.abc import Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_for
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from pixelbuild.local.journal import Journal
from pixelbuild.local.store import ActionRecord, Store, kind_of
from pixelbuild.lock import AtlasEntry, Lock, LockEntry
from pixelbuild.remote.cache import RemoteCache, Stage, unique
from pixelbuild.remote.config import RemoteConfig

if TYPE_CHECKING:
    from pixelbuild.plan import Plan
    from pixelbuild.project import Session

#: The longest a build waits, once its work is done, for uploads still in flight.
FLUSH_SECONDS = 120.0


# ---------------------------------------------------------------------------------------------- build


def stages_to_fetch(session: Session, plan: Plan, has_post: set[str] | None = None) -> tuple[list[Stage], list[Stage]]:
    """What a build would look for on the remote for ``plan``: first the post-processed outputs and atlases it
    would make, then (``has_post`` given: the post keys found) the raw generations still missing."""
    from pixelbuild.plan import Action

    first: list[Stage] = []
    then: list[Stage] = []
    for decision in plan.decisions:
        if decision.action not in (Action.GENERATE, Action.POST):
            continue
        keys = session.keys[decision.sprite_id]
        first.append(("post", keys.post))
        if decision.action is Action.GENERATE and has_post is not None and keys.post not in has_post:
            then += [("gen", key) for key in decision.missing]
    first += [("pack", atlas.key) for atlas in plan.atlases if atlas.action is Action.PACK]
    return unique(first), unique(then)


class Uploader:
    """Writes stages through to the remote in the background, ``transfers`` at a time, each once."""

    def __init__(self, cache: RemoteCache) -> None:
        self.cache = cache
        self._pool = ThreadPoolExecutor(max_workers=cache.config.transfers, thread_name_prefix="pixelbuild-push")
        self._lock = threading.Lock()
        self._queued: set[Stage] = set()
        self._futures: list[Future[bool]] = []

    def add(self, kind: str, key: str, *, check_first: bool = False) -> None:
        """Upload stage ``(kind, key)`` soon (once; nothing once the remote is given up on); ``check_first``:
        only if the remote lacks it (a stage this build did not make may well be there)."""
        if self.cache.down is not None:
            return
        with self._lock:
            if (kind, key) in self._queued:
                return
            self._queued.add((kind, key))
            self._futures.append(self._pool.submit(self.cache.push, kind, key, skip_present=check_first))

    def known(self, stages: Iterable[Stage]) -> None:
        """Never upload ``stages`` (they came from the remote)."""
        with self._lock:
            self._queued.update(stages)

    def flush(self, timeout: float = FLUSH_SECONDS) -> int:
        """Wait up to ``timeout`` seconds for the uploads; drop the rest. Returns how many were left undone."""
        with self._lock:
            futures = list(self._futures)
        _done, pending = wait_for(futures, timeout=timeout)
        for future in pending:
            future.cancel()
        self._pool.shutdown(wait=False, cancel_futures=True)
        return len(pending)


class WriteThroughStore(Store):
    """The local store, with each action it takes also written through to the remote."""

    def __init__(self, root: Path, uploader: Uploader) -> None:
        super().__init__(root)
        self.uploader = uploader

    def put_action(self, key: str, record: ActionRecord) -> None:
        """Store locally, then queue the upload."""
        super().put_action(key, record)
        self.uploader.add(kind_of(record), key)


class WriteThroughJournal(Journal):
    """The build's journal; each finished sprite or atlas also queues its stages for upload (post-processing
    in worker processes stores its results there, out of the write-through store's sight)."""

    def __init__(self, path: Path, uploader: Uploader) -> None:
        super().__init__(path)
        self.uploader = uploader

    def _queue(self, entry: LockEntry) -> None:
        # What this build made was queued as the store took it; the rest (restored from the local cache)
        # goes up only where the remote lacks it.
        for key in entry.generation_keys:
            self.uploader.add("gen", key, check_first=True)
        self.uploader.add("post", entry.post_key, check_first=True)

    def record_set(self, sprite_id: str, entry: LockEntry) -> None:
        """See ``Journal.record_set``."""
        super().record_set(sprite_id, entry)
        self._queue(entry)

    def record_sets(self, entries: Sequence[tuple[str, LockEntry]]) -> None:
        """See ``Journal.record_sets``."""
        super().record_sets(entries)
        for _sprite_id, entry in entries:
            self._queue(entry)

    def record_atlas(self, atlas_id: str, entry: AtlasEntry) -> None:
        """See ``Journal.record_atlas``."""
        super().record_atlas(atlas_id, entry)
        self.uploader.add("pack", entry.pack_key, check_first=True)


class BuildRemote:
    """A build's remote cache: read through before planning, write through while building."""

    def __init__(self, config: RemoteConfig, session: Session) -> None:
        self.config = config
        self.cache = RemoteCache(config, session.store)
        self.uploader = Uploader(self.cache) if config.push else None
        if self.uploader is not None:
            session.store = WriteThroughStore(session.store.root, self.uploader)
            self.cache.store = session.store

    def journal(self, path: Path) -> Journal:
        """The build's journal (writing finished stages through when pushing)."""
        return WriteThroughJournal(path, self.uploader) if self.uploader is not None else Journal(path)

    def prefetch(self, session: Session, plan: Plan) -> int:
        """Fetch from the remote what ``plan`` would make; the number of stages fetched."""
        first, _ = stages_to_fetch(session, plan)
        found = self.cache.run_many(self.cache.fetch, first)
        _, then = stages_to_fetch(session, plan, {key for kind, key in found if kind == "post"})
        found |= self.cache.run_many(self.cache.fetch, then)
        if self.uploader is not None:
            self.uploader.known(found)
        return len(found)

    def abandon(self) -> None:
        """Drop the uploads not yet started (the build stopped short: interrupted or failed)."""
        if self.uploader is not None:
            self.uploader.flush(0)

    def finish(self, wait: bool = True) -> list[str]:
        """Flush the uploads (bounded; not at all unless ``wait``); the warnings to show, each once."""
        warnings = []
        if self.uploader is not None:
            left = self.uploader.flush(FLUSH_SECONDS if wait else 0)
            if left:
                warnings.append(
                    f"remote cache {self.config.url}: {left} upload(s) left undone; 'pixelbuild push' sends them"
                )
        return self.cache.warnings + warnings


# ---------------------------------------------------------------------------------------------- push, pull


def lock_stages(lock: Lock, only: Sequence[str] = ()) -> list[Stage]:
    """Every stage the lock references (raw generations, post-processed outputs, atlases); with ``only``,
    those of the sprites whose ids match one of its globs (atlases then left out)."""
    stages: list[Stage] = []
    for sprite_id, entry in lock.sprites.items():
        if only and not any(fnmatch.fnmatchcase(sprite_id, pattern) for pattern in only):
            continue
        stages += [("gen", key) for key in entry.generation_keys]
        stages.append(("post", entry.post_key))
    if not only:
        stages += [("pack", entry.pack_key) for entry in lock.atlases.values()]
    return unique(stages)


@dataclass(frozen=True, slots=True)
class TransferReport:
    """What ``push`` or ``pull`` did."""

    remote: str
    total: int
    done: int
    skipped: int
    missing: int
    failed: int
    bytes: int
    seconds: float
    warnings: list[str]

    def to_json(self, verb: str) -> dict[str, Any]:
        """The ``--json`` document."""
        return {
            "ok": self.failed == 0,
            "remote": self.remote,
            "stages": self.total,
            verb: self.done,
            "present": self.skipped,
            "missing": self.missing,
            "failed": self.failed,
            "bytes": self.bytes,
            "seconds": round(self.seconds, 3),
            "warnings": self.warnings,
        }


class TransferProgress:
    """``done/total`` on one terminal line, redrawn at most ten times a second (nothing when not a terminal)."""

    def __init__(self, verb: str, total: int, stream: IO[str] | None) -> None:
        self.verb = verb
        self.total = total
        self.stream = stream
        self._last = 0.0

    def __call__(self, done: int) -> None:
        """Show that ``done`` stages are through."""
        if self.stream is None:
            return
        now = time.monotonic()
        if done < self.total and now - self._last < 0.1:
            return
        self._last = now
        self.stream.write(f"\r{self.verb} {done}/{self.total}")
        if done >= self.total:
            self.stream.write("\n")
        self.stream.flush()


def progress_stream(quiet: bool) -> IO[str] | None:
    """stderr when it is a terminal and output is for people, else None."""
    return sys.stderr if not quiet and sys.stderr.isatty() and os.environ.get("TERM") != "dumb" else None


def pull(config: RemoteConfig, store: Store, stages: Iterable[Stage], stream: IO[str] | None = None) -> TransferReport:
    """Download ``stages`` the local store lacks (verified), ``config.transfers`` at a time."""
    started = time.perf_counter()
    wanted = list(stages)
    needed = [stage for stage in wanted if store.get_action(*stage) is None]
    cache = RemoteCache(config, store)
    got = cache.run_many(cache.fetch, needed, TransferProgress("pulled", len(needed), stream) if needed else None)
    return TransferReport(
        config.url,
        len(wanted),
        len(got),
        len(wanted) - len(needed),
        cache.tally.missing,
        len(needed) - len(got) - cache.tally.missing,
        cache.tally.bytes_down,
        time.perf_counter() - started,
        cache.warnings,
    )


def push(config: RemoteConfig, store: Store, stages: Iterable[Stage], stream: IO[str] | None = None) -> TransferReport:
    """Upload ``stages`` the remote lacks, ``config.transfers`` at a time (a stage missing locally is counted)."""
    started = time.perf_counter()
    wanted = list(stages)
    cache = RemoteCache(config, store)

    def send(kind: str, key: str) -> bool:
        return cache.push(kind, key, skip_present=True)

    done = cache.run_many(send, wanted, TransferProgress("pushed", len(wanted), stream) if wanted else None)
    return TransferReport(
        config.url,
        len(wanted),
        cache.tally.pushed,
        cache.tally.skipped,
        cache.tally.missing,
        len(wanted) - len(done) - cache.tally.missing,
        cache.tally.bytes_up,
        time.perf_counter() - started,
        cache.warnings,
    )
