"""Atlases: pack the members' finished images (or restore the packed files from the cache), write the
atlas's files, journal its entry; and remove atlases the manifest no longer has.

Atlases run after every sprite step, so every member they read is finished (or has failed) by then.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pixelbuild.errors import GenerationError
from pixelbuild.execute.outcomes import CacheMiss, Deferred
from pixelbuild.local.store import PackedFile, PackRecord
from pixelbuild.lock import AtlasEntry, OutputRecord
from pixelbuild.plan import Action

if TYPE_CHECKING:
    from pixelbuild.execute.context import EngineContext
    from pixelbuild.execute.outcomes import Outcomes
    from pixelbuild.execute.outputs import Outputs
    from pixelbuild.plan import AtlasDecision
    from pixelbuild.spec import AtlasSpec

#: One file of an atlas, in ``AtlasSpec.outputs()`` order: its bytes, and an image's pixel hash and size.
AtlasFile = tuple[bytes, str | None, int | None, int | None]


class Atlases:
    """The atlas steps of one run."""

    def __init__(self, context: EngineContext, outcomes: Outcomes, outputs: Outputs) -> None:
        self.ctx = context
        self.outcomes = outcomes
        self.outputs = outputs

    def step(self, decision: AtlasDecision) -> bool:
        """The step for one atlas: pack, restore or remove it (False: it failed, recorded)."""
        work = self._remove if decision.action is Action.REMOVE else self._build
        return self.outcomes.guard([f"atlas {decision.atlas_id}"], lambda: work(decision))

    def _remove(self, decision: AtlasDecision) -> None:
        self.outputs.remove_unclaimed(self.ctx.lock.atlases[decision.atlas_id].outputs)
        self.ctx.journal.record_atlas_remove(decision.atlas_id)
        self.outcomes.count("removed")
        self.ctx.progress.done(f"atlas {decision.atlas_id}", Action.REMOVE)

    def _build(self, decision: AtlasDecision) -> None:
        atlas_id = decision.atlas_id
        atlas = self.ctx.atlases[atlas_id]
        self.ctx.progress.working(f"atlas {atlas_id}", "packing")
        restoring = decision.action is Action.RESTORE
        files = self._restore(decision) if restoring else self._pack(atlas, decision.key)
        for path in atlas.outputs():
            self.outputs.may_write(path)
        records = [
            OutputRecord(path, self.outputs.write(path, data), pixels, width, height)
            for path, (data, pixels, width, height) in zip(atlas.outputs(), files, strict=True)
        ]
        old = self.ctx.lock.atlases.get(atlas_id)
        self.outputs.remove_unclaimed(old.outputs if old else ())
        self.ctx.journal.record_atlas(atlas_id, AtlasEntry(decision.key, atlas.members, tuple(records)))
        self.outcomes.count("restored" if restoring else "packed")
        self.ctx.progress.done(f"atlas {atlas_id}", decision.action)

    def _restore(self, decision: AtlasDecision) -> list[AtlasFile]:
        """The atlas's files from its cached pack record."""
        record = self.ctx.store.get_action("pack", decision.key)
        files = []
        for item in record.images if record else ():
            data = self.ctx.store.read_blob(item.blob)
            if data is None:
                raise CacheMiss("pack", decision.key)
            files.append((data, item.pixel_hash, item.width, item.height))
        if len(files) != len(self.ctx.atlases[decision.atlas_id].outputs()):
            raise CacheMiss("pack", decision.key)
        return files

    def _pack(self, atlas: AtlasSpec, key: str) -> list[AtlasFile]:
        """Pack the members' finished outputs; cache the files under ``key``."""
        members = []
        for sprite_id in atlas.members:
            self._check_member(sprite_id)
            data = self.outputs.guard.read_bytes(self.outcomes.entries[sprite_id].outputs[0].path)
            sprite = self.ctx.sprites[sprite_id]
            frames = sum(generation.batch_size for generation in sprite.generations)
            members.append((sprite_id, data, frames, sprite.layout))
        image_path = (self.ctx.output_dir / atlas.output).relative_to(self.ctx.project_dir).as_posix()
        with self.outcomes.timed("packing"):  # the image code's imports included
            from pixelbuild.pack.files import Member, atlas_files
            from pixelbuild.png import decode_png

            images = [Member(name, decode_png(data), frames, layout) for name, data, frames, layout in members]
            files = atlas_files(atlas, images, f"res://{image_path}")
        store = self.ctx.store
        packed = [PackedFile(store.put_blob(file.data), file.pixel_hash, file.width, file.height) for file in files]
        store.put_action(key, PackRecord(packed))
        return [(file.data, file.pixel_hash, file.width, file.height) for file in files]

    def _check_member(self, sprite_id: str) -> None:
        """Raise unless the member is built with its current keys (defer it when it waits for a repair)."""
        if sprite_id in self.outcomes.result.repair:
            raise Deferred(sprite_id)
        if sprite_id in self.outcomes.result.failures:
            raise GenerationError(f"member '{sprite_id}' failed to build")
        entry = self.outcomes.entries.get(sprite_id)
        if entry is None or entry.post_key != self.ctx.keys[sprite_id].post:
            raise GenerationError(f"member '{sprite_id}' is not built")
