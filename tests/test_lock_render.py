"""The lock's bytes: ``render_lock`` writes each block from the fields' known shapes, and those bytes are
the JSON encoder's, field by field (``_render_encoded``), for any content, odd types included."""

from __future__ import annotations

import math
import random
from typing import Any

from pixelbuild.lock import (
    AtlasEntry,
    Lock,
    LockEntry,
    OutputRecord,
    _render_block,
    _render_encoded,
    _render_known,
    render_lock,
)
from tests.conftest import REPO

#: Written by the encoder alone (before ``_render_known`` existed), read by eye: the lock format, pinned.
_GOLDEN = REPO / "tests/fixtures/render_golden.lock"


def test_a_lock_renders_to_these_very_bytes() -> None:
    sprite = LockEntry(
        generations=(("a" * 32, 7), ("b" * 32, -1)),
        post_key="3" * 32,
        backend={"version": "2", "name": "comfyui", "models": [{"sha256": None, "name": "m"}]},
        fields={"seed": "fedcba9876543210", "prompt": "0123456789abcdef"},
        outputs=(OutputRecord('déjà/h\\"\t.png', "1" * 32, "2" * 32, 24, 16),),
    )
    atlas = AtlasEntry(
        "f" * 32,
        ("héro", 'a"b'),
        (OutputRecord("ui.png", "c" * 32, "d" * 32, 128, 64), OutputRecord("ui.json", "e" * 32)),
    )
    assert render_lock(Lock({"héro": sprite}, {"ui": atlas})) == _GOLDEN.read_bytes()


_ODD_TEXT = ["", "a", "é", "日本", "\x00", "\x1f", "\x7f", '"', "\\", "\u2028", "\U0001f600", "/", " ", "\n"]


def _text(rng: random.Random) -> str:
    return "".join(rng.choice(_ODD_TEXT) for _ in range(rng.randrange(4)))


def _scalar(rng: random.Random) -> Any:
    return rng.choice([_text(rng), rng.randrange(-(10**20), 10**20), True, False, None, 1.5, math.nan, -0.0])


def _int_or_odd(rng: random.Random) -> Any:
    return rng.randrange(-(2**70), 2**70) if rng.random() < 0.8 else _scalar(rng)


def _text_or_odd(rng: random.Random) -> Any:
    return _text(rng) if rng.random() < 0.9 else _scalar(rng)


def _output(rng: random.Random) -> OutputRecord:
    if rng.random() < 0.3:
        return OutputRecord(_text_or_odd(rng), _text_or_odd(rng))
    return OutputRecord(
        _text_or_odd(rng), _text_or_odd(rng), _text_or_odd(rng), _int_or_odd(rng), _int_or_odd(rng)
    )


def _entry(rng: random.Random) -> LockEntry | AtlasEntry:
    outputs = tuple(_output(rng) for _ in range(rng.randrange(3)))
    if rng.random() < 0.3:
        return AtlasEntry(_text_or_odd(rng), tuple(_text_or_odd(rng) for _ in range(rng.randrange(3))), outputs)
    backend = {_text(rng): _scalar(rng) for _ in range(rng.randrange(3))}
    if rng.random() < 0.5:
        backend["models"] = [{_text(rng): _scalar(rng)} for _ in range(rng.randrange(3))]
    return LockEntry(
        generations=tuple((_text_or_odd(rng), _int_or_odd(rng)) for _ in range(rng.randrange(3))),
        post_key=_text_or_odd(rng),
        backend=backend,
        fields={_text(rng): _text_or_odd(rng) for _ in range(rng.randrange(4))},
        outputs=outputs,
    )


def test_blocks_are_the_encoders_bytes_for_any_content() -> None:
    rng = random.Random(20261130)
    known = 0
    for _ in range(3000):
        entry_id, entry = _text(rng), _entry(rng)
        expected = _render_encoded(entry_id, entry)
        assert _render_block(entry_id, entry) == expected
        try:
            assert _render_known(entry_id, entry) == expected
            known += 1
        except TypeError:  # an odd type: _render_block took the encoder's path, checked above
            pass
    assert 1000 < known < 3000  # both paths were taken, many times
