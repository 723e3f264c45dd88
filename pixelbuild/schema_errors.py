"""One jsonschema validation error of a manifest file → one readable, located ``ManifestError``.

jsonschema's own messages name schema internals; these name what the user wrote and what would fix it
(an unknown key with a did-you-mean, an op written without its parameters, a number written as text...).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from pixelbuild.errors import ManifestError
from pixelbuild.locate import DocPath, did_you_mean, located_error
from pixelbuild.schemas import manifest_schema, post_ops_schema, subschema


class _Full(Exception):
    pass


def preview(value: Any, limit: int = 80) -> str:
    """``value`` as JSON, cut after about ``limit`` characters (a value can be megabytes of aliases)."""
    parts: list[str] = []
    room = [limit]

    def emit(text: str) -> None:
        parts.append(text)
        room[0] -= len(text)
        if room[0] < 0:
            raise _Full

    def walk(item: Any) -> None:
        if isinstance(item, Mapping):
            emit("{")
            for index, (key, inner) in enumerate(item.items()):
                emit((", " if index else "") + json.dumps(str(key)) + ": ")
                walk(inner)
            emit("}")
        elif isinstance(item, list | tuple):
            emit("[")
            for index, inner in enumerate(item):
                if index:
                    emit(", ")
                walk(inner)
            emit("]")
        else:
            emit(json.dumps(item, default=str))

    try:
        walk(value)
    except _Full:
        return "".join(parts)[:limit] + "…"
    return "".join(parts)


def _describe_type(expected: Any) -> str:
    names = {
        "integer": "a whole number",
        "number": "a number",
        "string": "text",
        "array": "a list",
        "object": "a mapping",
        "boolean": "true or false",
        "null": "nothing",
    }
    if isinstance(expected, list):
        return " or ".join(names.get(item, str(item)) for item in expected)
    return names.get(expected, str(expected))


def _allowed_keys(schema: Mapping[str, Any], root: Mapping[str, Any]) -> set[str]:
    """Property names a (possibly allOf/$ref-composed) object schema accepts."""
    keys: set[str] = set(schema.get("properties", {}))
    for part in schema.get("allOf", []):
        ref = part.get("$ref", "")
        if ref.startswith("#/$defs/"):
            keys |= _allowed_keys(root["$defs"][ref.removeprefix("#/$defs/")], root)
        else:
            keys |= _allowed_keys(part, root)
    return keys


def _is_noise(error: Any) -> bool:
    """An unevaluatedProperties error that only repeats a failure of a known key's own schema."""
    if error.validator != "unevaluatedProperties" or not isinstance(error.instance, Mapping):
        return False
    allowed = _allowed_keys(error.schema, manifest_schema())
    return all(key in allowed for key in error.instance)


def best_error(errors: list[Any]) -> Any:
    """The error to report among ``errors`` of one document (jsonschema's choice, less repeated noise)."""
    from jsonschema.exceptions import best_match

    # best_match descends into oneOf alternatives, preferring the one whose type matches the value.
    return best_match([error for error in errors if not _is_noise(error)] or errors)


_PATTERN_HINTS = {
    "id": "ids are '/'-separated names of letters, digits, '_', '.' and '-', none starting with '.'",
    "sha256": "a sha256 is 64 hexadecimal digits",
    # By pattern: the post-ops schema's colour (HEX_COLOUR_PATTERN of pixelbuild.post.params, which a test
    # compares), whatever the key holding it (color, fill, colors[2]).
    "^#([0-9a-fA-F]{6}|[0-9a-fA-F]{8})$": "a colour is '#rrggbb' or '#rrggbbaa' (quoted in YAML), or [r, g, b(, a)]",
}


def _resolve_ref(schema: Mapping[str, Any]) -> Mapping[str, Any]:
    """Follow a ``$ref`` into either schema file (their ``$defs`` names do not collide)."""
    ref = schema.get("$ref")
    if not isinstance(ref, str) or "#/$defs/" not in ref:
        return schema
    name = ref.split("#/$defs/")[1]
    defs = manifest_schema()["$defs"]
    if name not in defs:
        defs = post_ops_schema()["$defs"]
    return _resolve_ref(defs[name])


def _alternatives_message(error: Any) -> str:
    """Explain a failed oneOf: an unknown tag of a tagged union, or the shapes that were expected."""
    branches = [_resolve_ref(branch) for branch in error.validator_value]
    instance = error.instance
    if isinstance(instance, Mapping) and branches and all(set(b) == {"required"} for b in branches):
        return _exclusive_keys_message(branches, instance)
    tags: set[str] = set()
    for branch in branches:
        tags.update(branch.get("required", []) if branch.get("type") == "object" else branch.get("enum", []))
    if tags and all(_is_tag_branch(branch) for branch in branches):
        message = _tagged_union_message(branches, tags, instance)
        if message is not None:
            return message
    return _expected_shapes_message(branches, instance)


