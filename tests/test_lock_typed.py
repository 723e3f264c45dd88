"""The lock's typed reader (msgspec, straight into records) accepts only what the dict reader accepts, as
the very same ``Lock``; everything else goes on to the readers that name the problem, as before."""

from __future__ import annotations

import copy
import json
import random
from typing import Any

import pytest

from pixelbuild.errors import ManifestError
from pixelbuild.hashing import loads_finite
from pixelbuild.lock import (
    AtlasEntry,
    Lock,
    LockEntry,
    OutputRecord,
    _parse_fast,
    _parse_typed,
    parse_lock,
    render_lock,
)


def _lock() -> Lock:
    backend = {"name": "comfyui", "version": "2", "models": [{"name": "m.safetensors", "sha256": None}]}
    return Lock(
        {
            "hero": LockEntry(
                (("a" * 32, 1), ("b" * 32, 2**40)),
                "c" * 32,
                backend,
                {"prompt": "0" * 16, "seed": "1" * 16},
                (OutputRecord("chars/héro.png", "d" * 32, "e" * 32, 16, 24),),
            ),
            "bare": LockEntry((), "f" * 32, {}, {}, (OutputRecord("bare.json", "0" * 32),)),
        },
        {"ui": AtlasEntry("9" * 32, ("hero", "bare"), (OutputRecord("ui.png", "8" * 32, "7" * 32, 64, 64),))},
    )


def _reference(raw: bytes) -> Lock | None:
    """What parse_lock's dict reader makes of ``raw`` (None: it sends the bytes on to the detailed reader)."""
    try:
        data = loads_finite(raw)
    except (ValueError, RecursionError):
        return None
    if not isinstance(data, dict) or data.get("version") != 1:
        return None
    return _parse_fast(data)


def _same(left: Lock, right: Lock) -> bool:
    return list(left.sprites.items()) == list(right.sprites.items()) and list(left.atlases.items()) == list(
        right.atlases.items()
    )


_ODD: list[Any] = [
    None, True, False, 0, -1, 7, 2**70, -(2**70), 1.5, -0.0, 1e308, "", "a" * 32, "A" * 32, "g" * 32, "0" * 16,
    "é", "\ud800", "x\ny", [], {}, [1], {"a": 1}, "../x", "/abs", "a\\b", "a/./b", "a" * 2000, 0.0, 24, 2**20 + 1,
]  # fmt: skip


def _places(value: Any, trail: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [trail]
    if isinstance(value, dict):
        for key, item in value.items():
            found += _places(item, (*trail, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += _places(item, (*trail, index))
    return found


def _mutate(rng: random.Random, data: dict[str, Any]) -> bytes:
    data = copy.deepcopy(data)
    for _ in range(rng.randrange(1, 3)):
        trail = rng.choice(_places(data)[1:])
        parent = data
        for step in trail[:-1]:
            parent = parent[step]
        last = trail[-1]
        move = rng.random()
        if move < 0.6:
            parent[last] = copy.deepcopy(rng.choice(_ODD))
        elif move < 0.75 and isinstance(parent, dict):
            del parent[last]
        elif isinstance(parent, dict):
            name = rng.choice(["extra", "path", "width", "pixel_hash", "seed", "key", "outputs"])
            parent[name] = copy.deepcopy(rng.choice(_ODD))
        elif isinstance(parent, list):
            parent.append(copy.deepcopy(parent[last]))
    raw = json.dumps(data, ensure_ascii=rng.random() < 0.5).encode("utf-8", "surrogatepass")
    textual = rng.random()
    if textual < 0.05:
        raw = b"\xef\xbb\xbf" + raw
    elif textual < 0.1:
        raw = raw.replace(b'"version": 1', rng.choice([b'"version": 1.0', b'"version": true', b'"version": 2']))
    elif textual < 0.2:
        raw = raw.replace(b'"path": ', b'"path": "zz", "path": ', 1)  # a key twice: the last one counts
    elif textual < 0.25:
        raw = raw.replace(b'"version": "2"', rng.choice([b'"version": 1e999', b'"version": NaN', b'"v": -1e400']))
    elif textual < 0.3:
        at = rng.randrange(len(raw))
        raw = raw[:at] + bytes([rng.randrange(256)]) + raw[at + 1 :]
    return raw


def test_the_typed_reader_reads_a_lock_as_the_dict_reader_does() -> None:
    lock = _lock()
    raw = render_lock(lock)
    typed = _parse_typed(raw)
    assert typed is not None and typed == lock and _same(typed, parse_lock(raw, "pixelbuild.lock"))
    reference = _reference(raw)
    assert reference is not None and _same(typed, reference)


def test_whatever_the_typed_reader_accepts_the_dict_reader_accepts_the_same() -> None:
    rng = random.Random(20261130)
    data = json.loads(render_lock(_lock()))
    accepted = refused = 0
    for _ in range(3000):
        raw = _mutate(rng, data)
        typed = _parse_typed(raw)
        reference = _reference(raw)
        if typed is None:
            refused += 1
            continue
        accepted += 1
        assert reference is not None and _same(typed, reference), raw
    assert accepted > 200 and refused > 1000  # both outcomes, many times


@pytest.mark.parametrize("where", ["top", "sprite", "output", "generation", "atlas"])
@pytest.mark.parametrize("value", [b"1e999", b"-1" + b"0" * 400 + b".0", b'"\\ud800"', b'"\xff"', b"NaN"])
def test_an_unknown_key_is_read_as_json_loads_reads_it(where: str, value: bytes) -> None:
    # msgspec would skip an unknown key's value unread; json.loads reads it (and refuses these).
    raw = render_lock(_lock())
    anchors = {
        "top": b'"version": 1,',
        "sprite": b'"post_key": "ffff',
        "output": b'"file_hash": "0000',
        "generation": b'"key": "aaaa',
        "atlas": b'"pack_key": "9999',
    }
    anchor = anchors[where]
    assert raw.count(anchor) == 1
    odd = raw.replace(anchor, b'"unknown": ' + value + b", " + anchor)
    assert _parse_typed(odd) is None
    assert _parse_typed(raw.replace(anchor, b'"unknown": 1, ' + anchor)) is None
    if value == b'"\\ud800"':  # json.loads takes a lone surrogate: the dict reader reads the lock as ever
        assert parse_lock(odd, "pixelbuild.lock") == _lock()
        return
    with pytest.raises(ManifestError, match=r"not a finite number|not valid JSON"):
        parse_lock(odd, "pixelbuild.lock")
