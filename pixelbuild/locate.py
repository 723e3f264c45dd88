"""Point an error at the place a user wrote it: file, line, sprite and field, plus a did-you-mean.

Used by every stage that reports bad input: the manifest loader, the resolver, the build's execution and
the ComfyUI preflight. Line numbers are worked out only when an error needs one, by composing the YAML node
tree of the file again (a build that finds nothing wrong never pays for them).
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Callable, Collection, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

import yaml

from pixelbuild.errors import ManifestError
from pixelbuild.spec import Source

try:  # the C parser is ~3x faster; fall back where libyaml is missing
    from yaml import CSafeLoader as _Loader
except ImportError:  # pragma: no cover
    from yaml import SafeLoader as _Loader  # type: ignore[assignment]

DocPath = tuple[str | int, ...]


def display_path(path: Path | str) -> str:
    """``path`` relative to the working folder when it is inside it, else absolute."""
    try:
        relative = os.path.relpath(path)
    except ValueError:  # another drive on Windows
        return str(path)
    return str(path) if relative.startswith("..") else relative


# ------------------------------------------------------------------------------------- did you mean


def did_you_mean(word: str, options: Collection[str], *, list_few: bool = True, file_names: bool = False) -> str:
    """`` (did you mean 'x'?)`` for the closest option; else, with ``list_few``, the options when there
    are at most 12; else an empty string.

    With ``file_names`` file extensions and case are left out of the comparison: every model ends in
    ``.safetensors``, which would make any two model names look alike.
    """
    if file_names:
        stems = {_stem(option): option for option in options}
        close = difflib.get_close_matches(_stem(word), list(stems), n=1, cutoff=0.6)
        if close:
            return f" (did you mean '{stems[close[0]]}'?)"
    else:
        close = difflib.get_close_matches(word, sorted(options), n=1, cutoff=0.6)
        if close:
            return f" (did you mean '{close[0]}'?)"
    if list_few and len(options) <= 12:
        return f" (expected one of: {', '.join(sorted(options))})"
    return ""


def _stem(name: str) -> str:
    base, dot, ext = name.rpartition(".")
    return (base if dot and base and len(ext) <= 12 else name).lower()


# ------------------------------------------------------------------------------------------ fields


def parse_field(field: str) -> DocPath:
    """Turn ``loras[0].name`` into ``("loras", 0, "name")`` (the inverse of ``format_field``)."""
    path: list[str | int] = []
    for part in re.findall(r"[^.\[\]]+|\[\d+\]", field):
        path.append(int(part[1:-1]) if part.startswith("[") else part)
    return tuple(path)


def format_field(doc_path: Sequence[str | int]) -> str:
    """Render a document path as ``post[2].pixelate.size``."""
    text = ""
    for step in doc_path:
        text += f"[{step}]" if isinstance(step, int) else (f".{step}" if text else step)
    return text


def sprite_and_field(data: Mapping[str, Any], doc_path: Sequence[str | int]) -> tuple[str | None, str | None]:
    """Name the sprite (by id, or by position) and the field that ``doc_path`` points into."""
    if len(doc_path) >= 2 and doc_path[0] == "sprites" and isinstance(doc_path[1], int):
        sprites = data.get("sprites")
        sprite_id: str | None = None
        if isinstance(sprites, list) and doc_path[1] < len(sprites):
            entry = sprites[doc_path[1]]
            if isinstance(entry, Mapping) and isinstance(entry.get("id"), str):
                sprite_id = entry["id"]
        if sprite_id is None:
            sprite_id = f"#{doc_path[1] + 1}"
        rest = doc_path[2:]
        return sprite_id, (format_field(rest) or None)
    return None, (format_field(doc_path) or None)


# --------------------------------------------------------------------------------------- locating


def _compose(path: Path) -> yaml.Node | None:
    try:
        return yaml.compose(path.read_bytes(), Loader=_Loader)
    except (OSError, yaml.YAMLError):
        return None


def _walk(node: yaml.Node | None, doc_path: Sequence[str | int], key: bool = False) -> yaml.Node | None:
    """Follow ``doc_path`` through a composed node tree as far as it goes; with ``key`` return the last
    key's node."""
    for depth, step in enumerate(doc_path):
        last = depth == len(doc_path) - 1
        if isinstance(node, yaml.MappingNode) and isinstance(step, str):
            for key_node, value_node in node.value:
                if key_node.value == step:
                    node = key_node if (key and last) else value_node
                    break
            else:
                return node
        elif isinstance(node, yaml.SequenceNode) and isinstance(step, int) and step < len(node.value):
            node = node.value[step]
        else:
            return node
    return node


