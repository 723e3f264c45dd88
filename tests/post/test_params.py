"""The declaration model: one declaration gives the defaults, the checks and the schema of an op's params."""

from __future__ import annotations

from typing import Any

import pytest
from jsonschema import Draft202012Validator

from pixelbuild.post import FILE_PARAMS, OpDef
from pixelbuild.post.params import Bool, Choice, Color, File, Int, Number, PixelSize, Signature, When
from pixelbuild.post.schema import REGENERATE, SCHEMA_PATH, main, op_schema

#: A made-up op that uses every kind of rule once.
TOY = Signature(
    "toy",
    (
        Choice("mode", ("a", "b"), default="a"),
        PixelSize("size", high=64, required=When("mode", "b")),
        Int("count", 1, 9, default=3, when=When("mode", "a")),
        Bool("extra", default=False),
        Number("weight", 0, 1, default=0.5, when=(When("mode", "a"), When("extra", True))),
        Color("ink"),
        File("file"),
        Int("alt", 0, 9),
    ),
    exactly_one=(("ink", "file"),),
    at_most_one=(("file", "alt"),),
)


def test_defaults_fill_only_where_their_conditions_hold() -> None:
    assert TOY.complete({}) == {"mode": "a", "count": 3, "extra": False}
    assert TOY.complete({"extra": True}) == {"mode": "a", "count": 3, "extra": True, "weight": 0.5}
    assert TOY.complete({"mode": "b", "size": 8, "ink": "#f00000"}) == {
        "mode": "b",
        "size": [8, 8],
        "extra": False,
        "ink": "#f00000ff",
    }


def test_completing_twice_changes_nothing() -> None:
    once = TOY.complete({"mode": "b", "size": [8, 4], "ink": [0, 0, 255]})
    assert TOY.complete(once) == once


@pytest.mark.parametrize(
    ("params", "message"),
    [
        (
            {"ink": "#000000", "nope": 1},
            "op 'toy' has no parameter 'nope' (it takes: alt, count, extra, file, ink, mode, size, weight)",
        ),
        (
            {"mode": "b", "size": 8, "ink": "#000000", "file": "p.hex"},
            "needs exactly one of 'ink' or 'file', got ink, file",
        ),
        ({"mode": "b", "ink": "#000000"}, "op 'toy' needs 'size' (an integer or [width, height]) when 'mode' is 'b'"),
        (
            {"mode": "b", "size": 8, "count": 2, "ink": "#000000"},
            "'count' only applies to toy when 'mode' is 'a', not 'b'",
        ),
        ({"weight": 1, "ink": "#000000"}, "'weight' only applies to toy when 'extra' is true, not false"),
        ({"mode": "c", "ink": "#000000"}, "'mode' must be one of a, b, got 'c'"),
        ({"mode": "b", "size": 65, "ink": "#000000"}, "'size' must be 1..64 pixels per side, got 65x65"),
        ({"count": True, "ink": "#000000"}, "'count' must be an integer, got True"),
        ({"count": 10, "ink": "#000000"}, "'count' must be at most 9, got 10"),
        ({"extra": True, "weight": 2, "ink": "#000000"}, "'weight' must be between 0 and 1, got 2"),
        ({"ink": "#ff00"}, "'#ff00' is not a colour"),
        ({}, "needs exactly one of 'ink' or 'file', got none"),
    ],
)
def test_checks_explain_what_is_wrong(params: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError) as caught:
        TOY.check(TOY.complete(params))
    assert message in str(caught.value)


def test_at_most_one_and_empty_files() -> None:
    params = TOY.complete({})
    with pytest.raises(ValueError, match="'file' must be the path of a file"):
        TOY.check({**params, "file": ""})
    with pytest.raises(ValueError, match="op 'toy' takes 'file' or 'alt', not both"):
        TOY.check({**params, "file": "p.hex", "alt": 1})
    TOY.check({**params, "file": "p.hex"})


def test_true_is_not_one_and_one_is_not_true() -> None:
    assert not When("extra", True).holds({"extra": 1})
    assert not When("count", 1).holds({"count": True})
    assert When("count", integer=True).holds({"count": 3})
    assert not When("count", integer=True).holds({"count": True})


def test_a_condition_may_only_name_an_earlier_param() -> None:
    with pytest.raises(ValueError, match="'a' depends on 'b', declared after it"):
        Signature("bad", (Int("a", 0, 1, when=When("b", 1)), Int("b", 0, 1)))
    with pytest.raises(ValueError, match="declares 'a' twice"):
        Signature("bad", (Int("a", 0, 1), Int("a", 0, 1)))
    with pytest.raises(ValueError, match="undeclared"):
        Signature("bad", (Int("a", 0, 1),), exactly_one=(("a", "b"),))
    with pytest.raises(ValueError, match="'a' cannot have a default: exactly one of"):
        Signature("bad", (Int("a", 0, 1, default=0), Int("b", 0, 1)), exactly_one=(("a", "b"),))


def _toy_validator() -> Draft202012Validator:
    definition = OpDef("toy", lambda frames, params, ctx: frames, "A toy.", TOY)
    schema = op_schema(definition)
    defs = {"size": {"type": "integer"}, "color": {"type": "string"}}
    return Draft202012Validator({**schema, "$defs": defs})


@pytest.mark.parametrize(
    ("params", "valid"),
    [
        ({"ink": "#000000"}, True),
        ({"mode": "b", "size": 8, "ink": "#000000"}, True),
        ({"mode": "b", "ink": "#000000"}, False),  # size required when mode is b
        ({"mode": "b", "size": 8, "ink": "#000000", "count": 2}, False),  # count applies only when mode is a
        ({"ink": "#000000", "count": 2}, True),  # mode defaults to a
        ({"ink": "#000000", "weight": 0.1}, False),  # weight needs extra: true
        ({"ink": "#000000", "extra": True, "weight": 0.1}, True),
        ({"file": "p.hex", "alt": 1}, False),
        ({}, False),  # exactly one of ink, file
    ],
)
def test_the_generated_schema_says_what_the_declarations_say(params: dict[str, Any], valid: bool) -> None:
    assert _toy_validator().is_valid(params) is valid
    try:
        TOY.check(TOY.complete(params))
    except ValueError:
        checked = False
    else:
        checked = True
    assert checked is valid


def test_file_params_come_from_the_declarations() -> None:
    assert dict(FILE_PARAMS) == {"palette": ("file",)}
    assert TOY.file_params() == ("file",)


def test_the_generator_writes_and_checks(tmp_path: Any, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "post-ops.schema.json"
    assert main(["--check", "--path", str(target)]) == 1
    assert REGENERATE in capsys.readouterr().err
    assert main(["--path", str(target)]) == 0
    assert target.read_text("utf-8") == SCHEMA_PATH.read_text("utf-8")
    assert main(["--check", "--path", str(target)]) == 0


def test_the_manifest_names_the_schema_colour_pattern() -> None:
    from pixelbuild.post.params import HEX_COLOUR_PATTERN
    from pixelbuild.schema_errors import _PATTERN_HINTS

    assert HEX_COLOUR_PATTERN in _PATTERN_HINTS
