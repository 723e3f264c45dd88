"""What a run comes to: the result it returns, and the recorder every step reports to.

A step's work runs under ``Outcomes.guard``: an exception becomes that sprite's recorded failure (in one
located paragraph), a cache entry found missing becomes work to plan again, and a full disk stops the run.
Steps run in several threads at once, so everything here is guarded by one lock.
"""

from __future__ import annotations

import os
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Literal

import msgspec

from pixelbuild.errors import (
    BackendUnavailable,
    DiskFull,
    GenerationError,
    PixelbuildError,
    describe_os_error,
    disk_full,
)
from pixelbuild.plan import Action
from pixelbuild.report import Stage

if TYPE_CHECKING:
    from pixelbuild.execute.context import EngineContext
    from pixelbuild.lock import LockEntry
    from pixelbuild.plan import Decision


#: The counters of ``EngineResult`` a step adds to one at a time (sprites finishing count through ``finished``).
Counter = Literal["generator_calls", "removed", "restored", "packed"]


class Deferred(Exception):
    """The work cannot be done in this pass (an atlas member waits for a repair); plan it again after."""


class CacheMiss(Deferred):
    """A cache entry the plan counted on is missing or damaged: drop it, and plan that work again.

    Plain ``args`` so it crosses back from a worker process.
    """

    def __init__(self, kind: str, key: str) -> None:
        super().__init__(kind, key)
        self.kind = kind
        self.key = key


class WorkerBug(Exception):
    """An unexpected exception in a worker process, as the build process reports it: its one-line
    ``detail`` and the worker's traceback."""

    def __init__(self, detail: str, trace: str) -> None:
        super().__init__(detail)
        self.detail = detail
        self.trace = trace


