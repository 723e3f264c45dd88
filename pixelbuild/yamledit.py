"""Located text edits of one sprite entry in a manifest file, for commands that write the manifest.

An edit changes only the bytes of the value it sets (or the lines of the key it removes): comments,
quoting, key order and blank lines stay as they were. The result is parsed again and must differ from
the original exactly by the intended change before anyone writes it (``verified``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import yaml

from pixelbuild.errors import ManifestError, UsageError


def manifest_entry(session: Any, sprite: Any) -> tuple[Any, int]:
    """The manifest file holding ``sprite`` and the index of its entry in that file's ``sprites``."""
    path = sprite.source.path
    if len(path) != 2 or path[0] != "sprites" or not isinstance(path[1], int):
        raise UsageError(f"sprite '{sprite.id}' is not a plain entry of a 'sprites' list")
    for manifest_file in session.manifest.files:
        if manifest_file.display == sprite.source.file:
            return manifest_file, path[1]
    raise UsageError(f"sprite '{sprite.id}': its manifest file {sprite.source.file} is not loaded")


def entry_node(text: str, index: int, display: str) -> yaml.MappingNode:
    """The YAML node of entry ``index`` of the document's ``sprites`` list."""
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


def entry_keys(entry: yaml.MappingNode) -> dict[str, tuple[yaml.Node, yaml.Node]]:
    """The entry's scalar keys, each with its key and value nodes."""
    return {key.value: (key, value) for key, value in entry.value if isinstance(key, yaml.ScalarNode)}


def flow_text(value: Any) -> str:
    """``value`` as one line of flow-style YAML (``art/a.png``, ``{file: a.png, frame_size: [8, 8]}``)."""
    dumped = yaml.safe_dump(value, default_flow_style=True, width=1 << 30, sort_keys=False)
    return dumped.removesuffix("\n...\n").strip()


def _value_end(node: yaml.Node) -> int:
    """Where a value's text ends: a block collection's end mark lies after the comments and indentation
    that follow it, so follow its last child down to the last scalar or flow collection instead."""
    if isinstance(node, yaml.CollectionNode) and not node.flow_style and node.value:
        last = node.value[-1]
        return _value_end(last[1] if isinstance(last, tuple) else last)
    return int(node.end_mark.index)


def set_key(text: str, index: int, name: str, value: Any, display: str) -> tuple[str, int, bool]:
    """``text`` with ``name: value`` in entry ``index``; the line written and whether anything changed.

    An existing value is replaced where it stands; a new key goes on its own line under the entry's
    ``id`` (``, name: value`` inside a flow mapping).
    """
    entry = entry_node(text, index, display)
    keys = entry_keys(entry)
    rendered = flow_text(value)
    if name in keys:
        key, old = keys[name]
        if yaml.safe_load(yaml.serialize(old)) == value:
            return text, old.start_mark.line + 1, False
        if not isinstance(old, yaml.CollectionNode) or old.flow_style:
            start, end = old.start_mark.index, old.end_mark.index
            return text[:start] + rendered + text[end:], old.start_mark.line + 1, True
        # A block collection: the new value goes on the key's line, replacing the old lines.
        return text[: key.end_mark.index] + f": {rendered}" + text[_value_end(old) :], key.start_mark.line + 1, True
    if "id" not in keys:
        raise ManifestError(f"sprite entry {index} has no 'id'", file=display)
    id_key, id_value = keys["id"]
    if entry.flow_style:
        close = entry.end_mark.index - 1  # the closing brace
        return text[:close] + f", {name}: {rendered}" + text[close:], entry.end_mark.line + 1, True
    newline = "\r\n" if "\r\n" in text else "\n"
    line_end = text.find("\n", id_value.end_mark.index)
    if line_end == -1:
        line_end = len(text)
    elif text[line_end - 1 : line_end] == "\r":
        line_end -= 1
    insertion = f"{newline}{' ' * id_key.start_mark.column}{name}: {rendered}"
    return text[:line_end] + insertion + text[line_end:], id_value.end_mark.line + 2, True


def remove_key(text: str, index: int, name: str, display: str) -> str:
    """``text`` without the lines of key ``name`` in entry ``index`` (a block-style entry, key not first)."""
    entry = entry_node(text, index, display)
    keys = entry_keys(entry)
    if name not in keys:
        return text
    key, value = keys[name]
    line_start = text.rfind("\n", 0, key.start_mark.index) + 1
    if entry.flow_style or text[line_start : key.start_mark.index].strip():
        where = f"{display}:{key.start_mark.line + 1}"
        raise UsageError(f"{where}: cannot remove '{name}' from this entry; edit it by hand")
    line_end = text.find("\n", _value_end(value))
    return text[:line_start] + ("" if line_end == -1 else text[line_end + 1 :])


def verified(
    before: str,
    after: str,
    index: int,
    changes: Mapping[str, Any],
    removed: Sequence[str],
    error: ManifestError,
) -> str:
    """``after``, if it parses to ``before`` with exactly ``changes`` set and ``removed`` gone in entry
    ``index``; raise ``error`` otherwise (an edit must never do more than it says)."""
    expected = yaml.safe_load(before)
    entry = expected["sprites"][index]
    entry.update(changes)
    for name in removed:
        entry.pop(name, None)
    try:
        parsed = yaml.safe_load(after)
    except yaml.YAMLError:
        raise error from None
    if parsed != expected:
        raise error
    return after
