"""Finishing sprites: post-process (in the worker pool) or restore an output, settle it into its lock
entry, drop the files it wrote before, and journal the entry at once, so an interrupted build keeps it;
and removing the sprites the manifest no longer has.

Sprites that need no generation go in chunks (one worker call and one journal write each) while each
sprite still fails, or is deferred, on its own.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from typing import TYPE_CHECKING

from pixelbuild.execute.outcomes import CacheMiss, Deferred
from pixelbuild.execute.worker import PostFailure, PostJob, Rendered, post_process_batch
from pixelbuild.hashing import hash_bytes
from pixelbuild.local.store import FinishedImage, PostRecord
from pixelbuild.lock import LockEntry, OutputRecord
from pixelbuild.plan import Action

if TYPE_CHECKING:
    from concurrent.futures import Executor

    from pixelbuild.execute.context import EngineContext
    from pixelbuild.execute.generation import Generation
    from pixelbuild.execute.outcomes import Outcomes
    from pixelbuild.execute.outputs import Outputs
    from pixelbuild.keys import SpriteKeys
    from pixelbuild.plan import Decision
    from pixelbuild.spec import SpriteSpec


class Finishing:
    """The steps that finish sprites (after their generations) and remove dropped ones."""

    def __init__(
        self,
        context: EngineContext,
        outcomes: Outcomes,
        outputs: Outputs,
        generation: Generation,
        pool: Executor | None,
    ) -> None:
        self.ctx = context
        self.outcomes = outcomes
        self.outputs = outputs
        self.generation = generation
        self.pool = pool

    # ---------------------------------------------------------------- steps

    def finish_sprite(self, decision: Decision) -> bool:
        """The step for one sprite after its generations: post-process or restore, settle, journal."""
        if self.generation.failed(decision):
            return False  # already reported with the generation's error

        def work() -> None:
            sprite = self.ctx.sprites[decision.sprite_id]
            keys = self.ctx.keys[decision.sprite_id]
            if decision.action is Action.RESTORE:
                rendered = self._restore(sprite, keys, decision.restore_from_files)
            else:
                self.ctx.progress.working(sprite.id, "post-processing")
                rendered = self._post_process(sprite, keys)
            entry = self._settle(sprite, keys, rendered)
            self.ctx.journal.record_set(sprite.id, entry)
            self.outcomes.finished([(decision, entry)])

        return self.outcomes.guard([decision.sprite_id], work)

    def finish_chunk(self, decisions: Sequence[Decision]) -> bool:
        """The step for a chunk of sprites that need no generation, all POST or all RESTORE: one worker call
        and one journal write for the chunk, while each sprite still fails (or is deferred) on its own."""
        ok = True
        outcomes: Sequence[Rendered | PostFailure | None] = [None] * len(decisions)  # restored one by one
        if decisions[0].action is Action.POST:
            writable = [d for d in decisions if self.outcomes.guard([d.sprite_id], partial(self._may_write, d))]
            ok = len(writable) == len(decisions)
            posted = self._post_process_chunk(writable) if writable else None
            if posted is None:
                return False
            decisions, outcomes = writable, posted
        settled: list[tuple[Decision, LockEntry]] = []
        for decision, outcome in zip(decisions, outcomes, strict=True):
            work = partial(self._settle_one, decision, outcome, settled)
            ok = self.outcomes.guard([decision.sprite_id], work) and ok
        if settled:
            journal = partial(self._journal, settled)
            ok = self.outcomes.guard([decision.sprite_id for decision, _entry in settled], journal) and ok
        return ok

    def remove(self, sprite_id: str) -> bool:
        """The step for a sprite the manifest no longer has: delete its outputs, journal its removal."""

        def work() -> None:
            self.outputs.remove_unclaimed(self.ctx.lock.sprites[sprite_id].outputs)
            self.ctx.journal.record_remove(sprite_id)
            self.outcomes.removed(sprite_id)

        return self.outcomes.guard([sprite_id], work)

    # ---------------------------------------------------------------- parts

    def _may_write(self, decision: Decision) -> None:
        self.outputs.may_write(self.ctx.sprites[decision.sprite_id].output)

    def _post_process_chunk(self, decisions: Sequence[Decision]) -> list[Rendered | PostFailure] | None:
        """Each sprite's outcome, in order; None when the chunk as a whole failed (recorded)."""
        outcomes: list[Rendered | PostFailure] = []

        def run() -> None:
            jobs = [self._post_job(self.ctx.sprites[d.sprite_id], self.ctx.keys[d.sprite_id]) for d in decisions]
            self.ctx.progress.working(decisions[0].sprite_id, "post-processing")
            pool = self.pool
            outcomes[:] = pool.submit(post_process_batch, jobs).result() if pool else post_process_batch(jobs)
            self.outcomes.spent("post_processing", sum(o.seconds for o in outcomes if isinstance(o, Rendered)))

        return outcomes if self.outcomes.guard([d.sprite_id for d in decisions], run) else None

    def _settle_one(
        self, decision: Decision, outcome: Rendered | PostFailure | None, settled: list[tuple[Decision, LockEntry]]
    ) -> None:
        sprite = self.ctx.sprites[decision.sprite_id]
        keys = self.ctx.keys[decision.sprite_id]
        if isinstance(outcome, PostFailure):
            outcome.raise_()
        rendered = outcome or self._restore(sprite, keys, decision.restore_from_files)
        settled.append((decision, self._settle(sprite, keys, rendered)))

    def _journal(self, settled: Sequence[tuple[Decision, LockEntry]]) -> None:
        self.ctx.journal.record_sets([(decision.sprite_id, entry) for decision, entry in settled])
        self.outcomes.finished(settled)

    def _post_job(self, sprite: SpriteSpec, keys: SpriteKeys) -> PostJob:
        return PostJob(
            store_root=str(self.ctx.store.root),
            generation_keys=keys.generations,
            chain=sprite.post,
            layout=sprite.layout,
            project_dir=str(self.ctx.project_dir),
            post_key=keys.post,
            guard=self.outputs.guard,
            output=sprite.output,
        )

    def _post_process(self, sprite: SpriteSpec, keys: SpriteKeys) -> Rendered:
        self.outputs.may_write(sprite.output)
        jobs = [self._post_job(sprite, keys)]
        (outcome,) = self.pool.submit(post_process_batch, jobs).result() if self.pool else post_process_batch(jobs)
        if isinstance(outcome, PostFailure):
            outcome.raise_()
        assert isinstance(outcome, Rendered)
        self.outcomes.spent("post_processing", outcome.seconds)
        return outcome

    def _restore(self, sprite: SpriteSpec, keys: SpriteKeys, from_files: bool) -> Rendered:
        self.outputs.may_write(sprite.output)
        if from_files:
            return self._restore_from_files(sprite, keys)
        return self._restore_from_cache(sprite, keys)

    def _restore_from_files(self, sprite: SpriteSpec, keys: SpriteKeys) -> Rendered:
        """The output as the lock records it is in place (a fresh clone): cache it, and write it back."""
        entry = self.ctx.lock.sprites[sprite.id]
        output = entry.outputs[0]
        try:
            png = self.outputs.guard.read_bytes(output.path)
        except FileNotFoundError:
            raise Deferred(sprite.id) from None  # deleted since the plan: plan it again
        assert output.pixel_hash is not None and output.width is not None and output.height is not None
        image = FinishedImage(self.ctx.store.put_blob(png), output.pixel_hash, output.width, output.height)
        identity = dict(entry.backend)
        self.ctx.store.put_action(keys.post, PostRecord([image], identity))
        self.outputs.guard.write_bytes(sprite.output, png)
        return Rendered(hash_bytes(png), output.pixel_hash, output.width, output.height, identity)

    def _restore_from_cache(self, sprite: SpriteSpec, keys: SpriteKeys) -> Rendered:
        """The post-processed image is in the cache: write it to the output path."""
        record = self.ctx.store.get_action("post", keys.post)
        if record is None:
            raise CacheMiss("post", keys.post)
        image = record.images[0]
        data = self.ctx.store.read_blob(image.blob)
        if data is None:
            raise CacheMiss("post", keys.post)
        self.outputs.guard.write_bytes(sprite.output, data)
        return Rendered(hash_bytes(data), image.pixel_hash, image.width, image.height, dict(record.identity))

    def _settle(self, sprite: SpriteSpec, keys: SpriteKeys, rendered: Rendered) -> LockEntry:
        """After a sprite's output is written: drop its stale files and return its lock entry."""
        self.ctx.hashes.remember(self.ctx.output_dir / sprite.output, rendered.file_hash)
        self.outputs.remove_stale(sprite)
        seeds = [generation.seed for generation in sprite.generations]
        return LockEntry(
            generations=tuple(zip(keys.generations, seeds, strict=True)),
            post_key=keys.post,
            backend=rendered.identity,
            fields=keys.fields,
            outputs=(
                OutputRecord(sprite.output, rendered.file_hash, rendered.pixel_hash, rendered.width, rendered.height),
            ),
        )
