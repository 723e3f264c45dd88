"""The op registry: normalising manifest entries, filling defaults, and the semantic checks."""

from __future__ import annotations

import pytest
from PIL import Image

from pixelbuild.errors import ManifestError
from pixelbuild.post import (
    FILE_PARAMS,
    OPS,
    PostContext,
    apply_chain,
    check_files,
    check_params,
    load_ops,
    normalise_post_entry,
)
from pixelbuild.spec import PostOp

ALL_OPS = {
    "resize",
    "pixelate",
    "palette",
    "remove_background",
    "trim",
    "pad",
    "canvas",
    "outline",
    "scale",
    "flip",
    "rotate",
}


def test_every_op_is_registered() -> None:
    assert set(load_ops()) == ALL_OPS
    assert all(OPS[name].name == name for name in ALL_OPS)


def test_bare_name_and_empty_params_normalise_alike() -> None:
    expected = PostOp("trim", {"margin": 0, "common": True})
    assert normalise_post_entry("trim") == expected
    assert normalise_post_entry({"trim": None}) == expected
    assert normalise_post_entry({"trim": {}}) == expected


@pytest.mark.parametrize(
    ("entry", "params"),
    [
        (
            "pixelate",
            {"mode": "auto", "min_cell": 2, "max_cell": 64, "square": True, "min_confidence": 0, "on_no_grid": "keep"},
        ),
        ({"pixelate": {"size": 32, "mode": "box"}}, {"mode": "box", "size": [32, 32]}),
        (
            {"palette": {"colors": 16}},
            {"colors": 16, "method": "kmeans", "palette_from": "all", "min_distance": 8, "dither": "none"},
        ),
        (
            {"palette": {"preset": "pico-8", "dither": "ordered"}},
            {"preset": "pico-8", "dither": "ordered", "bayer": 4, "strength": 1.0},
        ),
        (
            {"palette": {"colors": ["#FF0000", [0, 0, 255]]}},
            {"colors": ["#ff0000ff", "#0000ffff"], "dither": "none"},
        ),
        ("remove_background", {"mode": "flood", "tolerance": 0, "cleanup": False}),
        (
            {"remove_background": {"cleanup": True}},
            {"mode": "flood", "tolerance": 0, "cleanup": True, "cleanup_tolerance": 64},
        ),
        ({"remove_background": {"mode": "alpha"}}, {"mode": "alpha", "alpha_threshold": 128}),
        (
            {"pad": {"amount": 2, "left": 0}},
            {"left": 0, "top": 2, "right": 2, "bottom": 2, "fill": "#00000000"},
        ),
        ({"canvas": {"size": [16, 24]}}, {"size": [16, 24], "anchor": "center", "fill": "#00000000"}),
        ("outline", {"color": "#000000ff", "mode": "outer", "diagonal": False, "expand": True}),
        (
            {"outline": {"mode": "inner", "color": [255, 0, 0]}},
            {"color": "#ff0000ff", "mode": "inner", "diagonal": False},
        ),
        ({"scale": {"factor": 3}}, {"factor": 3}),
        ("flip", {"direction": "horizontal"}),
        ({"rotate": {"angle": 90}}, {"angle": 90}),
        ({"resize": {"size": 8}}, {"size": [8, 8], "filter": "nearest"}),
    ],
)
def test_normalise_fills_defaults_and_canonical_spellings(entry: object, params: dict[str, object]) -> None:
    op = normalise_post_entry(entry)  # type: ignore[arg-type]
    assert dict(op.params) == params
    check_params(op)


def test_equivalent_spellings_normalise_to_equal_ops() -> None:
    assert normalise_post_entry({"outline": {"color": "#FF0000"}}) == normalise_post_entry(
        {"outline": {"color": [255, 0, 0, 255]}}
    )
    assert normalise_post_entry({"pad": {"amount": 1}}) == normalise_post_entry(
        {"pad": {"left": 1, "top": 1, "right": 1, "bottom": 1}}
    )


