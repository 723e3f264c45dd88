"""Generate ``schemas/post-ops.schema.json`` from the ops' declared params.

Run ``python -m pixelbuild.post.schema`` after changing an op's params; ``--check`` exits 1 when the
committed file differs (the test suite checks the same). The manifest is validated against the
committed file, so validating never imports the ops.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from pixelbuild.post import OpDef, is_bare, load_ops
from pixelbuild.post.params import HEX_COLOUR_PATTERN, MAX_SIZE, MISSING, Signature, When, size_schema

#: Where the generated schema lives in a source checkout.
SCHEMA_PATH = Path(__file__).resolve().parents[2] / "schemas" / "post-ops.schema.json"
REGENERATE = "python -m pixelbuild.post.schema"


def _condition_schema(condition: When, signature: Signature) -> dict[str, Any]:
    """The ``if`` of a condition: an absent param meets it only when its unconditional default does."""
    if condition.integer:
        return {"properties": {condition.param: {"type": "integer"}}, "required": [condition.param]}
    values = list(condition.values)
    test: dict[str, Any] = {"const": values[0]} if len(values) == 1 else {"enum": values}
    schema: dict[str, Any] = {"properties": {condition.param: test}}
    (param,) = [p for p in signature.params if p.name == condition.param]
    if param.conditions or param.default is MISSING or not condition.holds({param.name: param.default}):
        schema["required"] = [condition.param]
    return schema


def _conditionals(signature: Signature) -> list[dict[str, Any]]:
    """One ``if``/``then``/``else`` per distinct condition: ``then`` requires what the condition makes
    required, ``else`` forbids what applies only under it."""
    branches: dict[tuple[Any, ...], tuple[When, list[str], list[str]]] = {}
    for param in signature.params:
        for condition in param.conditions:
            branches.setdefault(condition.identity(), (condition, [], []))[2].append(param.name)
        if isinstance(param.required, When):
            branches.setdefault(param.required.identity(), (param.required, [], []))[1].append(param.name)
    result = []
    for condition, required, applies in branches.values():
        branch: dict[str, Any] = {"if": _condition_schema(condition, signature)}
        if required:
            branch["then"] = {"description": f"required when {condition.describe()}", "required": required}
        if applies:
            branch["else"] = {
                "description": f"applies only when {condition.describe()}",
                "properties": dict.fromkeys(applies, False),
            }
        result.append(branch)
    return result


def op_schema(definition: OpDef) -> dict[str, Any]:
    """The JSON Schema of one op's params."""
    signature = definition.signature
    schema: dict[str, Any] = {"description": definition.description, "type": "object", "additionalProperties": False}
    required = [param.name for param in signature.params if param.required is True]
    if required:
        schema["required"] = required
    schema["properties"] = {param.name: param.schema() for param in signature.params}
    rules: list[dict[str, Any]] = []
    for group in signature.exactly_one:
        rules.append({"oneOf": [{"required": [name]} for name in group]})
    for group in signature.at_most_one:
        rules.append({"not": {"required": list(group)}})
    rules.extend(_conditionals(signature))
    if rules:
        schema["allOf"] = rules
    return schema


def _param_types() -> dict[str, Any]:
    return {
        "size": {"description": "An integer (a square) or [width, height].", **size_schema(MAX_SIZE)},
        "color": {
            "description": "'#rrggbb' or '#rrggbbaa' (quote it in YAML: '#' starts a comment), or [r, g, b] / "
            "[r, g, b, a] with 0..255.",
            "oneOf": [
                {"type": "string", "pattern": HEX_COLOUR_PATTERN},
                {
                    "type": "array",
                    "items": {"type": "integer", "minimum": 0, "maximum": 255},
                    "minItems": 3,
                    "maxItems": 4,
                },
            ],
        },
    }


def build_schema() -> dict[str, Any]:
    """The whole post-ops schema document, from the registry."""
    # By name: the registry's order is the order the op modules happened to be imported in.
    ops = dict(sorted(load_ops().items()))
    branches: list[dict[str, Any]] = [
        {
            "type": "object",
            "required": [name],
            "additionalProperties": False,
            "properties": {name: {"$ref": f"#/$defs/{name}"}},
        }
        for name in ops
    ]
    branches.append({"enum": [name for name, definition in ops.items() if is_bare(definition)]})
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://pixelbuild.dev/schemas/post-ops.schema.json",
        "title": "pixelbuild post-processing ops",
        "description": "Parameters of the post-processing ops. A manifest 'post:' entry is a mapping with one key, "
        "the op name ('- pixelate: {size: 32, mode: box}'), or the bare name of an op whose parameters are all "
        f"optional ('- trim'). Generated from the ops' declarations by '{REGENERATE}': do not edit.",
        "$defs": {
            "postOp": {
                "description": "One step of a post chain: {op: {params}}, or the bare name of an op whose parameters "
                "are all optional.",
                "oneOf": branches,
            },
            **_param_types(),
            **{name: op_schema(definition) for name, definition in ops.items()},
        },
    }


def render_schema() -> str:
    """The schema as the committed file spells it."""
    return json.dumps(build_schema(), indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Write the schema (or with ``--check``, exit 1 when the committed one is stale)."""
    parser = argparse.ArgumentParser(prog="python -m pixelbuild.post.schema", description=__doc__)
    parser.add_argument("--check", action="store_true", help="only compare with the committed file")
    parser.add_argument("--path", type=Path, default=SCHEMA_PATH, help="the schema file (default: %(default)s)")
    args = parser.parse_args(argv)
    text = render_schema()
    try:
        current = args.path.read_text("utf-8")
    except FileNotFoundError:
        current = None
    if args.check:
        if current != text:
            print(f"{args.path} is stale: run '{REGENERATE}'", file=sys.stderr)
            return 1
        return 0
    if current != text:
        args.path.write_text(text, "utf-8")
        print(f"wrote {args.path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