def _find(node: yaml.Node | None, doc_path: Sequence[str | int]) -> yaml.Node | None:
    """Like ``_walk`` but None unless every step exists; returns the last key's node for mappings."""
    for depth, step in enumerate(doc_path):
        last = depth == len(doc_path) - 1
        if isinstance(node, yaml.MappingNode) and isinstance(step, str):
            match = next(((k, v) for k, v in node.value if k.value == step), None)
            if match is None:
                return None
            node = match[0] if last else match[1]
        elif isinstance(node, yaml.SequenceNode) and isinstance(step, int) and step < len(node.value):
            node = node.value[step]
        else:
            return None
    return node


def locate(path: Path, doc_path: Sequence[str | int], key: bool = False) -> tuple[int, int] | None:
    """1-based (line, column) of the value (or with ``key``, the key) at ``doc_path`` in a YAML file."""
    node = _walk(_compose(path), doc_path, key=key)
    if node is None:
        return None
    return node.start_mark.line + 1, node.start_mark.column + 1


def locate_field(file: str, sprite_path: Sequence[str | int], field: str | None) -> int | None:
    """The line where a sprite's ``field`` is written: on the sprite, else in its file's defaults, else
    the sprite's own line."""
    tree = _compose(Path(file))
    if tree is None:
        return None
    if field:
        for base in (tuple(sprite_path), ("defaults",)):
            node = _find(tree, (*base, *parse_field(field)))
            if node is not None:
                return node.start_mark.line + 1
    node = _walk(tree, sprite_path)
    return node.start_mark.line + 1 if node is not None else None


def located_error(
    message: str,
    path: Path,
    data: Mapping[str, Any],
    doc_path: Sequence[str | int],
    key: bool = False,
) -> ManifestError:
    """Build a ManifestError for ``doc_path`` in file ``path`` (whose document is ``data``), with its line
    and column."""
    position = locate(path, doc_path, key=key)
    sprite, field = sprite_and_field(data, doc_path)
    line, column = position if position else (None, None)
    return ManifestError(message, file=display_path(path), line=line, column=column, sprite=sprite, field=field)


def located_message(source: Source | None, field: str | None, message: str) -> str:
    """``message`` prefixed with where the sprite (or its field) is written: ``file:line: field 'x': ...``."""
    if source is None:
        return message
    line = locate_field(source.file, source.path, field)
    where = f"{source.file}:{line}: " if line else f"{source.file}: "
    return f"{where}{f'field {field!r}: ' if field else ''}{message}"


class Problem(Protocol):
    """One problem found with one sprite (a ``GenerationError`` is one)."""

    message: str
    sprite: str | None
    field: str | None


def grouped_error(problems: Sequence[Problem], source_of: Callable[[str], Source | None]) -> ManifestError:
    """Several problems as one located paragraph: the first one where it is written, the sprites that
    share it (one mistake in ``defaults`` shows up once per sprite), then up to three others."""
    groups: dict[tuple[str | None, str], list[str]] = {}
    for problem in problems:
        ids = groups.setdefault((problem.field, problem.message), [])
        if (problem.sprite or "?") not in ids:  # a sprite of several generations is one sprite
            ids.append(problem.sprite or "?")
    (first_field, first_message), first_sprites = next(iter(groups.items()))
    first = problems[0]
    source = source_of(first.sprite or "")
    line = locate_field(source.file, source.path, first_field) if source else None
    message = first_message
    if len(first_sprites) > 1:
        others = ", ".join(first_sprites[1:6]) + (", ..." if len(first_sprites) > 6 else "")
        message += f"; the same for {len(first_sprites) - 1} more sprite(s): {others}"
    rest = [f"{ids[0]}: {field + ': ' if field else ''}{text}" for (field, text), ids in list(groups.items())[1:4]]
    if rest:
        more = f"; and {len(groups) - 4} more" if len(groups) > 4 else ""
        message += f" (also: {'; '.join(rest)}{more})"
    return ManifestError(
        message,
        file=source.file if source else None,
        line=line,
        sprite=first.sprite,
        field=first.field,
    )
