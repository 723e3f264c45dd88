"""The multi-server dispatcher on its own: slots, model-group affinity, failover, revival, give-up, cancel.

No assertion here measures wall-clock time: timeouts and the learned item and model-load times run on
clocks the tests control, and concurrency is shown by gates the work functions wait at.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable

from pixelbuild.backends.comfyui.scheduler import Scheduler, ServerDown


def _wait_for(condition: Callable[[], bool], poke: Callable[[], None] = lambda: None, timeout: float = 10.0) -> None:
    """Poll ``condition`` (calling ``poke`` between polls) until it holds; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting for the scheduler"
        poke()
        time.sleep(0.002)


class FakeClock:
    """A clock that moves only when the test says; counts reads, so a test knows the scheduler looked."""

    def __init__(self) -> None:
        self.now = 0.0
        self.reads = 0
        self._lock = threading.Lock()

    def __call__(self) -> float:
        with self._lock:
            self.reads += 1
            return self.now

    def advance(self, seconds: float) -> int:
        """Move on by ``seconds``; return the read count at that moment (later reads see the new time)."""
        with self._lock:
            self.now += seconds
            return self.reads


class ServerTimelines:
    """One clock per worker thread, moved only by the work that thread does: with one slot per server,
    each server's own timeline, so learned times are exact whatever the machine's load."""

    def __init__(self) -> None:
        self._local = threading.local()

    def __call__(self) -> float:
        now: float = getattr(self._local, "now", 0.0)
        return now

    def spend(self, seconds: float) -> None:
        """The calling server works for ``seconds``."""
        self._local.now = self() + seconds


class Recorder:
    """A work function with per-server behaviour and a log of (server, item)."""

    def __init__(
        self,
        delay: float = 0.01,
        failing: Callable[[int], bool] = lambda index: False,
        together: int = 0,
    ) -> None:
        self.delay = delay
        self.failing = failing
        # The first `together` calls wait for each other: that many items were running at once.
        self.together = together
        self.arrived = 0
        self.barrier = threading.Barrier(together) if together else None
        self.done: list[tuple[int, str]] = []
        self.given_up: list[tuple[str, str]] = []
        self.active: dict[int, int] = {}
        self.peak: dict[int, int] = {}
        self.lock = threading.Lock()
        self.finished = threading.Event()
        self.expected = 0

    def work(self, index: int, item: str, turn: object = None) -> None:
        with self.lock:
            self.active[index] = self.active.get(index, 0) + 1
            self.peak[index] = max(self.peak.get(index, 0), self.active[index])
            self.arrived += 1
            meet = self.arrived <= self.together
        try:
            if meet and self.barrier is not None:
                with contextlib.suppress(threading.BrokenBarrierError):  # then the peak assertion says it
                    self.barrier.wait(10)
            time.sleep(self.delay)
            if self.failing(index):
                raise ServerDown(f"server {index} is gone")
            with self.lock:
                self.done.append((index, item))
        finally:
            with self.lock:
                self.active[index] -= 1
            self._check()

    def give_up(self, item: str, reason: str) -> None:
        with self.lock:
            self.given_up.append((item, reason))
        self._check()

    def _check(self) -> None:
        with self.lock:
            if len(self.done) + len(self.given_up) >= self.expected:
                self.finished.set()


def _run(
    slots: list[int],
    items: list[tuple[str, str]],
    recorder: Recorder,
    probe: Callable[[int], bool] = lambda i: False,
    unavailable_timeout: float = 30.0,
) -> Scheduler[str]:
    recorder.expected = len(items)
    scheduler: Scheduler[str] = Scheduler(
        slots,
        work=recorder.work,
        give_up=recorder.give_up,
        probe=probe,
        probe_interval=0.05,
        unavailable_timeout=unavailable_timeout,
    )
    scheduler.start()
    everyone = frozenset(range(len(slots)))
    scheduler.add([(name, group, everyone) for name, group in items])
    assert recorder.finished.wait(10)
    return scheduler


def test_every_item_runs_once_and_slots_are_used() -> None:
    recorder = Recorder(delay=0.0, together=4)  # every slot of both servers busy at once
    items = [(f"i{n}", "g") for n in range(12)]
    scheduler = _run([3, 1], items, recorder)
    scheduler.close()
    assert sorted(item for _, item in recorder.done) == sorted(name for name, _ in items)
    assert recorder.peak == {0: 3, 1: 1}


