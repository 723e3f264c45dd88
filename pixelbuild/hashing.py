"""Canonical JSON and the content hashes built on it (xxhash xxh3_128).

Canonical JSON: sorted keys, no whitespace, UTF-8, and floats that hold an integer written as that
integer, so ``cfg: 8`` and ``cfg: 8.0`` hash the same.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

import xxhash

HASH_PREFIX_LEN = 32  # hex digits of an xxh3_128 digest


class NonFiniteNumber(ValueError):
    """A JSON document holding ``NaN``, ``Infinity`` or a number too large for a float: JSON allows
    none of them, Python's reader accepts them, and pixelbuild never writes them."""

    def __init__(self, token: str) -> None:
        super().__init__(f"{token[:40]} is not a finite number")
        self.token = token


def _refuse_constant(token: str) -> Any:
    raise NonFiniteNumber(token)


def finite_float(token: str) -> float:
    """The float of the JSON number ``token``; ``NonFiniteNumber`` if it is too large for one."""
    value = float(token)
    if not math.isfinite(value):
        raise NonFiniteNumber(token)
    return value


def loads_finite(data: bytes | str) -> Any:
    """``json.loads`` that refuses non-finite numbers (``NonFiniteNumber``, a ``ValueError``)."""
    return json.loads(data, parse_constant=_refuse_constant, parse_float=finite_float)


def _normalise(value: Any) -> Any:
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"cannot hash a non-finite number: {value!r}")
        if value.is_integer():
            return int(value)
        return value
    if isinstance(value, Mapping):
        return {str(k): _normalise(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_normalise(v) for v in value]
    return value


_encode_string = json.encoder.encode_basestring
# One encoder for every call: json.dumps with options builds a new encoder each time.
_ENCODER = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def canonical_json(value: Any) -> str:
    """Return the canonical JSON text of ``value`` (mappings, sequences, str, int, float, bool, None)."""
    kind = type(value)
    # Fast paths for scalars: most spec fields are one, and keys hash thousands of them.
    if kind is str:
        return str(_encode_string(value))
    if kind is int:
        return str(value)
    if value is None:
        return "null"
    if kind is bool:
        return "true" if value else "false"
    return _ENCODER.encode(_normalise(value))


def canonical_json_of_normalised(value: Any) -> str:
    """``canonical_json`` for data whose floats are already normalised (integral floats made ints)."""
    if type(value) is str:
        return str(_encode_string(value))
    return _ENCODER.encode(value)


def canonical_object(pieces: Mapping[str, str]) -> str:
    """Canonical JSON of an object from the canonical JSON of its values (``canonical_json`` of each)."""
    return "{" + ",".join(f"{_encode_string(name)}:{pieces[name]}" for name in sorted(pieces)) + "}"


def hash_text(text: str) -> str:
    """xxh3_128 of UTF-8 ``text``."""
    return xxhash.xxh3_128_hexdigest(text.encode("utf-8"))


def short_hash_text(text: str) -> str:
    """16 hex digits of xxh3_64 of UTF-8 ``text``."""
    return xxhash.xxh3_64_hexdigest(text.encode("utf-8"))


def hash_bytes(data: bytes) -> str:
    """xxh3_128 of ``data`` as 32 lowercase hex digits."""
    return xxhash.xxh3_128_hexdigest(data)