def _is_tag_branch(branch: Mapping[str, Any]) -> bool:
    """A branch of a tagged union: a mapping keyed by one tag, or an enum of bare tags."""
    return (branch.get("type") == "object" and len(branch.get("required", [])) == 1) or "enum" in branch


def _expected_shapes_message(branches: list[Mapping[str, Any]], instance: Any) -> str:
    """The types the alternatives accept, and what was given instead."""
    kinds = []
    for branch in branches:
        kind = branch.get("type")
        if kind and _describe_type(kind) not in kinds:
            kinds.append(_describe_type(kind))
    expected = " or ".join(kinds) if kinds else "one of the allowed shapes"
    return f"expected {expected}, got {preview(instance)}"


def _exclusive_keys_message(branches: list[Mapping[str, Any]], instance: Mapping[str, Any]) -> str:
    """Exactly one of several keys must be given (a palette's colors, preset, file)."""
    options = [key for branch in branches for key in branch["required"]]
    given = [key for key in instance if key in options]
    listed = ", ".join(options)
    if len(given) > 1:
        return f"'{given[0]}' and '{given[1]}' are mutually exclusive: give exactly one of {listed}"
    return f"give one of {listed}"


def _tagged_union_message(branches: list[Mapping[str, Any]], tags: set[str], instance: Any) -> str | None:
    """A post op that is unknown, has more than one key, or is written bare though it needs parameters;
    None when the op is known and written as a mapping (the shapes expected are said instead)."""
    name = None
    if isinstance(instance, str):
        name = instance
    elif isinstance(instance, Mapping) and len(instance) == 1:
        name = next(iter(instance))
    elif isinstance(instance, Mapping):
        return (
            "each step is a mapping with exactly one key, the op name "
            f"(e.g. '- resize: {{size: 32}}'), got {len(instance)} keys"
        )
    if name is not None and name not in tags:
        return f"unknown op '{name}'{did_you_mean(name, tags)}"
    if isinstance(instance, str) and name in tags:
        # A known op written bare that needs params ('- rotate').
        needs = [
            _resolve_ref(branch["properties"][name]).get("required", [])
            for branch in branches
            if branch.get("type") == "object" and branch.get("required") == [name]
        ]
        listed = f" ({', '.join(needs[0])})" if needs and needs[0] else ""
        return f"op '{name}' needs parameters{listed}: write it as '- {name}: {{...}}'"
    return None


#: One message writer per kind of failure: (error, its document path) → (message, path to point at, whether
#: it points at the key), or None to leave the error to the next writer.
_Message = tuple[str, DocPath, bool]


def _unknown_key(error: Any, doc_path: DocPath, data: Mapping[str, Any]) -> _Message | None:
    if not isinstance(error.instance, Mapping):
        return None
    allowed = _allowed_keys(error.schema, manifest_schema())
    unknown = sorted(k for k in error.instance if k not in allowed)
    if not unknown:
        return None
    name = unknown[0]
    return f"unknown key '{name}'{did_you_mean(name, allowed)}", (*doc_path, name), True


def _alternatives(error: Any, doc_path: DocPath, data: Mapping[str, Any]) -> _Message | None:
    return _alternatives_message(error), doc_path, False


def _missing_key(error: Any, doc_path: DocPath, data: Mapping[str, Any]) -> _Message | None:
    missing = re.findall(r"'([^']+)' is a required property", error.message)
    name = missing[0] if missing else "?"
    # A key required only under a condition: the generated post-ops schema says which, in words.
    why = error.schema.get("description", "") if isinstance(error.schema, Mapping) else ""
    because = f" ({why})" if str(why).startswith("required when") else ""
    return f"missing required key '{name}'{because}", doc_path, False


def _exclusive_keys(error: Any, doc_path: DocPath, data: Mapping[str, Any]) -> _Message | None:
    if not (isinstance(error.validator_value, Mapping) and "required" in error.validator_value):
        return None
    exclusive = [f"'{key}'" for key in error.validator_value["required"]]
    given = f"{', '.join(exclusive[:-1])} and {exclusive[-1]}"
    return f"{given} are mutually exclusive: give at most one", doc_path, False


def _wrong_type(error: Any, doc_path: DocPath, data: Mapping[str, Any]) -> _Message | None:
    return f"expected {_describe_type(error.validator_value)}, got {preview(error.instance)}", doc_path, False