class EngineResult(msgspec.Struct):
    """What a run did: sprites finished per action, generator calls, a message per failed sprite.

    ``repair`` names the sprites (and ``atlas <id>``) left undone because a cache entry they needed was
    missing or damaged; the entry is dropped, so planning them again finds the way around it.
    """

    generator_calls: int = 0
    generated: int = 0
    post_processed: int = 0
    restored: int = 0
    removed: int = 0
    packed: int = 0
    failures: dict[str, str] = msgspec.field(default_factory=dict)
    finished: set[str] = msgspec.field(default_factory=set)
    interrupted: bool = False
    repair: set[str] = msgspec.field(default_factory=set)
    kept: list[str] = msgspec.field(default_factory=list)
    #: Seconds spent per stage of image work (summed over parallel steps and worker processes).
    timings: dict[Stage, float] = msgspec.field(default_factory=dict)
    #: What stopped the build short (a full disk, servers that stopped answering), for the exit code.
    error: PixelbuildError | None = None

    def add(self, other: EngineResult) -> None:
        """Add the work of a later pass over the same build."""
        for name in ("generator_calls", "generated", "post_processed", "restored", "removed", "packed"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.failures.update(other.failures)
        self.finished |= other.finished
        self.interrupted = self.interrupted or other.interrupted
        self.repair = set(other.repair)
        self.kept += other.kept
        for stage, seconds in other.timings.items():
            self.timings[stage] = self.timings.get(stage, 0.0) + seconds
        self.error = self.error or other.error


class Outcomes:
    """The thread-safe record of one run: failures, repairs, finished lock entries and counts."""

    def __init__(self, context: EngineContext) -> None:
        self.ctx = context
        self.result = EngineResult()
        self.lock = threading.Lock()
        #: Lock entries as they stand now: the lock's, then each sprite's as it finishes.
        self.entries: dict[str, LockEntry] = dict(context.lock.sprites)
        #: Once set, no further step writes anything.
        self.disk_full: DiskFull | None = None
        #: Called once when a full disk stops the run (no GPU time for results that cannot be stored).
        self.on_stop: Callable[[], None] = lambda: None
        self._unavailable: list[tuple[str, BackendUnavailable]] = []

    def guard(self, sprite_ids: Sequence[str], work: Callable[[], None]) -> bool:
        """Run ``work``; turn an exception into a recorded failure of ``sprite_ids`` (doit sees False)."""
        if self.disk_full is not None:
            return False  # the build is stopping: write nothing more
        try:
            work()
            return True
        except Deferred as deferred:
            if isinstance(deferred, CacheMiss):
                self.ctx.store.drop_action(deferred.kind, deferred.key)
            with self.lock:
                self.result.repair.update(sprite_ids)
            return True  # not a failure: the build plans these again without the entry
        except Exception as error:
            if self.disk_full is None:  # else it was stopped (cancelled) for the full disk: not a failure
                self._record_failure(sprite_ids, error)
            return False

    def fail(self, sprite_ids: Sequence[str], message: str) -> None:
        """Record ``message`` as the failure of each sprite (the first message a sprite gets stays)."""
        with self.lock:
            for sprite_id in sprite_ids:
                self.result.failures.setdefault(sprite_id, message)
        for sprite_id in sprite_ids:
            self.ctx.progress.failed(sprite_id, message)

    def finished(self, settled: Sequence[tuple[Decision, LockEntry]]) -> None:
        """Count sprites whose entries are journaled."""
        with self.lock:
            for decision, entry in settled:
                self.entries[decision.sprite_id] = entry
                self.result.finished.add(decision.sprite_id)
                if decision.action is Action.RESTORE:
                    self.result.restored += 1
                elif decision.action is Action.POST:
                    self.result.post_processed += 1
                else:
                    self.result.generated += 1
        for decision, _entry in settled:
            self.ctx.progress.done(decision.sprite_id, decision.action)

    def count(self, name: Counter) -> None:
        """Add one to the result's counter ``name``."""
        with self.lock:
            setattr(self.result, name, getattr(self.result, name) + 1)

    def spent(self, stage: Stage, seconds: float) -> None:
        """Add ``seconds`` to the time spent in ``stage``."""
        with self.lock:
            self.result.timings[stage] = self.result.timings.get(stage, 0.0) + seconds

    @contextmanager
    def timed(self, stage: Stage) -> Iterator[None]:
        """Count the time the block takes (raising or not) as time spent in ``stage``."""
        started = time.perf_counter()
        try:
            yield
        finally:
            self.spent(stage, time.perf_counter() - started)

    def removed(self, sprite_id: str) -> None:
        """Count a sprite whose outputs are gone and whose removal is journaled."""
        with self.lock:
            self.result.finished.add(sprite_id)
            self.result.removed += 1
        self.ctx.progress.done(sprite_id, Action.REMOVE)

    def keep(self, message: str) -> None:
        """Note a file the run left in place, for the report's warnings."""
        with self.lock:
            self.result.kept.append(message)

    def located(self, sprite_id: str, field: str | None, message: str) -> str:
        """``message`` prefixed with where the sprite (or its field) is written: ``file:line: field 'x': ...``."""
        from pixelbuild.locate import located_message

        sprite = self.ctx.sprites.get(sprite_id)
        return located_message(sprite.source if sprite else None, field, message)

    def unavailable_error(self) -> BackendUnavailable | None:
        """One paragraph for sprites left ungenerated because the servers stopped answering mid-build."""
        if not self._unavailable:
            return None
        sprites = list(dict.fromkeys(sprite_id for sprite_id, _error in self._unavailable))
        first = str(self._unavailable[0][1]).rstrip(".")
        finished = len(self.result.finished)
        kept = f"the {finished} finished are in the lock" if finished else "none finished"
        return BackendUnavailable(
            f"{first}. {len(sprites)} sprite(s) could not be generated; {kept}. "
            "Run the build again once a server answers."
        )

    def _record_failure(self, sprite_ids: Sequence[str], error: Exception) -> None:
        if isinstance(error, OSError) and not isinstance(error, PixelbuildError):
            # The file system said no (permissions, read-only, full): the user's to fix, not a bug.
            error = disk_full(error, error.filename or self.ctx.output_dir) or error
        if isinstance(error, DiskFull):
            self._stop_for_disk_full(error)
        elif isinstance(error, BackendUnavailable):
            # Said once, in full, when the build ends (exit 3); each sprite's line stays short.
            with self.lock:
                self._unavailable.extend((sprite_id, error) for sprite_id in sprite_ids)
            self.fail(sprite_ids, "not generated: no generator server answers")
        elif isinstance(error, GenerationError):
            for sprite_id in sprite_ids:
                self.fail([sprite_id], self.located(sprite_id, error.field, error.message))
        elif isinstance(error, PixelbuildError):
            self.fail(sprite_ids, str(error))
        elif isinstance(error, OSError):
            self.fail(sprite_ids, describe_os_error(error))
        else:
            self.fail(sprite_ids, _bug(error))

    def _stop_for_disk_full(self, error: DiskFull) -> None:
        """A full disk fails every write to come: stop (finished work is journaled), say it once."""
        with self.lock:
            if self.disk_full is not None:
                return
            self.disk_full = error
        self.on_stop()


def _bug(error: Exception) -> str:
    """A bug in one paragraph; its traceback goes to stderr behind a switch."""
    if os.environ.get("PIXELBUILD_DEBUG"):
        if isinstance(error, WorkerBug):  # its traceback is the worker's
            sys.stderr.write(error.trace)
        else:
            traceback.print_exception(error)
    detail = (
        error.detail
        if isinstance(error, WorkerBug)
        else "".join(traceback.format_exception_only(type(error), error)).strip()
    ).replace("\n", " ")
    return (
        f"internal error ({detail}); this is a bug. Run again with PIXELBUILD_DEBUG=1 for the traceback and report it."
    )