def test_one_server_keeps_groups_together() -> None:
    recorder = Recorder(delay=0.0)
    items = [(f"i{n}", "abc"[n % 3]) for n in range(30)]  # interleaved groups
    scheduler = _run([2], items, recorder)
    scheduler.close()
    assert sorted(item for _, item in recorder.done) == sorted(name for name, _ in items)
    assert scheduler.stats.group_switches == [3]  # handed out group by group despite the interleaving


def test_servers_prefer_different_groups() -> None:
    recorder = Recorder(delay=0.02)
    items = [(f"a{n}", "a") for n in range(6)] + [(f"b{n}", "b") for n in range(6)]
    scheduler = _run([1, 1], items, recorder)
    scheduler.close()
    by_server = {index: {item[0] for i, item in recorder.done if i == index} for index in (0, 1)}
    assert by_server[0] != by_server[1]
    assert sum(scheduler.stats.group_switches) <= 3


def test_failed_server_work_goes_to_the_others() -> None:
    recorder = Recorder(delay=0.01, failing=lambda index: index == 0)
    items = [(f"i{n}", "g") for n in range(8)]
    scheduler = _run([2, 2], items, recorder)
    scheduler.close()
    assert sorted(item for _, item in recorder.done) == sorted(name for name, _ in items)
    assert {index for index, _ in recorder.done} == {1}
    assert not scheduler.is_up(0)
    assert scheduler.stats.requeued >= 1


def test_all_down_gives_up_once_the_timeout_has_passed() -> None:
    clock = FakeClock()
    recorder = Recorder(delay=0.0, failing=lambda index: True)
    recorder.expected = 2
    scheduler: Scheduler[str] = Scheduler(
        [1], work=recorder.work, give_up=recorder.give_up, probe=lambda i: False, unavailable_timeout=30, clock=clock
    )

    def wake() -> None:  # no new items: just a nudge, so the worker looks at the clock now
        scheduler.add([])

    scheduler.start()
    scheduler.add([("x", "g", frozenset({0})), ("y", "g", frozenset({0}))])
    _wait_for(lambda: not scheduler.is_up(0))
    # Each read of the clock, once the only server is down, is one pass over the stuck items; after two
    # reads a whole pass has finished at the time read.
    seen = clock.advance(0.0)
    _wait_for(lambda: clock.reads >= seen + 2, wake)
    seen = clock.advance(29.9)
    _wait_for(lambda: clock.reads >= seen + 2, wake)
    assert recorder.given_up == []  # 29.9 s without a server: still waiting for one
    clock.advance(0.2)
    _wait_for(recorder.finished.is_set, wake)
    scheduler.close()
    assert sorted(item for item, _ in recorder.given_up) == ["x", "y"]
    assert "server 0 is gone" in recorder.given_up[0][1]


def test_probe_brings_a_server_back() -> None:
    state = {"down": True}
    recorder = Recorder(delay=0.0, failing=lambda index: state["down"])

    def probe(index: int) -> bool:
        state["down"] = False  # the server came back
        return True

    scheduler = _run([1], [("x", "g")], recorder, probe=probe, unavailable_timeout=5)
    scheduler.close()
    assert recorder.done == [(0, "x")]


def test_cancel_returns_unstarted_items() -> None:
    started, release = threading.Event(), threading.Event()
    done: list[str] = []

    def work(index: int, item: str, turn: object) -> None:
        started.set()
        release.wait(10)
        done.append(item)

    scheduler: Scheduler[str] = Scheduler([1], work=work, give_up=lambda item, reason: None, probe=lambda i: True)
    scheduler.start()
    scheduler.add([(f"i{n}", "g", frozenset({0})) for n in range(5)])
    assert started.wait(10)
    left = scheduler.cancel()
    assert left == ["i1", "i2", "i3", "i4"] and scheduler.pending_count() == 0
    release.set()
    scheduler.close()
    assert done == ["i0"]


