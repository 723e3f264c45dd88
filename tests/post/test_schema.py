"""The post-ops JSON Schema is generated from the ops' declarations and agrees with the checks."""

from __future__ import annotations

import json
import random
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from pixelbuild.post import check_params, load_ops, normalise_post_entry
from pixelbuild.post.schema import REGENERATE, SCHEMA_PATH, render_schema


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


def test_committed_schema_is_generated_from_the_declarations() -> None:
    assert SCHEMA_PATH.read_text("utf-8") == render_schema(), (
        f"schemas/post-ops.schema.json is stale: regenerate it with '{REGENERATE}' and commit it"
    )


def test_bare_names_are_the_ops_whose_defaults_pass(schema: dict[str, Any]) -> None:
    (bare,) = [branch["enum"] for branch in schema["$defs"]["postOp"]["oneOf"] if "enum" in branch]
    assert set(bare) == {"pixelate", "remove_background", "trim", "pad", "outline", "flip"}
    for name in load_ops():
        if name not in bare:
            with pytest.raises(ValueError, match="needs"):
                check_params(normalise_post_entry(name))


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


# Values that probe every declared type and bound (and the wrong types).
PROBE_VALUES: list[Any] = [
    None, True, False, -1, 0, 1, 2, 3, 4, 8, 64, 65, 255, 256, 257, 1024, 1025, 4096, 4097, 8192, 8193, 16384, 16385,
    0.5, 2.0, 4.5, 1000.5, "", "x", "#ff0000", "#FF000080", "#12345", "auto", "box", "nearest", "keep", "fail",
    "none", "ordered", "floyd-steinberg", "median-cut", "first", "db16", "flood", "key", "alpha", "inner", "outer",
    "vertical", "bottom-center", "lanczos", [8, 8], [0, 8], [16, 4097], [8193, 1], [1, 2, 3], [255, 0, 0, 128],
    [256, 0, 0], ["#000000", [1, 2, 3]], [], ["#12345"], "p.gpl", 90, 270, 45,
]  # fmt: skip


def _integral_float(value: Any) -> bool:
    if isinstance(value, float):
        return value.is_integer()
    return isinstance(value, list) and any(_integral_float(item) for item in value)


def _samples(name: str) -> list[dict[str, Any]]:
    """Every probe value for every param (alone, and beside 1 or 2 random others), then random combinations."""
    rng = random.Random(name)
    names = [param.name for param in load_ops()[name].signature.params] + ["bogus"]
    samples = []
    for key in names:
        for value in PROBE_VALUES:
            others = rng.sample(names, rng.randint(1, 2))
            samples.append({key: value})
            samples.append({**{other: rng.choice(PROBE_VALUES) for other in others}, key: value})
    for _ in range(300):
        samples.append({key: rng.choice(PROBE_VALUES) for key in rng.sample(names, rng.randint(0, min(4, len(names))))})
    return samples


@pytest.mark.parametrize("name", sorted(DEFAULT_PROBES))
def test_schema_and_checks_accept_the_same_params(validator: Draft202012Validator, name: str) -> None:
    """The schema rejects exactly what the checks reject, except what only an op's semantic check knows,
    and whole numbers written as floats (JSON Schema counts 2.0 as an integer)."""
    definition = load_ops()[name]
    for params in _samples(name):
        schema_ok = validator.is_valid({name: params})
        try:
            check_params(normalise_post_entry({name: params}))
        except ValueError:
            checks_ok = False
        else:
            checks_ok = True
        assert checks_ok <= schema_ok, f"the schema refuses {params} that the checks accept"
        if schema_ok and not checks_ok:
            declared_ok = True
            try:
                definition.signature.check(normalise_post_entry({name: params}).params)
            except ValueError:
                declared_ok = False
            assert declared_ok or any(_integral_float(value) for value in params.values()), (
                f"the schema accepts {params} that the declarations refuse"
            )
