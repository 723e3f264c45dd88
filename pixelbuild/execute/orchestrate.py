"""The run over a plan: start the backend and the worker pool, order the stale work into steps (each
sprite right after the generations it needs, in the backend's order), run them batch by batch, atlases
last, and say what came of it.

Failures are collected, not raised: each finished sprite is journaled at once, so an interrupted build
keeps it. Generation runs in threads; CPU-bound post-processing in worker processes when ``jobs > 1``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

from pixelbuild.execute.atlases import Atlases
from pixelbuild.execute.context import EngineContext
from pixelbuild.execute.doit_runner import Step, run_steps
from pixelbuild.execute.finishing import Finishing
from pixelbuild.execute.generation import Generation
from pixelbuild.execute.outcomes import EngineResult, Outcomes
from pixelbuild.execute.outputs import Outputs
from pixelbuild.execute.worker import start_pool
from pixelbuild.plan import Action, Decision, Plan

if TYPE_CHECKING:
    from concurrent.futures import Executor

#: Sprites per doit run (see ``batches``), unless ``EngineContext.sprites_per_run`` says otherwise.
SPRITES_PER_RUN = 1000
#: Most sprites per chunk of generation-free work (one worker call, one doit task, one journal write).
CHUNK_MAX = 16
#: Chunks kept ahead per worker while sizing them: chunks shrink towards the end so workers finish together.
_CHUNKS_PER_WORKER = 4


def run_plan(context: EngineContext, plan: Plan) -> EngineResult:
    """Run every stale decision of ``plan``; failures are collected in the result, not raised.

    A decision the plan found blocked (it would clobber a file pixelbuild does not own) fails at once:
    nothing is generated or written for it.
    """
    outcomes = Outcomes(context)
    plan = _without_blocked(plan, outcomes)
    if not plan.stale and not plan.stale_atlases:
        return outcomes.result
    return _Run(context, outcomes, plan).run()


def _without_blocked(plan: Plan, outcomes: Outcomes) -> Plan:
    """``plan`` less its blocked decisions, each recorded as a failure."""
    blocked = [(d.sprite_id, d.blocked) for d in plan.decisions if d.blocked]
    blocked += [(f"atlas {a.atlas_id}", a.blocked) for a in plan.atlases if a.blocked]
    if not blocked:
        return plan
    for name, why in blocked:
        outcomes.fail([name], f"{why}; nothing was written")
    return Plan([d for d in plan.decisions if not d.blocked], [a for a in plan.atlases if not a.blocked])


class _Run:
    """One run of a plan with stale work: its pool, its backend and its steps."""

    def __init__(self, context: EngineContext, outcomes: Outcomes, plan: Plan) -> None:
        self.ctx = context
        self.outcomes = outcomes
        self.plan = plan
        self.stale = plan.stale
        self.generation = Generation(context, outcomes, plan)
        outcomes.on_stop = self.generation.cancel
        self.outputs = Outputs(context, outcomes)
        self.atlases = Atlases(context, outcomes, self.outputs)
        self.pool: Executor | None = None

    def run(self) -> EngineResult:
        """Run the steps; close the backend and the pool whatever happens; conclude."""
        result = self.outcomes.result
        try:
            # The pool forks first, before any thread exists (backend, doit runner).
            self.pool = start_pool(self.ctx.jobs, sum(1 for d in self.stale if d.action in _POST_PROCESSED))
            finishing = Finishing(self.ctx, self.outcomes, self.outputs, self.generation, self.pool)
            order = self.generation.start()
            self.ctx.progress.start(len(self.generation.jobs), len(self.stale) + len(self.plan.stale_atlases))
            for steps in batches(self.stale, order, finishing, self.generation, self._workers(), self._batch()):
                self._run_steps(steps)
            # Atlases go last: every member they read is finished (or has failed) by now.
            self._run_steps([Step(f"pack:{d.atlas_id}", self.atlases.step, (d,)) for d in self.plan.stale_atlases])
        except KeyboardInterrupt:
            result.interrupted = True
            self.generation.cancel()
        finally:
            self._close()
        return self._conclude()

    def _workers(self) -> int:
        return self.ctx.jobs if self.pool is not None else 1

    def _batch(self) -> int:
        return self.ctx.sprites_per_run or SPRITES_PER_RUN

    def _run_steps(self, steps: Sequence[Step]) -> None:
        if not steps:
            return
        jobs = self.ctx.jobs
        # With worker processes, one thread more than workers keeps a sprite waiting at every worker while
        # others journal their results.
        threads = jobs + 1 if jobs > 1 and self.pool is not None else jobs
        code, errors = run_steps(steps, threads)
        # A failed step (or one whose dependency failed) is recorded already; anything else is doit's.
        outcomes = self.outcomes
        if code != 0 and not outcomes.result.failures and not outcomes.result.repair and outcomes.disk_full is None:
            raise RuntimeError(f"doit could not run the build (exit {code}): {errors}")

    def _close(self) -> None:
        self.generation.close()
        if self.pool is not None:
            self.pool.shutdown(wait=not self.outcomes.result.interrupted, cancel_futures=True)
        self.ctx.progress.finish()

    def _conclude(self) -> EngineResult:
        result = self.outcomes.result
        if self.outcomes.disk_full is not None:
            result.error = self.outcomes.disk_full
            return result  # what was not done is simply not done, as after an interrupt
        self.generation.blame([d for d in self.stale if d.action is not Action.REMOVE])
        result.error = self.outcomes.unavailable_error()
        return result


_POST_PROCESSED = (Action.POST, Action.GENERATE)
_CHUNKED = (Action.POST, Action.RESTORE)  # when they need no generation


def batches(
    stale: Sequence[Decision],
    generation_order: Sequence[str],
    finishing: Finishing,
    generation: Generation,
    workers: int,
    size: int,
) -> Iterator[list[Step]]:
    """The steps of ``stale``, each sprite right after the generations it needs, in the backend's order.

    Interleaving lets finished sprites land (and be journaled) while later ones still generate. Steps come
    in batches of ``size`` sprites, one doit run each: a doit task costs ~3 KB, and 20,000 of them at once
    would double a large build's memory. A generation shared by sprites of two batches runs in the first;
    the second finds it in the cache.
    """
    rank = {key: index for index, key in enumerate(generation_order)}
    ordered = sorted(stale, key=lambda d: min((rank[key] for key in d.missing), default=-1))
    emitted: set[str] = set()
    for start in range(0, len(ordered), size):
        batch = ordered[start : start + size]
        steps = _chunk_steps(batch, finishing, workers)
        in_batch: set[str] = set()  # a doit run's steps may only wait for steps of the same run
        for decision in batch:
            steps += _sprite_steps(decision, finishing, generation, emitted, in_batch)
        yield steps


def _chunk_steps(batch: Sequence[Decision], finishing: Finishing, workers: int) -> list[Step]:
    """Sprites that need no generation, in chunks: a doit task, a worker call and a journal write per sprite
    would cost the build process ~1 ms each, as much CPU as a third worker would take."""
    steps = []
    for kind in _CHUNKED:
        chunk = [d for d in batch if d.action is kind and not d.missing]
        offset = 0
        for count in chunk_sizes(len(chunk), workers):
            part = chunk[offset : offset + count]
            offset += count
            steps.append(Step(f"{kind}:{part[0].sprite_id}+{count}", finishing.finish_chunk, (part,)))
    return steps


def _sprite_steps(
    decision: Decision, finishing: Finishing, generation: Generation, emitted: set[str], in_batch: set[str]
) -> list[Step]:
    """A step of its own for a sprite that is not chunked, after a step for each generation it needs that no
    earlier step made (``emitted``; ``in_batch``: those made in this batch, which it waits for)."""
    if decision.action in _CHUNKED and not decision.missing:
        return []  # in a chunk
    if decision.action is Action.REMOVE:
        return [Step(f"remove:{decision.sprite_id}", finishing.remove, (decision.sprite_id,))]
    steps = []
    for key in decision.missing:
        if key not in emitted:
            emitted.add(key)
            in_batch.add(key)
            steps.append(Step(f"gen:{key}", generation.generate, (key,)))
    after = tuple(f"gen:{key}" for key in decision.missing if key in in_batch)
    steps.append(Step(f"sprite:{decision.sprite_id}", finishing.finish_sprite, (decision,), after))
    return steps


def chunk_sizes(count: int, workers: int) -> list[int]:
    """Sizes of the chunks that split ``count`` sprites between ``workers``: at most ``CHUNK_MAX``, smaller
    towards the end (guided scheduling), so no worker sits idle while another finishes a large last chunk."""
    sizes = []
    remaining = count
    while remaining > 0:
        size = max(1, min(CHUNK_MAX, remaining // (max(1, workers) * _CHUNKS_PER_WORKER)))
        sizes.append(size)
        remaining -= size
    return sizes
