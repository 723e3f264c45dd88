"""``pixelbuild pin ID SEED``: write ``seed: SEED`` into one sprite's manifest entry.

The edit is a located text edit of the YAML the sprite was written in: the existing seed's value is
replaced in place, or a ``seed:`` line is added under the entry's ``id`` at its indentation (``, seed: N``
inside a flow mapping). Comments, quoting, key order and blank lines stay as they were; the result is
parsed again and must differ from the original only by that seed before it replaces the file.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from pixelbuild.errors import ManifestError, UsageError
from pixelbuild.paths import ProjectPaths


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


def manifest_entry(session: Any, sprite: Any) -> tuple[Any, int]:
    """The manifest file holding ``sprite`` and the index of its entry in that file's ``sprites``."""
    path = sprite.source.path
    if len(path) != 2 or path[0] != "sprites" or not isinstance(path[1], int):
        raise UsageError(f"sprite '{sprite.id}' is not a plain entry of a 'sprites' list")
    for manifest_file in session.manifest.files:
        if manifest_file.display == sprite.source.file:
            return manifest_file, path[1]
    raise UsageError(f"sprite '{sprite.id}': its manifest file {sprite.source.file} is not loaded")


def _entry_node(text: str, index: int, display: str) -> yaml.MappingNode:
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as error:
        raise ManifestError(f"cannot parse it again ({error})", file=display) from None
    sprites = None
    if isinstance(root, yaml.MappingNode):
        sprites = next((value for key, value in root.value if getattr(key, "value", None) == "sprites"), None)
    if not isinstance(sprites, yaml.SequenceNode) or index >= len(sprites.value):
        raise ManifestError("its 'sprites' list changed since it was loaded; run the command again", file=display)
    entry = sprites.value[index]
    if not isinstance(entry, yaml.MappingNode):
        raise ManifestError(f"sprite entry {index} is not a mapping", file=display)
    return entry


def edit_seed(text: str, index: int, seed: int, display: str) -> tuple[str, int, bool]:
    """``text`` with ``seed`` written into entry ``index`` of its ``sprites``; the line written and whether
    anything changed."""
    entry = _entry_node(text, index, display)
    keys = {key.value: (key, value) for key, value in entry.value if isinstance(key, yaml.ScalarNode)}
    if "matrix" in keys:
        raise UsageError(
            f"{display}:{entry.start_mark.line + 1}: this entry is a matrix of sprites; a seed written there would "
            "apply to every variant, so pin it by hand (e.g. with a 'frames' override) or split the entry"
        )
    newline = "\r\n" if "\r\n" in text else "\n"
    if "seed" in keys:
        _key, value = keys["seed"]
        if value.value == str(seed):
            return text, value.start_mark.line + 1, False
        start, end = value.start_mark.index, value.end_mark.index
        return text[:start] + str(seed) + text[end:], value.start_mark.line + 1, True
    if "id" not in keys:
        raise ManifestError(f"sprite entry {index} has no 'id'", file=display)
    id_key, id_value = keys["id"]
    if entry.flow_style:
        close = entry.end_mark.index - 1  # the closing brace
        return text[:close] + f", seed: {seed}" + text[close:], entry.end_mark.line + 1, True
    line_end = text.find("\n", id_value.end_mark.index)
    if line_end == -1:
        line_end = len(text)
    elif text[line_end - 1 : line_end] == "\r":
        line_end -= 1
    insertion = f"{newline}{' ' * id_key.start_mark.column}seed: {seed}"
    return text[:line_end] + insertion + text[line_end:], id_value.end_mark.line + 2, True


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
        before = yaml.safe_load(text)
        after = yaml.safe_load(edited)
        before["sprites"][index]["seed"] = seed
        if before != after:  # never write an edit that did more than set the seed
            raise ManifestError(
                "could not place 'seed' in this entry without changing anything else; write it by hand",
                file=manifest_file.display,
                line=line,
                sprite=sprite_id,
            )
        atomic_write_bytes(path, edited.encode("utf-8"))
    return PinChange(manifest_file.display, line, seed, changed)