def _not_allowed_value(error: Any, doc_path: DocPath, data: Mapping[str, Any]) -> _Message | None:
    instance = error.instance
    options = error.validator_value if error.validator == "enum" else [error.validator_value]
    numbers = [o for o in options if isinstance(o, int | float) and not isinstance(o, bool)]
    if isinstance(instance, str) and any(json.dumps(o) == instance.strip() for o in numbers):
        number = " or ".join(json.dumps(o) for o in numbers)
        message = f"expected the number {number}, got the text {json.dumps(instance)} (write it without quotes)"
        return message, doc_path, False
    if isinstance(instance, str):
        hint = did_you_mean(instance, {str(o) for o in options})
    else:
        hint = f" (expected one of: {', '.join(json.dumps(o) for o in options)})"
    return f"{preview(instance)} is not allowed{hint}", doc_path, False


def _malformed(error: Any, doc_path: DocPath, data: Mapping[str, Any]) -> _Message | None:
    last = doc_path[-1] if doc_path else ""
    hint = _PATTERN_HINTS.get(str(last)) or _PATTERN_HINTS.get(error.validator_value) or ""
    hint = hint or f"it must match {error.validator_value}"
    return f"{preview(error.instance)} is not well formed: {hint}", doc_path, False


def _out_of_range(error: Any, doc_path: DocPath, data: Mapping[str, Any]) -> _Message | None:
    bound = {"minimum": "at least", "maximum": "at most"}.get(error.validator, error.validator)
    return f"{error.instance} is out of range (must be {bound} {error.validator_value})", doc_path, False


def _list_length(error: Any, doc_path: DocPath, data: Mapping[str, Any]) -> _Message | None:
    if not isinstance(error.instance, list):
        return None
    bound = "at least" if error.validator == "minItems" else "at most"
    return f"a list of {len(error.instance):,} items: it must have {bound} {error.validator_value}", doc_path, False


def _empty_text(error: Any, doc_path: DocPath, data: Mapping[str, Any]) -> _Message | None:
    return "must not be empty", doc_path, False


def _repeated_item(error: Any, doc_path: DocPath, data: Mapping[str, Any]) -> _Message | None:
    return f"{preview(error.instance)} lists an item twice", doc_path, False


def _too_few_keys(error: Any, doc_path: DocPath, data: Mapping[str, Any]) -> _Message | None:
    return f"needs at least {error.validator_value} key(s)", doc_path, False


_MESSAGES: dict[str, Callable[[Any, DocPath, Mapping[str, Any]], _Message | None]] = {
    "additionalProperties": _unknown_key,
    "unevaluatedProperties": _unknown_key,
    "oneOf": _alternatives,
    "anyOf": _alternatives,
    "required": _missing_key,
    "not": _exclusive_keys,
    "type": _wrong_type,
    "enum": _not_allowed_value,
    "const": _not_allowed_value,
    "pattern": _malformed,
    "minimum": _out_of_range,
    "maximum": _out_of_range,
    "exclusiveMinimum": _out_of_range,
    "exclusiveMaximum": _out_of_range,
    "minItems": _list_length,
    "maxItems": _list_length,
    "minLength": _empty_text,
    "uniqueItems": _repeated_item,
    "minProperties": _too_few_keys,
}


def _forbidden_key(error: Any, doc_path: DocPath, data: Mapping[str, Any]) -> _Message:
    """A key that the schema forbids in this combination; jsonschema's path stops at its mapping."""
    container: Any = data
    for step in doc_path:
        container = container[step]
    forbidding = subschema(list(error.absolute_schema_path))
    keys: list[str] = []
    if isinstance(container, Mapping) and isinstance(forbidding, Mapping):
        keys = [key for key in container if forbidding.get(key) is False]
    if not keys:
        return f"{preview(error.instance)} is not allowed here", doc_path, False
    where = f" of {doc_path[-1]}" if doc_path and isinstance(doc_path[-1], str) else ""
    message = f"'{keys[0]}' is not allowed together with the other settings{where}"
    # The generated post-ops schema says when the key applies (on the branch that forbids it).
    branch = subschema(list(error.absolute_schema_path)[:-1])
    why = branch.get("description") if isinstance(branch, Mapping) else None
    if isinstance(why, str) and why.startswith("applies only when"):
        message += f": it {why}"
    return message, (*doc_path, keys[0]), True


def schema_error(error: Any, path: Path, data: Mapping[str, Any]) -> ManifestError:
    """The located ``ManifestError`` for the jsonschema ``error`` of the document ``data`` read from ``path``."""
    doc_path: DocPath = tuple(error.absolute_path)
    writer = _MESSAGES.get(error.validator) if isinstance(error.validator, str) else None
    found = writer(error, doc_path, data) if writer is not None else None
    if found is None and (error.validator is None or error.validator_value is False):
        found = _forbidden_key(error, doc_path, data)
    if found is None:
        found = (error.message if len(error.message) <= 200 else error.message[:200] + "…"), doc_path, False
    message, where, key = found
    return located_error(message, path, data, where, key=True) if key else located_error(message, path, data, where)