def test_normalise_does_not_change_the_callers_mapping() -> None:
    params = {"amount": 1}
    normalise_post_entry({"pad": params})
    assert params == {"amount": 1}


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ("pixelat", "unknown post-processing op 'pixelat'"),
        ({"trim": {}, "pad": {}}, "exactly one key"),
        ({"trim": 3}, "must be a mapping"),
        (["trim"], "exactly one key"),
    ],
)
def test_malformed_entries_are_rejected(entry: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        normalise_post_entry(entry)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"pixelate": {"mode": "box"}}, r"needs 'size' \(an integer or \[width, height\]\) when 'mode' is 'box'"),
        (
            {"pixelate": {"mode": "box", "size": 8, "min_cell": 3}},
            "'min_cell' only applies to pixelate when 'mode' is 'auto', not 'box'",
        ),
        ({"pixelate": {"size": 8, "max_size": 9}}, "takes 'size' or 'max_size', not both"),
        ({"pixelate": {"min_cell": 8, "max_cell": 4}}, "must be smaller than max_cell"),
        ({"pixelate": {"size": 0, "mode": "nearest"}}, r"'size' must be 1\.\.4096 pixels per side"),
        ({"palette": {}}, "exactly one of"),
        ({"palette": {"colors": 8, "preset": "db16"}}, "exactly one of"),
        ({"palette": {"colors": 1}}, "at least 2"),
        ({"palette": {"preset": "db17"}}, "'preset' must be one of"),
        (
            {"palette": {"preset": "db16", "method": "kmeans"}},
            "'method' only applies to palette when 'colors' is a number of colours",
        ),
        (
            {"palette": {"colors": 4, "bayer": 4}},
            "'bayer' only applies to palette when 'dither' is 'ordered', not 'none'",
        ),
        ({"palette": {"colors": 4, "dither": "ordered", "bayer": 3}}, "'bayer' must be one of"),
        ({"palette": {"colors": ["#12345"]}}, "is not a colour"),
        (
            {"remove_background": {"mode": "alpha", "tolerance": 3}},
            "only applies to remove_background when 'mode' is 'flood' or 'key', not 'alpha'",
        ),
        ({"remove_background": {"tolerance": 300}}, "at most 255"),
        ({"remove_background": {"color": "red"}}, "is not a colour"),
        (
            {"remove_background": {"cleanup_tolerance": 9}},
            "only applies to remove_background when 'cleanup' is true, not false",
        ),
        ({"trim": {"margin": -1}}, "at least 0"),
        ({"trim": {"common": "yes"}}, "true or false"),
        ({"pad": {"left": -2}}, "at least 0"),
        ({"canvas": {"anchor": "top"}}, "needs 'size'"),
        ({"canvas": {"size": 8, "anchor": "top"}}, "'anchor' must be one of"),
        ({"outline": {"mode": "inner", "expand": True}}, "only applies to outline when 'mode' is 'outer', not 'inner'"),
        ({"outline": {"color": None}}, "quote hex colours"),
        ({"scale": {}}, "needs 'factor'"),
        ({"scale": {"factor": 0}}, "at least 1"),
        ({"flip": {"direction": "sideways"}}, "'direction' must be one of"),
        ({"rotate": {"angle": 45}}, "'angle' must be one of"),
        ({"resize": {"size": [8, 0]}}, r"must be 1\.\.8192 pixels per side, got 8x0"),
        ({"trim": {"margins": 1}}, "op 'trim' has no parameter 'margins'"),
    ],
)
def test_check_params_explains_bad_params(entry: object, message: str) -> None:
    op = normalise_post_entry(entry)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=message):
        check_params(op)


@pytest.mark.parametrize(
    "op",
    [
        PostOp("trim", {}),
        PostOp("pixelate", {}),
        PostOp("outline", {"mode": "inner"}),
        PostOp("pad", {"amount": 1}),
    ],
)
def test_check_params_accepts_ops_that_were_not_normalised(op: PostOp) -> None:
    check_params(op)


def test_normalising_twice_changes_nothing() -> None:
    for entry in ("pixelate", {"palette": {"colors": ["#FF0000"]}}, {"pad": {"amount": 2}}, "outline"):
        once = normalise_post_entry(entry)  # type: ignore[arg-type]
        assert normalise_post_entry({once.op: dict(once.params)}) == once


def test_check_params_rejects_unknown_op() -> None:
    with pytest.raises(ValueError, match="unknown post-processing op 'nope'"):
        check_params(PostOp("nope", {}))


def test_file_params_name_the_palette_file() -> None:
    assert FILE_PARAMS == {"palette": ("file",)}
    op = normalise_post_entry({"palette": {"file": "art/palettes/main.gpl"}})
    assert op.params["file"] == "art/palettes/main.gpl"


def test_check_files_parses_palette_files() -> None:
    files = {"good.hex": b"000000\nffffff\n", "bad.gpl": b"GIMP Palette\n0 0 0\n1 2\n"}
    check_files(normalise_post_entry({"palette": {"file": "good.hex"}}), files.__getitem__)
    with pytest.raises(ManifestError) as caught:
        check_files(normalise_post_entry({"palette": {"file": "bad.gpl"}}), files.__getitem__)
    assert str(caught.value).startswith("bad.gpl:3: ")
    check_files(normalise_post_entry("trim"), files.__getitem__)  # ops without files: nothing to do


def test_apply_chain_converts_input_to_rgba_and_runs_steps_in_order() -> None:
    frame = Image.new("RGB", (2, 1), (10, 20, 30))
    chain = [normalise_post_entry({"scale": {"factor": 2}}), normalise_post_entry({"rotate": {"angle": 90}})]
    (result,) = apply_chain([frame], chain, PostContext(read_file=lambda path: b""))
    assert result.mode == "RGBA"
    assert result.size == (2, 4)
    assert result.getpixel((0, 0)) == (10, 20, 30, 255)


def test_normalise_can_check_in_the_same_call() -> None:
    assert normalise_post_entry({"trim": {"margin": 2}}, check=True) == normalise_post_entry({"trim": {"margin": 2}})
    with pytest.raises(ValueError, match="'margin' must be at least 0"):
        normalise_post_entry({"trim": {"margin": -1}}, check=True)
    with pytest.raises(ValueError, match="min_cell"):  # the op's semantic check runs too
        normalise_post_entry({"pixelate": {"min_cell": 8, "max_cell": 4}}, check=True)


def test_params_come_out_in_declaration_order() -> None:
    op = normalise_post_entry({"resize": {"filter": "box", "size": 8}})
    assert list(op.params) == ["size", "filter"]
    assert list(normalise_post_entry({"pad": {"fill": "#000000", "amount": 1}}).params) == [
        "left",
        "top",
        "right",
        "bottom",
        "fill",
    ]