def test_ineligible_servers_get_nothing() -> None:
    recorder = Recorder(delay=0.0)
    recorder.expected = 4
    scheduler: Scheduler[str] = Scheduler([1, 1], work=recorder.work, give_up=recorder.give_up, probe=lambda i: True)
    scheduler.start()
    scheduler.add([(f"i{n}", "g", frozenset({1})) for n in range(4)])
    assert recorder.finished.wait(5)
    scheduler.close()
    assert {index for index, _ in recorder.done} == {1}


class LoadingServers:
    """Two one-slot servers that pay ``penalty`` seconds (on their own timelines) when an item's group
    differs from the last one they ran.

    Gates put the scheduler at one decision: the server on the single-item group ``b`` finishes it only
    once the other server has finished three items of ``a`` (so the scheduler has learned the time per
    item and the cost of a load), and that other server then holds its fourth item until the idle server
    has chosen: join ``a`` (paying a load) or stay idle.
    """

    def __init__(self, penalty: float, item_time: float, groups: dict[str, str]) -> None:
        self.penalty = penalty
        self.item_time = item_time
        self.groups = groups
        self.clock = ServerTimelines()
        self.loaded: dict[int, str] = {}
        self.loads = 0
        self.ran: dict[int, list[str]] = {0: [], 1: []}
        self.lock = threading.Lock()
        self.three_of_a = threading.Event()
        self.chose = threading.Event()
        self.finished = threading.Event()
        self.scheduler: Scheduler[str] | None = None
        self.on_b: int | None = None

    def work(self, index: int, item: str, turn: object = None) -> None:
        group = self.groups[item]
        with self.lock:
            switch = self.loaded.get(index) != group
            if switch:
                self.loads += 1
                self.loaded[index] = group
            ran_a = sum(self.groups[done] == "a" for done in self.ran[index])
            if group == "b":
                self.on_b = index
            elif index == self.on_b:
                self.chose.set()  # the server that ran `b` took an item of `a`
        if group == "b":
            self.three_of_a.wait(10)
        elif ran_a == 3:
            assert self.scheduler is not None
            scheduler = self.scheduler
            _wait_for(lambda: self.chose.is_set() or scheduler.stats.steals_declined > 0)
        self.clock.spend(self.item_time + (self.penalty if switch else 0.0))
        with self.lock:
            self.ran[index].append(item)
            if group == "a" and len(self.ran[index]) == 3:
                self.three_of_a.set()
            if sum(len(items) for items in self.ran.values()) == len(self.groups):
                self.finished.set()


def _loading_run(penalty: float, item_time: float, sizes: dict[str, int]) -> tuple[LoadingServers, Scheduler[str]]:
    groups = {f"{group}{n}": group for group, size in sizes.items() for n in range(size)}
    servers = LoadingServers(penalty, item_time, groups)
    scheduler: Scheduler[str] = Scheduler(
        [1, 1], work=servers.work, give_up=lambda item, reason: None, probe=lambda index: True, clock=servers.clock
    )
    servers.scheduler = scheduler
    scheduler.start()
    scheduler.add([(item, group, frozenset({0, 1})) for item, group in groups.items()])
    assert servers.finished.wait(20)
    scheduler.close()
    return servers, scheduler


def _roles(servers: LoadingServers) -> tuple[list[str], list[str]]:
    """What the server that started on ``a`` ran, and what the one that started on ``b`` ran."""
    first_a = 0 if servers.groups[servers.ran[0][0]] == "a" else 1
    return servers.ran[first_a], servers.ran[1 - first_a]


def test_idle_server_does_not_load_a_group_that_is_nearly_done() -> None:
    # 6 items of 0.01 s left to the server already on `a`, against a 0.3 s load: better to idle.
    servers, scheduler = _loading_run(penalty=0.3, item_time=0.01, sizes={"a": 10, "b": 1})
    on_a, on_b = _roles(servers)
    assert on_b == ["b0"] and sorted(on_a) == sorted(f"a{n}" for n in range(10))
    assert servers.loads == 2 and scheduler.stats.steals_declined >= 1


