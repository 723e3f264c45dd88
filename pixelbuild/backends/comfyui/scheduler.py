"""Dispatch work items over several servers, each holding up to K items at once.

Each server runs K worker threads that pull from one shared list, so a server takes work exactly when it
has a free slot: the least loaded (or fastest) server gets the next item, and each server's queue stays fed.
Items carry a *group* (the checkpoint + LoRA set): a server keeps to its current group while that group has
items, and a server looking for new work prefers a group no other server is on. Joining a group another
server is already on costs a model load, so an idle server does that only when the group's remaining work,
shared by the servers on it, would outlast the load; both times are learned during the run (the gap
between completions, and how much longer a group's first item takes).

Two items a server takes one after the other are submitted in that order: ``work`` gets a ``Turn`` to
hold around its submission (K threads would otherwise race, and a server's queue order is its
execution order: a race across a group boundary costs a model load).

Servers of different speeds share the list the same way (a fast one frees its slots more often), but at the
tail a slow server must not take the last items: it declines an item when, were the group's pending items
handed out one by one to whichever server on the group would finish each first (at the speeds observed so
far, behind what each already holds), it would get none of them. So the build ends when the
fleet's work runs out, not when the slowest server's queue does.

A server whose work raises ``ServerDown`` is taken out, its item goes back to the front of the list for the
others, and a probe brings it back when it answers again. When no server that may run an item is up for
``unavailable_timeout`` seconds, the item is given up.
"""

from __future__ import annotations

import heapq
import logging
import threading
import time
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")


class ServerDown(Exception):
    """Raised by the work function: this server cannot be reached; run the item elsewhere."""


@dataclass
class _Server:
    index: int
    slots: int
    up: bool = True
    group: Hashable | None = None
    active: int = 0
    down_reason: str = ""
    failures: int = 0
    switched_at: float | None = None  # when the current group was taken up
    first_done: bool = False  # the current group's first item has completed
    last_done: float | None = None
    per_item: float | None = None  # seconds of service per item within a group (EWMA)
    first_item: float | None = None  # seconds from a switch to the first completion (EWMA)
    tickets: int = 0  # submission turns handed out, in pick order
    next_turn: int = 0  # the ticket whose submission may go next
    released: set[int] = field(default_factory=set)


def _ewma(old: float | None, new: float, weight: float = 0.3) -> float:
    return new if old is None else old + weight * (new - old)


@dataclass
class _Entry(Generic[T]):
    item: T
    group: Hashable
    eligible: frozenset[int]
    attempts: int = 0
    stuck_since: float | None = None
    picked_at: float | None = None


class Turn:
    """A work item's place in its server's submission order: ``with turn:`` waits until every item the
    server took earlier has submitted (or ended), and lets the next one go on leaving."""

    def __init__(self, cond: threading.Condition, server: _Server, ticket: int) -> None:
        self._cond = cond
        self._server = server
        self._ticket = ticket
        self._done = False

    def __enter__(self) -> Turn:
        with self._cond:
            while not self._done and self._server.next_turn != self._ticket:
                self._cond.wait(0.5)
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    def release(self) -> None:
        """Give the turn up (idempotent); later tickets may then submit."""
        with self._cond:
            if self._done:
                return
            self._done = True
            server = self._server
            server.released.add(self._ticket)
            while server.next_turn in server.released:
                server.released.remove(server.next_turn)
                server.next_turn += 1
            self._cond.notify_all()


@dataclass
class SchedulerStats:
    """Counters for tests and benchmarks."""

    dispatched: list[int] = field(default_factory=list)  # per server
    group_switches: list[int] = field(default_factory=list)  # per server
    requeued: int = 0
    steals_declined: int = 0  # times an idle server stayed idle rather than load another's group
    tail_declined: int = 0  # times a server left an item to faster ones that would finish it sooner


