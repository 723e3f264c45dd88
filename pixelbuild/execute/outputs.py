"""The output root during a run: which paths the run may write, and removing outputs pixelbuild no longer
wants (only while they still hold what pixelbuild wrote)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from pixelbuild.errors import PixelbuildError
from pixelbuild.fsguard import OutputGuard, Removal
from pixelbuild.hashing import hash_bytes

if TYPE_CHECKING:
    from pixelbuild.execute.context import EngineContext
    from pixelbuild.execute.outcomes import Outcomes
    from pixelbuild.lock import OutputRecord
    from pixelbuild.spec import SpriteSpec


class Outputs:
    """Writes and deletes in one run's output root, through its guard."""

    def __init__(self, context: EngineContext, outcomes: Outcomes) -> None:
        self.ctx = context
        self.outcomes = outcomes
        self.guard = context.guard or OutputGuard(str(context.output_dir))
        #: Paths some sprite or atlas of the manifest writes: never removed as another's stale output.
        self.claimed = {sprite.output for sprite in context.sprites.values()}
        self.claimed.update(path for atlas in context.atlases.values() for path in atlas.outputs())

    def may_write(self, path: str) -> None:
        """Refuse (a failure of the sprite) to replace a file pixelbuild does not own: checked by the plan,
        and again here in case the file appeared while the build ran."""
        problem = self.ctx.foreign(path) if self.ctx.foreign is not None else None
        if problem is not None:
            raise PixelbuildError(f"{problem}; nothing was written")

    def write(self, path: str, data: bytes) -> str:
        """Write ``data`` at output ``path``; return its hash (remembered, so the next plan need not read it)."""
        self.guard.write_bytes(path, data)
        digest = hash_bytes(data)
        self.ctx.hashes.remember(self.ctx.output_dir / path, digest)
        return digest

    def remove_unclaimed(self, outputs: Iterable[OutputRecord]) -> None:
        """Delete each of ``outputs`` that no sprite or atlas of the manifest writes now."""
        for output in outputs:
            if output.path not in self.claimed:
                self.remove(output)

    def remove_stale(self, sprite: SpriteSpec) -> None:
        """Delete files the sprite wrote before under other paths (unless another sprite now owns them)."""
        entry = self.ctx.lock.sprites.get(sprite.id)
        if entry is not None:
            self.remove_unclaimed(output for output in entry.outputs if output.path != sprite.output)

    def remove(self, output: OutputRecord) -> None:
        """Delete an output pixelbuild wrote, unless its bytes changed since (then keep it and say so)."""
        outcome, why = self.guard.remove(output.path, lambda data: still_ours(data, output))
        if outcome is Removal.KEPT:
            try:
                shown = (self.ctx.output_dir / output.path).relative_to(self.ctx.project_dir).as_posix()
            except ValueError:
                shown = output.path
            self.outcomes.keep(
                f"kept {shown}: {why}; pixelbuild no longer manages it (delete it, or list it under 'keep')"
            )


def still_ours(data: bytes, output: OutputRecord) -> bool:
    """Whether ``data`` is what pixelbuild wrote for ``output``: the same bytes, or the same pixels."""
    if hash_bytes(data) == output.file_hash:
        return True
    if output.pixel_hash is None:
        return False
    from pixelbuild.png import decode_png, pixel_hash
    from pixelbuild.pngheader import png_header_size

    if output.width is not None and png_header_size(data) != (output.width, output.height):
        return False  # never inflate a file that claims another size (it may claim gigabytes)
    try:
        return pixel_hash(decode_png(data)) == output.pixel_hash
    except (OSError, ValueError, SyntaxError):
        return False
