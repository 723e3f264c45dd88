"""The normalised params of unchanged manifests stay what they were: the post key hashes them.

The expected canonical JSON was recorded from the hand-written ``_normalise`` functions (commit 0447399)
before the ops declared their parameters; a difference here changes every affected sprite's post key,
so it needs a POST_VERSION bump and a reason.
"""

from __future__ import annotations

from typing import Any

import pytest

from pixelbuild.hashing import canonical_json_of_normalised
from pixelbuild.keys import _canonical_value
from pixelbuild.post import check_params, normalise_post_entry

GOLDEN: list[tuple[list[Any], str]] = [
    (["trim"], '[["trim",{"common":true,"margin":0}]]'),
    (
        ["pixelate", "trim", "outline"],
        '[["pixelate",{"max_cell":64,"min_cell":2,"min_confidence":0,"mode":"auto","on_no_grid":"keep","square":true}],["trim",{"common":true,"margin":0}],["outline",{"color":"#000000ff","diagonal":false,"expand":true,"mode":"outer"}]]',
    ),
    (
        [{"pixelate": {"size": 32, "mode": "box"}}, {"palette": {"colors": 16}}],
        '[["pixelate",{"mode":"box","size":[32,32]}],["palette",{"colors":16,"dither":"none","method":"kmeans","min_distance":8,"palette_from":"all"}]]',
    ),
    (
        [{"pixelate": {"size": [32, 48], "mode": "mode"}}, {"palette": {"preset": "pico-8", "dither": "ordered"}}],
        '[["pixelate",{"mode":"mode","size":[32,48]}],["palette",{"bayer":4,"dither":"ordered","preset":"pico-8","strength":1}]]',
    ),
    (
        [{"pixelate": {"max_size": 64, "min_cell": 4.5, "square": False, "on_no_grid": "fail"}}],
        '[["pixelate",{"max_cell":64,"max_size":[64,64],"min_cell":4.5,"min_confidence":0,"mode":"auto","on_no_grid":"fail","square":false}]]',
    ),
    (
        [
            {"pixelate": {"size": 24, "min_confidence": 0}},
            {"palette": {"colors": 8, "method": "median-cut", "palette_from": "first", "min_distance": 0}},
        ],
        '[["pixelate",{"max_cell":64,"min_cell":2,"min_confidence":0,"mode":"auto","on_no_grid":"keep","size":[24,24],"square":true}],["palette",{"colors":8,"dither":"none","method":"median-cut","min_distance":0,"palette_from":"first"}]]',
    ),
    (
        [{"palette": {"colors": 16, "dither": "floyd-steinberg", "strength": 0.75}}],
        '[["palette",{"colors":16,"dither":"floyd-steinberg","method":"kmeans","min_distance":8,"palette_from":"all","strength":0.75}]]',
    ),
    (
        [{"palette": {"preset": "endesga-32", "dither": "ordered", "bayer": 8, "strength": 2}}],
        '[["palette",{"bayer":8,"dither":"ordered","preset":"endesga-32","strength":2}]]',
    ),
    ([{"palette": {"file": "palettes/game.gpl"}}], '[["palette",{"dither":"none","file":"palettes/game.gpl"}]]'),
    (
        [{"palette": {"colors": ["#000000", [255, 255, 255], "#FF000080"]}}],
        '[["palette",{"colors":["#000000ff","#ffffffff","#ff000080"],"dither":"none"}]]',
    ),
    (
        ["remove_background", "trim"],
        '[["remove_background",{"cleanup":false,"mode":"flood","tolerance":0}],["trim",{"common":true,"margin":0}]]',
    ),
    (
        [{"remove_background": {"mode": "key", "color": "#00ff00", "tolerance": 12, "cleanup": True}}],
        '[["remove_background",{"cleanup":true,"cleanup_tolerance":64,"color":"#00ff00ff","mode":"key","tolerance":12}]]',
    ),
    (
        [{"remove_background": {"mode": "flood", "color": [0, 255, 0], "cleanup": True, "cleanup_tolerance": 30}}],
        '[["remove_background",{"cleanup":true,"cleanup_tolerance":30,"color":"#00ff00ff","mode":"flood","tolerance":0}]]',
    ),
    (
        [{"remove_background": {"mode": "alpha", "alpha_threshold": 40}}, {"remove_background": {"mode": "alpha"}}],
        '[["remove_background",{"alpha_threshold":40,"mode":"alpha"}],["remove_background",{"alpha_threshold":128,"mode":"alpha"}]]',
    ),
    (
        [{"trim": {"margin": 1, "common": False}}, {"pad": {"amount": 2, "bottom": 0, "fill": "#ffffff"}}],
        '[["trim",{"common":false,"margin":1}],["pad",{"bottom":0,"fill":"#ffffffff","left":2,"right":2,"top":2}]]',
    ),
    (
        [{"pad": {"amount": 1}}, {"pad": {"left": 3}}, "pad"],
        '[["pad",{"bottom":1,"fill":"#00000000","left":1,"right":1,"top":1}],["pad",{"bottom":0,"fill":"#00000000","left":3,"right":0,"top":0}],["pad",{"bottom":0,"fill":"#00000000","left":0,"right":0,"top":0}]]',
    ),
    (
        [{"canvas": {"size": [32, 48], "anchor": "bottom-center"}}, {"canvas": {"size": 16, "fill": [1, 2, 3, 4]}}],
        '[["canvas",{"anchor":"bottom-center","fill":"#00000000","size":[32,48]}],["canvas",{"anchor":"center","fill":"#01020304","size":[16,16]}]]',
    ),
    (
        [
            {"outline": {"color": [0, 0, 0], "mode": "inner", "diagonal": True}},
            {"outline": {"expand": False, "color": "#FF0000"}},
        ],
        '[["outline",{"color":"#000000ff","diagonal":true,"mode":"inner"}],["outline",{"color":"#ff0000ff","diagonal":false,"expand":false,"mode":"outer"}]]',
    ),
    (
        [{"scale": {"factor": 4}}, "flip", {"flip": {"direction": "vertical"}}, {"rotate": {"angle": 270}}],
        '[["scale",{"factor":4}],["flip",{"direction":"horizontal"}],["flip",{"direction":"vertical"}],["rotate",{"angle":270}]]',
    ),
    (
        [{"resize": {"size": 64, "filter": "box"}}, {"resize": {"size": [8, 16]}}],
        '[["resize",{"filter":"box","size":[64,64]}],["resize",{"filter":"nearest","size":[8,16]}]]',
    ),
    (
        [
            {"remove_background": {"tolerance": 8}},
            {"pixelate": {"mode": "nearest", "size": 16}},
            {"palette": {"preset": "db16"}},
            {"outline": None},
            {"scale": {"factor": 2}},
        ],
        '[["remove_background",{"cleanup":false,"mode":"flood","tolerance":8}],["pixelate",{"mode":"nearest","size":[16,16]}],["palette",{"dither":"none","preset":"db16"}],["outline",{"color":"#000000ff","diagonal":false,"expand":true,"mode":"outer"}],["scale",{"factor":2}]]',
    ),
]


@pytest.mark.parametrize(("chain", "expected"), GOLDEN)
def test_normalised_chain_is_what_it_was(chain: list[Any], expected: str) -> None:
    ops = [normalise_post_entry(entry) for entry in chain]
    for op in ops:
        check_params(op)
    assert canonical_json_of_normalised([[op.op, _canonical_value(op.params)] for op in ops]) == expected
