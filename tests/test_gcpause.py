"""The cyclic collector is paused while a command loads and plans a project, and only then."""

from __future__ import annotations

import gc
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from pixelbuild.backends import create_backend
from pixelbuild.backends.base import Backend, BackendRequest
from pixelbuild.gcpause import PausedGC
from tests.conftest import Result

#: Functions of the load-and-plan phase: no collection may run inside them.
_LOADING = {"open_session", "read_current_state", "make_plan", "parse_lock"}


@pytest.fixture
def collected_in() -> Iterator[set[str]]:
    """The functions of ``_LOADING`` that were running when an automatic collection started, while the test
    runs with a threshold that makes any allocation collect (when the collector is on)."""
    seen: set[str] = set()

    def record(phase: str, info: dict[str, int]) -> None:
        if phase != "start":
            return
        frame = sys._getframe(1)
        while frame is not None:
            if frame.f_code.co_name in _LOADING:
                seen.add(frame.f_code.co_name)
            frame = frame.f_back

    thresholds = gc.get_threshold()
    gc.callbacks.append(record)
    gc.set_threshold(1)
    try:
        yield seen
    finally:
        gc.set_threshold(*thresholds)
        gc.callbacks.remove(record)


def test_a_pause_turns_the_collector_off_until_its_end_and_leaves_a_callers_pause_alone() -> None:
    assert gc.isenabled()
    with PausedGC() as pause:
        assert not gc.isenabled()
        built = [[index] for index in range(1000)]
        pause.end()
        assert gc.isenabled()
        assert gc.get_freeze_count() >= len(built)  # what the pause built stays out of the collector's walks...
        pause.end()
        assert gc.isenabled()
    assert gc.isenabled()
    assert gc.get_freeze_count() == 0  # ...until the block ends
    gc.disable()
    try:
        with PausedGC() as inner:
            inner.end()
            assert not gc.isenabled()  # the caller's pause, not ours to end
        assert not gc.isenabled()
    finally:
        gc.enable()
    with pytest.raises(KeyError), PausedGC():
        raise KeyError("a failed load")
    assert gc.isenabled()


def test_check_plan_and_build_collect_nothing_while_loading_and_planning(
    cli: Callable[..., Result], make_project: Callable[..., Path], collected_in: set[str]
) -> None:
    project = make_project()
    assert cli("build", "-C", project).code == 0
    (project / "pixelbuild.yaml").write_text((project / "pixelbuild.yaml").read_text().replace("blue", "red"))
    assert cli("plan", "-C", project).code == 0
    assert cli("check", "-C", project).code != 0  # hero is stale
    assert cli("build", "-C", project).code == 0
    assert collected_in == set()
    assert gc.isenabled()
    assert gc.get_freeze_count() == 0


def test_a_bad_manifest_leaves_the_collector_on(cli: Callable[..., Result], make_project: Callable[..., Path]) -> None:
    project = make_project("version: 1\nsprites: [{id: hero}]\n")
    for command in ("check", "plan", "build"):
        assert cli(command, "-C", project).code != 0
        assert gc.isenabled()
        assert gc.get_freeze_count() == 0


def test_a_build_generates_with_the_collector_on(
    cli: Callable[..., Result], make_project: Callable[..., Path]
) -> None:
    states: list[bool] = []

    def factory(request: BackendRequest) -> Backend:
        states.append(gc.isenabled())
        return create_backend(request)

    project = make_project()
    assert cli("build", "-C", project, backend_factory=factory).code == 0
    assert states == [True]
    assert gc.isenabled()
    assert gc.get_freeze_count() == 0