class Scheduler(Generic[T]):
    """Feeds ``work(server_index, item, turn)`` from worker threads; see the module docstring.

    ``clock`` (``time.monotonic`` by default) times ``unavailable_timeout`` and the learned item and
    model-load times.
    """

    def __init__(
        self,
        slots: Sequence[int],
        *,
        work: Callable[[int, T, Turn], None],
        give_up: Callable[[T, str], None],
        probe: Callable[[int], bool],
        unavailable_timeout: float = 30.0,
        probe_interval: float = 1.0,
        max_attempts: int = 4,
        name: str = "comfyui",
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._clock = clock  # seconds; tests pass a fake one to step through timeouts and estimates
        self._servers = [_Server(index, count) for index, count in enumerate(slots)]
        self._work = work
        self._give_up = give_up
        self._probe = probe
        self._unavailable_timeout = unavailable_timeout
        self._probe_interval = probe_interval
        self._max_attempts = max_attempts
        self._pending: list[_Entry[T]] = []
        self._cond = threading.Condition()
        self._closed = False
        self._stopped = False  # cancel(): hand out nothing more
        self._threads: list[threading.Thread] = []
        self.stats = SchedulerStats([0] * len(slots), [0] * len(slots))
        self._name = name
        self._started = False

    # --- public API ------------------------------------------------------------------------------------

    def start(self) -> None:
        """Start the worker threads and the probe thread."""
        if self._started:
            return
        self._started = True
        for server in self._servers:
            for slot in range(server.slots):
                thread = threading.Thread(
                    target=self._worker,
                    args=(server,),
                    name=f"{self._name}-{server.index}.{slot}",
                    daemon=True,
                )
                thread.start()
                self._threads.append(thread)
        probe = threading.Thread(target=self._prober, name=f"{self._name}-probe", daemon=True)
        probe.start()
        self._threads.append(probe)

    def add(self, items: Sequence[tuple[T, Hashable, frozenset[int]]]) -> None:
        """Queue ``(item, group, eligible server indexes)`` in the given order."""
        with self._cond:
            for item, group, eligible in items:
                self._pending.append(_Entry(item, group, eligible))
            self._cond.notify_all()

    def mark_down(self, index: int, reason: str) -> None:
        """Take server ``index`` out (e.g. it did not answer at start)."""
        with self._cond:
            self._set_down(self._servers[index], reason)

    def is_up(self, index: int) -> bool:
        """Whether server ``index`` currently takes work."""
        return self._servers[index].up

    def cancel(self) -> list[T]:
        """Stop handing out work; return the items that were never started."""
        with self._cond:
            self._stopped = True
            items = [entry.item for entry in self._pending]
            self._pending.clear()
            self._cond.notify_all()
            return items

    def close(self, timeout: float = 5.0) -> None:
        """Stop all threads (after their current item)."""
        with self._cond:
            self._closed = True
            self._stopped = True
            self._cond.notify_all()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            if thread is not threading.current_thread():
                thread.join(max(0.0, deadline - time.monotonic()))

    def pending_count(self) -> int:
        """Items not yet handed to a server."""
        with self._cond:
            return len(self._pending)

    # --- internals -------------------------------------------------------------------------------------

    def _worker(self, server: _Server) -> None:
        while True:
            picked = self._next(server)
            if picked is None:
                return
            entry, turn = picked
            try:
                self._work(server.index, entry.item, turn)
            except ServerDown as error:
                self._server_failed(server, entry, str(error))
            except BaseException as error:  # a bug must fail one item, not hang the build
                log.exception("work item failed unexpectedly")
                self._give_up(entry.item, f"internal error: {type(error).__name__}: {error}")
            else:
                with self._cond:
                    server.failures = 0
                    self._completed(server, entry)
            finally:
                turn.release()
                with self._cond:
                    server.active -= 1
                    self._cond.notify_all()

    def _next(self, server: _Server) -> tuple[_Entry[T], Turn] | None:
        with self._cond:
            while not self._closed:
                if not self._stopped:
                    self._expire_stuck()
                    if server.up:
                        entry = self._pick(server)
                        if entry is not None:
                            server.active += 1
                            self.stats.dispatched[server.index] += 1
                            turn = Turn(self._cond, server, server.tickets)
                            server.tickets += 1
                            return entry, turn
                self._cond.wait(0.5)
            return None

    def _pick(self, server: _Server) -> _Entry[T] | None:
        candidates = [entry for entry in self._pending if server.index in entry.eligible]
        if not candidates:
            return None
        chosen = next((entry for entry in candidates if entry.group == server.group), None)
        if chosen is None:
            taken = {other.group for other in self._servers if other is not server and other.up}
            chosen = next((entry for entry in candidates if entry.group not in taken), None)
        if chosen is None:
            chosen = next((entry for entry in candidates if self._worth_joining(server, entry.group)), None)
            if chosen is None:
                self.stats.steals_declined += 1
                return None
        if self._others_finish_sooner(server, chosen):
            # Leave it to the faster ones; but an item no other live server may run is ours to do.
            alone = next((entry for entry in candidates if not self._others_may_run(server, entry)), None)
            if alone is None:
                self.stats.tail_declined += 1
                return None
            chosen = alone
        if chosen.group != server.group:
            self.stats.group_switches[server.index] += 1
            server.group = chosen.group
            server.switched_at = self._clock()
            server.first_done = False
        self._pending.remove(chosen)
        chosen.picked_at = self._clock()
        return chosen

    def _others_may_run(self, server: _Server, entry: _Entry[T]) -> bool:
        return any(other is not server and other.up and other.index in entry.eligible for other in self._servers)

    def _others_finish_sooner(self, server: _Server, entry: _Entry[T]) -> bool:
        """Whether, handing this group's pending items out one by one to whichever server would finish each
        first (at the speeds observed, behind what each holds), ``server`` would get none of them: the
        servers already on the group finish them all sooner. Without estimates: no."""
        mine = server.per_item
        if mine is None:
            return False
        peers: list[tuple[float, int, float]] = []
        for other in self._servers:
            if other is server or not other.up or other.index not in entry.eligible or other.group != entry.group:
                continue  # a server on another group would need a model load first: not counted on
            if other.per_item is None:
                return False  # a server we know nothing of yet: do not bet against it
            peers.append(((other.active + 1) * other.per_item, other.index, other.per_item))
        if not peers:
            return False
        heapq.heapify(peers)
        mine_at = (server.active + 1) * mine
        # Stops at the first item this server would finish soonest: a few dozen steps at most.
        for pending in self._pending:
            if pending.group != entry.group:
                continue
            finish, index, per_item = peers[0]
            if mine_at <= finish:
                return False
            heapq.heapreplace(peers, (finish + per_item, index, per_item))
        return True

    def _worth_joining(self, server: _Server, group: Hashable) -> bool:
        """Whether loading ``group``, which other servers are on, finishes its items sooner than leaving
        them to those servers. Without estimates yet, join: throughput first."""
        owners = [other for other in self._servers if other is not server and other.up and other.group == group]
        per_item = [other.per_item for other in owners if other.per_item is not None]
        penalties = [
            other.first_item - other.per_item
            for other in self._servers
            if other.first_item is not None and other.per_item is not None
        ]
        if not owners or not per_item or not penalties:
            return True
        pending = sum(1 for entry in self._pending if entry.group == group)
        remaining = pending * (sum(per_item) / len(per_item)) / len(owners)
        load = max(0.0, sum(penalties) / len(penalties))
        return remaining > load + min(per_item)

    def _completed(self, server: _Server, entry: _Entry[T]) -> None:
        """Learn the time per item and the extra time of a group's first item (the model load)."""
        now = self._clock()
        if entry.group != server.group:
            return
        if not server.first_done:
            server.first_done = True
            if server.switched_at is not None:
                server.first_item = _ewma(server.first_item, now - server.switched_at)
        elif server.last_done is not None:
            # Served from when it was handed out or the previous item ended, whichever came later: idle
            # time between items is not service time.
            began = max(server.last_done, entry.picked_at or server.last_done)
            server.per_item = _ewma(server.per_item, now - began)
        server.last_done = now

    def _server_failed(self, server: _Server, entry: _Entry[T], reason: str) -> None:
        with self._cond:
            entry.attempts += 1
            self._set_down(server, reason)
            if entry.attempts >= self._max_attempts:
                give_up = True
            else:
                give_up = False
                self._pending.insert(0, entry)
                self.stats.requeued += 1
            self._cond.notify_all()
        if give_up:
            self._give_up(entry.item, f"tried {entry.attempts} times; last: {reason}")

    def _set_down(self, server: _Server, reason: str) -> None:
        if server.up:
            log.warning("ComfyUI server #%d taken out: %s", server.index, reason)
        server.up = False
        server.down_reason = reason
        server.group = None

    def _expire_stuck(self) -> None:
        """Give up items no live server may run, once that has lasted ``unavailable_timeout``."""
        now = self._clock()
        expired: list[_Entry[T]] = []
        for entry in self._pending:
            if any(self._servers[index].up for index in entry.eligible):
                entry.stuck_since = None
            elif entry.stuck_since is None:
                entry.stuck_since = now
            elif now - entry.stuck_since >= self._unavailable_timeout:
                expired.append(entry)
        if not expired:
            return
        for entry in expired:
            self._pending.remove(entry)
        reasons = "; ".join(
            sorted({self._servers[index].down_reason for entry in expired for index in entry.eligible} - {""})
        )
        # Outside the lock: give_up records an outcome and may take other locks.
        self._cond.release()
        try:
            for entry in expired:
                self._give_up(entry.item, reasons or "no server is up")
        finally:
            self._cond.acquire()

    def _prober(self) -> None:
        while True:
            with self._cond:
                if self._closed:
                    return
                down = [server for server in self._servers if not server.up]
                self._cond.wait(self._probe_interval)
                if self._closed:
                    return
            for server in down:
                if self._probe(server.index):
                    with self._cond:
                        log.warning("ComfyUI server #%d answers again", server.index)
                        server.up = True
                        self._cond.notify_all()
