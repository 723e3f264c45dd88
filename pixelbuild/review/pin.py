"""``pixelbuild pin ID SEED``: write ``seed: SEED`` into one sprite's manifest entry.

The edit is a located text edit (``pixelbuild.yamledit``) of the YAML the sprite was written in: the
existing seed's value is replaced in place, or a ``seed:`` line is added under the entry's ``id`` at its
indentation (``, seed: N`` inside a flow mapping). The result is parsed again and must differ from the
original only by that seed before it replaces the file.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pixelbuild.errors import ManifestError, UsageError
from pixelbuild.local.layout import ProjectPaths
from pixelbuild.yamledit import entry_keys, entry_node, manifest_entry, set_key, verified


@dataclass(frozen=True, slots=True)
class PinChange:
    """Where the seed was written (or already was)."""

    file: str
    line: int
    seed: int
    changed: bool

    def text(self) -> str:
        """One line for people."""
        verb = "pinned" if self.changed else "already pinned:"
        return f"{self.file}:{self.line}: {verb} seed {self.seed}"


def edit_seed(text: str, index: int, seed: int, display: str) -> tuple[str, int, bool]:
    """``text`` with ``seed`` written into entry ``index`` of its ``sprites``; the line written and whether
    anything changed."""
    entry = entry_node(text, index, display)
    if "matrix" in entry_keys(entry):
        raise UsageError(
            f"{display}:{entry.start_mark.line + 1}: this entry is a matrix of sprites; a seed written there would "
            "apply to every variant, so pin it by hand (e.g. with a 'frames' override) or split the entry"
        )
    return set_key(text, index, "seed", seed, display)


def pin(paths: ProjectPaths, sprite_id: str, seed: int) -> PinChange:
    """Write ``seed`` into ``sprite_id``'s manifest entry (atomically); return where."""
    from pixelbuild.fsutil import atomic_write_bytes
    from pixelbuild.project import open_session
    from pixelbuild.review.workflow import find_generated_sprite

    if not 0 <= seed < 1 << 64:
        raise UsageError(f"a seed is between 0 and 2^64-1, got {seed}")
    session = open_session(paths)
    sprite = find_generated_sprite(session, sprite_id, "pin")
    manifest_file, index = manifest_entry(session, sprite)
    path: Path = manifest_file.path
    raw = path.read_bytes()
    text = raw.decode("utf-8")
    edited, line, changed = edit_seed(text, index, seed, manifest_file.display)
    if changed:
        problem = ManifestError(
            "could not place 'seed' in this entry without changing anything else; write it by hand",
            file=manifest_file.display,
            line=line,
            sprite=sprite_id,
        )
        atomic_write_bytes(path, verified(text, edited, index, {"seed": seed}, (), problem).encode("utf-8"))
    return PinChange(manifest_file.display, line, seed, changed)