def test_idle_server_joins_a_long_group() -> None:
    # 36 items of 0.03 s left to one server, against a 0.05 s load: loading it pays off.
    servers, scheduler = _loading_run(penalty=0.05, item_time=0.03, sizes={"a": 40, "b": 1})
    on_a, on_b = _roles(servers)
    assert on_b[0] == "b0" and len(on_b) > 1 and all(item.startswith("a") for item in on_b[1:])
    assert sorted(on_a + on_b[1:]) == sorted(f"a{n}" for n in range(40))
    assert servers.loads == 3 and sorted(scheduler.stats.group_switches) == [1, 2]


def test_a_server_submits_in_the_order_it_took_the_items() -> None:
    """K threads of one server race; the Turn makes their submissions follow the pick order."""
    import random

    from pixelbuild.backends.comfyui.scheduler import Turn

    picked: list[str] = []
    submitted: list[str] = []
    lock = threading.Lock()
    finished = threading.Event()
    rng = random.Random(5)
    items = [f"i{n:02d}" for n in range(30)]

    def work(index: int, item: str, turn: Turn) -> None:
        with lock:
            picked.append(item)
        time.sleep(rng.random() * 0.01)  # an upload, say: later picks may get here first
        with turn, lock:
            submitted.append(item)
        if len(submitted) == len(items):
            finished.set()

    scheduler: Scheduler[str] = Scheduler([4], work=work, give_up=lambda item, reason: None, probe=lambda i: True)
    scheduler.start()
    scheduler.add([(item, "g", frozenset({0})) for item in items])
    assert finished.wait(10)
    scheduler.close()
    assert submitted == items


def test_a_slow_server_leaves_the_last_items_to_faster_ones() -> None:
    """At the tail, a server declines an item that the servers on its group would finish sooner."""
    recorder = Recorder()
    scheduler: Scheduler[str] = Scheduler([2, 2, 2], work=recorder.work, give_up=recorder.give_up, probe=lambda i: True)
    fast, medium, slow = scheduler._servers
    fast.per_item, medium.per_item, slow.per_item = 0.1, 0.2, 0.8  # seconds per item, as observed
    for server in scheduler._servers:
        server.group = "g"
    everyone = frozenset({0, 1, 2})
    scheduler.add([(f"i{n}", "g", everyone) for n in range(20)])
    # Plenty left: handed out by earliest finish, the 0.8 s server gets one of the 20: it takes it.
    assert scheduler._pick(slow) is not None
    slow.active = 1
    # Three left, the others each hold one: they finish them at 0.2, 0.3 and 0.4 s (the slow one: 1.6 s).
    del scheduler._pending[3:]
    fast.active = medium.active = 1
    assert scheduler._pick(slow) is None and scheduler.stats.tail_declined == 1
    # The fast server itself is not put off by its peers, and an idle one never waits on busy ones.
    assert scheduler._pick(fast) is not None
    slow.active = fast.active = medium.active = 0
    slow.per_item = fast.per_item = medium.per_item = 0.1
    assert scheduler._pick(slow) is not None  # equal speeds, all idle: whoever asks first takes it
    # An item only the slow server may run is always taken.
    slow.per_item, slow.active = 0.8, 1
    scheduler.add([("mine", "g", frozenset({2}))])
    picked = scheduler._pick(slow)
    assert picked is not None and picked.item == "mine"
    # Nor does it bet against a server it has no estimate for yet.
    medium.per_item = None
    assert scheduler._pick(slow) is not None


def test_heterogeneous_servers_never_all_decline() -> None:
    """Whatever the speeds and loads, some server takes the next item (no server waits on the others forever)."""
    import random

    rng = random.Random(3)
    for _ in range(300):
        slots = [rng.randint(1, 3) for _ in range(rng.randint(2, 5))]
        scheduler: Scheduler[str] = Scheduler(
            slots, work=lambda *a: None, give_up=lambda *a: None, probe=lambda i: True
        )
        for server in scheduler._servers:
            server.group = "g"
            server.per_item = rng.choice([0.1, 0.2, 0.5, 0.8, 0.8001])
            server.active = rng.randint(0, server.slots - 1)
        scheduler.add([(f"i{n}", "g", frozenset(range(len(slots)))) for n in range(rng.randint(1, 6))])
        asking = [server for server in scheduler._servers if server.active < server.slots]
        assert any(not scheduler._others_finish_sooner(server, scheduler._pending[0]) for server in asking)
