"""The post-ops JSON Schema agrees with the ops: one $def per op, same defaults, same bare names."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from pixelbuild.post import check_params, load_ops, normalise_post_entry

SCHEMA_PATH = Path(__file__).resolve().parents[2] / "schemas" / "post-ops.schema.json"


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(SCHEMA_PATH.read_text("utf-8"))
    return data


@pytest.fixture(scope="module")
def validator(schema: dict[str, Any]) -> Draft202012Validator:
    return Draft202012Validator({"$schema": schema["$schema"], "$ref": "#/$defs/postOp", "$defs": schema["$defs"]})


def test_schema_is_valid_draft_2020_12(schema: dict[str, Any]) -> None:
    Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"


def test_every_op_has_a_definition_and_a_post_op_branch(schema: dict[str, Any]) -> None:
    ops = set(load_ops())
    branches = schema["$defs"]["postOp"]["oneOf"]
    tagged = {branch["required"][0] for branch in branches if branch.get("type") == "object"}
    assert tagged == ops
    assert ops <= set(schema["$defs"])
    for name in ops:
        definition = schema["$defs"][name]
        assert definition["type"] == "object"
        assert definition["additionalProperties"] is False


def test_bare_names_are_exactly_the_ops_without_required_params(schema: dict[str, Any]) -> None:
    (bare,) = [branch["enum"] for branch in schema["$defs"]["postOp"]["oneOf"] if "enum" in branch]
    usable_bare = set()
    for name in load_ops():
        try:
            check_params(normalise_post_entry(name))
        except ValueError:
            continue
        usable_bare.add(name)
    assert set(bare) == usable_bare


VALID = [
    "trim",
    "pixelate",
    {"pixelate": {"size": 32, "mode": "box"}},
    {"pixelate": {"size": [32, 48], "mode": "mode"}},
    {"pixelate": {"max_size": 64, "min_cell": 4.5, "square": False}},
    {"palette": {"colors": 16, "dither": "floyd-steinberg", "strength": 0.75}},
    {"palette": {"preset": "endesga-32", "dither": "ordered", "bayer": 8}},
    {"palette": {"file": "palettes/game.gpl"}},
    {"palette": {"colors": ["#000000", [255, 255, 255], "#ff000080"]}},
    {"remove_background": {"mode": "key", "color": "#00ff00", "tolerance": 12, "cleanup": True}},
    {"remove_background": {"mode": "alpha", "alpha_threshold": 40}},
    {"trim": {"margin": 1, "common": False}},
    {"pad": {"amount": 2, "bottom": 0, "fill": "#ffffff"}},
    {"canvas": {"size": [32, 48], "anchor": "bottom-center"}},
    {"outline": {"color": [0, 0, 0], "mode": "inner", "diagonal": True}},
    {"scale": {"factor": 4}},
    {"flip": {"direction": "vertical"}},
    {"rotate": {"angle": 270}},
    {"resize": {"size": 64, "filter": "box"}},
]

INVALID = [
    "palette",  # needs a source
    "scale",  # needs a factor
    "pixelat",
    {"trim": {"margins": 1}},
    {"trim": {}, "pad": {}},
    {"pixelate": {"mode": "box"}},
    {"pixelate": {"mode": "box", "size": 8, "min_cell": 2}},
    {"pixelate": {"size": 8, "max_size": 16}},
    {"palette": {"colors": 16, "preset": "db16"}},
    {"palette": {"colors": 300}},
    {"palette": {"preset": "db17"}},
    {"remove_background": {"mode": "alpha", "color": "#ffffff"}},
    {"remove_background": {"alpha_threshold": 10}},
    {"outline": {"color": "#ff00"}},
    {"outline": {"color": [255, 0]}},
    {"outline": {"mode": "inner", "expand": True}},
    {"rotate": {"angle": 45}},
    {"canvas": {"size": [0, 8]}},
    {"flip": None},
]


@pytest.mark.parametrize("entry", VALID)
def test_valid_entries_pass_schema_and_checks(validator: Draft202012Validator, entry: Any) -> None:
    assert not list(validator.iter_errors(entry))
    check_params(normalise_post_entry(entry))


@pytest.mark.parametrize("entry", INVALID)
def test_invalid_entries_fail_the_schema(validator: Draft202012Validator, entry: Any) -> None:
    assert list(validator.iter_errors(entry))


# For each op, entries under which every defaulted param applies (some defaults depend on a mode).
DEFAULT_PROBES: dict[str, list[Any]] = {
    "resize": [{"resize": {"size": 8}}],
    "pixelate": ["pixelate"],
    "palette": [{"palette": {"colors": 8}}, {"palette": {"colors": 8, "dither": "ordered"}}],
    "remove_background": [
        "remove_background",
        {"remove_background": {"cleanup": True}},
        {"remove_background": {"mode": "alpha"}},
    ],
    "trim": ["trim"],
    "pad": ["pad"],
    "canvas": [{"canvas": {"size": 8}}],
    "outline": ["outline"],
    "scale": [{"scale": {"factor": 2}}],
    "flip": ["flip"],
    "rotate": [{"rotate": {"angle": 90}}],
}


def test_schema_defaults_are_the_defaults_normalise_fills_in(schema: dict[str, Any]) -> None:
    assert set(DEFAULT_PROBES) == set(load_ops())
    for name, probes in DEFAULT_PROBES.items():
        filled: dict[str, Any] = {}
        for probe in probes:
            given = probe[name] if isinstance(probe, dict) else {}
            params = normalise_post_entry(probe).params
            filled.update({key: value for key, value in params.items() if key not in given})
        for param, definition in schema["$defs"][name]["properties"].items():
            if "default" in definition:
                assert param in filled, f"{name}.{param} has a schema default but normalise does not fill it"
                assert filled[param] == definition["default"], f"{name}.{param}"
