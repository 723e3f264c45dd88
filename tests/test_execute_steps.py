"""The steps a run hands to doit: each sprite after the generations it needs, batches that never wait on
another batch's steps, generation-free sprites in chunks; doit reached through one module only, and
running them as the engine needs."""

from __future__ import annotations

import re
import threading
from types import SimpleNamespace
from typing import Any

import pytest

from pixelbuild.execute.doit_runner import Step, run_steps
from pixelbuild.execute.orchestrate import batches
from pixelbuild.plan import Action, Decision
from tests.conftest import REPO


def _steps(stale: list[Decision], order: list[str], size: int) -> list[list[Any]]:
    finishing = SimpleNamespace(finish_chunk=None, finish_sprite=None, remove=None)
    generation = SimpleNamespace(generate=None)
    return list(batches(stale, order, finishing, generation, 1, size))  # type: ignore[arg-type]


def test_a_shared_generation_runs_once_and_only_steps_of_its_batch_wait_for_it() -> None:
    stale = [
        Decision("a", Action.GENERATE, missing=("g1",)),
        Decision("b", Action.GENERATE, missing=("g1", "g2")),
        Decision("c", Action.GENERATE, missing=("g2",)),
    ]
    first, second = _steps(stale, ["g1", "g2"], size=2)
    assert [(s.name, s.after) for s in first] == [
        ("gen:g1", ()),
        ("sprite:a", ("gen:g1",)),
        ("gen:g2", ()),
        ("sprite:b", ("gen:g1", "gen:g2")),  # g1 came with an earlier sprite of the same batch
    ]
    # g2 ran in the first batch: a doit run cannot wait for a task of another run, and the cache has it.
    assert [(s.name, s.after) for s in second] == [("sprite:c", ())]


def test_sprites_follow_the_backends_order_and_generation_free_ones_go_in_chunks() -> None:
    stale = [
        Decision("late", Action.GENERATE, missing=("g2",)),
        Decision("p1", Action.POST),
        Decision("early", Action.GENERATE, missing=("g1",)),
        Decision("r1", Action.RESTORE),
        Decision("p2", Action.POST),
        Decision("gone", Action.REMOVE),
    ]
    (steps,) = _steps(stale, ["g1", "g2"], size=100)
    assert [s.name for s in steps] == [
        "post:p1+1",  # chunks shrink towards the end: two sprites for one worker make two chunks
        "post:p2+1",
        "restore:r1+1",
        "remove:gone",
        "gen:g1",
        "sprite:early",
        "gen:g2",
        "sprite:late",
    ]
    assert [len(s.args[0]) for s in steps[:3]] == [1, 1, 1] and steps[0].args[0][0].sprite_id == "p1"


def test_only_the_doit_runner_imports_doit() -> None:
    importing = sorted(
        path.relative_to(REPO).as_posix()
        for path in (REPO / "pixelbuild").rglob("*.py")
        if re.search(r"^\s*(import doit|from doit)", path.read_text(), re.MULTILINE)
    )
    assert importing == ["pixelbuild/execute/doit_runner.py"]


@pytest.mark.parametrize("threads", [1, 3])
def test_doit_runs_every_step_after_the_steps_it_waits_for_and_goes_on_after_a_failure(threads: int) -> None:
    ran: list[str] = []
    lock = threading.Lock()

    def step(name: str, ok: bool = True) -> bool:
        with lock:
            ran.append(name)
        return ok

    steps = [
        Step("sprite:a", step, ("sprite:a",), ("gen:a",)),
        Step("gen:a", step, ("gen:a",)),
        Step("gen:b", step, ("gen:b", False)),  # fails: its sprite never runs, the others do
        Step("sprite:b", step, ("sprite:b",), ("gen:b",)),
        Step("sprite:c", step, ("sprite:c",)),
    ]
    code, errors = run_steps(steps, threads)
    assert code != 0 and errors == ""
    assert sorted(ran) == ["gen:a", "gen:b", "sprite:a", "sprite:c"]
    assert ran.index("gen:a") < ran.index("sprite:a")
    assert run_steps([Step("only", step, ("only",))], threads) == (0, "")


def test_doit_refuses_a_step_that_waits_for_no_step() -> None:
    code, errors = run_steps([Step("sprite:a", lambda: True, (), ("gen:missing",))], 1)
    assert code != 0 and "gen:missing" in errors
