"""The compiled validator (jsonschema-rs) only gates: jsonschema has the last word and writes every error."""

from __future__ import annotations

import datetime
import random
from pathlib import Path
from typing import Any

import pytest

from pixelbuild.errors import ManifestError
from pixelbuild.manifest import _fast_validator, _surely_valid, _validators, validate_document
from pixelbuild.schemas import manifest_schema, post_ops_schema
from tests.test_fuzz_manifest import BASE, PART, _mutate_data

#: An included file using what a fragment may hold.
FRAGMENT = {"defaults": BASE["defaults"], "sprites": BASE["sprites"] + PART["sprites"], "atlases": BASE["atlases"]}


@pytest.mark.parametrize(("document", "is_root"), [(BASE, True), (FRAGMENT, False)])
def test_what_the_compiled_validator_accepts_jsonschema_accepts(document: dict[str, Any], is_root: bool) -> None:
    """A manifest passes on the compiled validator's word alone, so it must never accept what jsonschema
    refuses (over random mutations of a manifest that uses every feature)."""
    rng = random.Random(8)
    fast = _fast_validator(is_root)
    reference = _validators()[0 if is_root else 1]
    accepted = refused = 0
    for _ in range(1500):
        data = _mutate_data(rng, document)
        if _surely_valid(data, is_root=is_root):
            accepted += 1
            assert not list(reference.iter_errors(data)), data
        else:
            refused += 1
            try:
                fast.is_valid(data)
            except (ValueError, TypeError, OverflowError):
                continue  # not JSON: only jsonschema can tell
    assert accepted > 100 and refused > 100  # both sides were exercised


def test_jsonschema_decides_where_the_compiled_validator_is_stricter() -> None:
    # Python's '$' matches before a final line break: the id pattern accepts 'hero\n' there (the resolver then
    # refuses the control character, with its own message), the compiled validator does not.
    data = {"version": 1, "sprites": [{"id": "hero\n", "prompt": "x"}]}
    assert not _fast_validator(True).is_valid(data)
    validate_document(data, Path("pixelbuild.yaml"), is_root=True)


def test_values_that_are_not_json_are_judged_by_jsonschema() -> None:
    # YAML reads 2024-01-01 as a date and 2**70 as a big integer; the compiled validator cannot take either.
    for value in (datetime.date(2024, 1, 1), 2**70):
        data = {"version": 1, "sprites": [{"id": "hero", "prompt": "x", "seed": value}]}
        assert not _surely_valid(data, is_root=True)
        with pytest.raises(ManifestError, match="seed"):
            validate_document(data, Path("pixelbuild.yaml"), is_root=True)


def test_every_reference_has_only_annotations_beside_it() -> None:
    """The compiled validator reads the schema files as they are, jsonschema their inlined form (a target
    merged with what stands beside its ``$ref``): the two read the same only while nothing but annotations
    stands beside a reference."""
    annotations = {"$ref", "description", "default", "title", "examples", "$comment"}

    def beside_refs(node: Any) -> list[set[str]]:
        if isinstance(node, dict):
            found = [set(node) - annotations] if "$ref" in node and set(node) - annotations else []
            return found + [extra for value in node.values() for extra in beside_refs(value)]
        if isinstance(node, list):
            return [extra for value in node for extra in beside_refs(value)]
        return []

    assert beside_refs(manifest_schema()) == [] and beside_refs(post_ops_schema()) == []
