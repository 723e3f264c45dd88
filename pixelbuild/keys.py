"""Stage keys: what identifies a generation, a post-processed sprite and (later) an atlas.

A *generation key* hashes what the generator sees (only the spec fields its backend reads, plus the
content of every file it reads); a *post key* hashes the generation keys plus the post chain. A change
to post-processing alone therefore never changes a generation key. Keys are xxh3_128 of canonical
JSON, prefixed by ``KEY_VERSION`` so a change of the scheme itself invalidates everything once.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import msgspec

from pixelbuild.backends import backend_info
from pixelbuild.hashing import (
    canonical_json,
    canonical_json_of_normalised,
    hash_text,
    short_hash_text,
)
from pixelbuild.post import POST_VERSION
from pixelbuild.spec import AtlasSpec, GenerationSpec, Lora, PostOp, SpriteSpec

KEY_VERSION = "1"

#: Maps a file reference of a resolved spec to the hash of its content.
FileHasher = Callable[[str], str]
#: The same, None for a file that does not exist (any more).
RefHasher = Callable[[str], str | None]

_FILE_FIELDS = ("workflow_file", "init_image", "source_file")


class SpriteKeys(msgspec.Struct, frozen=True):
    """A sprite's stage keys and a short digest per input field (to tell which field changed)."""

    generations: tuple[str, ...]
    post: str
    fields: Mapping[str, str]


def _canonical_value(value: Any) -> Any:
    """Plain JSON data for ``value``, already normalised as ``canonical_json`` wants (one pass, not two)."""
    if isinstance(value, float):
        return int(value) if value.is_integer() else value
    if isinstance(value, Lora):
        weight = int(value.weight) if value.weight.is_integer() else value.weight
        return {"name": value.name, "weight": weight, "sha256": value.sha256}
    if isinstance(value, tuple | list):
        return [_canonical_value(item) for item in value]
    if isinstance(value, Mapping):
        return {str(key): _canonical_value(item) for key, item in value.items()}
    return value


_SCALARS = (str, int, float, bool, type(None))
_V = canonical_json(KEY_VERSION)
_POST_V = canonical_json(POST_VERSION)
_encode_string = json.encoder.encode_basestring
# A generation key hashes {"generation": {inputs}, "v": KEY_VERSION}; a post key hashes the object of
# chain, files, generations, layout, post_version and v: the canonical JSON of both, in key order, is
# spelled here once so that each sprite's only costs are its own pieces.
_GENERATION_OPEN = '{"generation":{'
_GENERATION_CLOSE = "}," + f'"v":{_V}' + "}"
_POST_OPEN = '{"chain":'
_POST_FILES = ',"files":'
_POST_GENERATIONS = ',"generations":'
_POST_LAYOUT = ',"layout":'
_POST_CLOSE = f',"post_version":{_POST_V},"v":{_V}' + "}"
_NO_FILES = canonical_json({})


def _value_key(value: Any) -> Any:
    """A dict key that tells apart every value with another canonical JSON (its type too: 1 == 1.0 == True),
    or None for a value not worth keying (a mapping, or something unique to one sprite)."""
    kind = type(value)
    if kind in _SCALARS:
        return kind, value
    if kind is tuple and all(type(item) is Lora for item in value):
        # Lora fields are str, float and str | None, so equal tuples have equal JSON.
        return Lora, value
    if isinstance(value, Mapping) and all(type(item) in _SCALARS for item in value.values()):
        return tuple((str(name), type(item), item) for name, item in value.items())
    return None


class _Backend(msgspec.Struct, frozen=True):
    """How the keys read one backend's generations: its ``backend`` piece, the fields it reads (in the
    order their digests are listed), and where each one goes in the key's canonical JSON."""

    piece: tuple[str, str]
    inputs: tuple[str, ...]
    files: tuple[bool, ...]
    #: (index into ``("backend", *inputs)``, the JSON name and colon before its piece), by name.
    order: tuple[tuple[int, str], ...]


class _Shared:
    """What many sprites of one project have alike (a negative prompt, a checkpoint, a post chain, a layout):
    its canonical JSON and short digest, computed once per distinct value instead of once per sprite."""

    def __init__(self) -> None:
        # By (field, value key), or (field, type, value) for text and whole numbers.
        self.pieces: dict[tuple[Any, ...], tuple[str, str]] = {}
        # By identity (the resolver hands sprites with one chain the same tuple); the value is kept alive.
        self.chains: dict[int, tuple[tuple[PostOp, ...], str]] = {}
        self.layouts: dict[Any, tuple[str, str]] = {}
        self.backends: dict[str, _Backend] = {}

    def piece(self, name: str, value: Any) -> tuple[str, str]:
        """The canonical JSON of one input field's value and its short digest."""
        kind = type(value)
        if kind is str or kind is int:  # most fields, those unique to a sprite (prompt, seed) among them
            found = self.pieces.get((name, kind, value))
            if found is None:
                piece = _encode_string(value) if kind is str else str(value)
                found = self.pieces[name, kind, value] = piece, short_hash_text(piece)
            return found
        key = _value_key(value)
        if key is None:
            piece = canonical_json_of_normalised(_canonical_value(value))
            return piece, short_hash_text(piece)
        found = self.pieces.get((name, key))
        if found is None:
            piece = canonical_json_of_normalised(_canonical_value(value))
            found = self.pieces[name, key] = piece, short_hash_text(piece)
        return found

    def backend(self, name: str) -> _Backend:
        """How generations of backend ``name`` are keyed (``UsageError`` for an unknown backend)."""
        found = self.backends.get(name)
        if found is None:
            info = backend_info(name)
            names = ("backend", *info.inputs)
            order = sorted(range(len(names)), key=names.__getitem__)
            found = self.backends[name] = _Backend(
                self.piece("backend", f"{name}/{info.version}"),
                info.inputs,
                tuple(name in _FILE_FIELDS for name in info.inputs),
                tuple((index, f"{_encode_string(names[index])}:") for index in order),
            )
        return found

    def chain(self, post: tuple[PostOp, ...]) -> str:
        """The canonical JSON of a post chain."""
        found = self.chains.get(id(post))
        if found is not None and found[0] is post:
            return found[1]
        chain = canonical_json_of_normalised([[op.op, _canonical_value(op.params)] for op in post])
        self.chains[id(post)] = post, chain
        return chain

    def layout(self, chain: str, layout: Mapping[str, Any]) -> tuple[str, str]:
        """The canonical JSON of a layout, and the short digest of the chain with it (the ``post`` field)."""
        key = _value_key(layout)
        found = None if key is None else self.layouts.get((chain, key))
        if found is None:
            text = canonical_json(layout)
            found = text, short_hash_text(f"[{chain},{text}]")
            if key is not None:
                self.layouts[chain, key] = found
        return found


def _inputs(
    generation: GenerationSpec, file_hash: FileHasher, shared: _Shared
) -> tuple[_Backend, list[tuple[str, str]]]:
    """The generation's backend, and the piece of each field it reads (``backend`` first, then its inputs)."""
    backend = shared.backend(generation.backend)
    pieces = [backend.piece]
    for name, is_file in zip(backend.inputs, backend.files, strict=True):
        value = getattr(generation, name)
        if is_file:
            value = file_hash(value) if value else None
        pieces.append(shared.piece(name, value))
    return backend, pieces


def _generation_key(backend: _Backend, pieces: list[tuple[str, str]]) -> str:
    members = ",".join([name + pieces[index][0] for index, name in backend.order])
    return hash_text(_GENERATION_OPEN + members + _GENERATION_CLOSE)


def generation_inputs(generation: GenerationSpec, file_hash: FileHasher) -> dict[str, str]:
    """The canonical JSON of every field the generation's backend reads (files as content hashes)."""
    backend, pieces = _inputs(generation, file_hash, _Shared())
    return {name: piece for name, (piece, _short) in zip(("backend", *backend.inputs), pieces, strict=True)}


def generation_key(generation: GenerationSpec, file_hash: FileHasher) -> str:
    """The generation key of one generation (what ``sprite_keys`` computes for each)."""
    return _generation_key(*_inputs(generation, file_hash, _Shared()))


def sprite_keys(sprite: SpriteSpec, file_hash: FileHasher, shared: _Shared | None = None) -> SpriteKeys:
    """Compute a sprite's generation keys, post key and per-field digests (``shared``: what ``compute_keys``
    reuses between the sprites of one project)."""
    shared = shared or _Shared()
    fields: dict[str, str] = {}
    generation_keys: list[str] = []
    several = len(sprite.generations) > 1
    for index, generation in enumerate(sprite.generations):
        backend, pieces = _inputs(generation, file_hash, shared)
        generation_keys.append(_generation_key(backend, pieces))
        prefix = f"frames[{index}]." if several else ""
        fields[prefix + "backend"] = pieces[0][1]
        for name, (_piece, short) in zip(backend.inputs, pieces[1:], strict=True):
            fields[prefix + name] = short
    chain = shared.chain(sprite.post)
    layout, fields["post"] = shared.layout(chain, sprite.layout)
    post_files = {ref: file_hash(ref) for ref in sprite.post_files}
    files = canonical_json(post_files) if post_files else _NO_FILES
    generations = "[" + ",".join([_encode_string(key) for key in generation_keys]) + "]"
    post_key = hash_text(
        _POST_OPEN + chain + _POST_FILES + files + _POST_GENERATIONS + generations + _POST_LAYOUT + layout + _POST_CLOSE
    )
    for ref, digest in post_files.items():
        fields[f"file:{ref}"] = digest[:16]
    return SpriteKeys(tuple(generation_keys), post_key, fields)


def compute_keys(
    sprites: Iterable[SpriteSpec], file_hash: RefHasher, known: Mapping[str, SpriteKeys] | None = None
) -> dict[str, SpriteKeys]:
    """The keys stage (after ``resolve``): every sprite's keys by id, taken from ``known`` (the spec cache's,
    for files whose resolution it held) or computed. Raises ``ManifestError`` if a file the keys hash is gone."""

    def must_hash(ref: str) -> str:
        digest = file_hash(ref)
        if digest is None:
            from pixelbuild.errors import ManifestError

            raise ManifestError(f"file '{ref}' disappeared while pixelbuild was reading the project")
        return digest

    cached = known or {}
    shared = _Shared()
    return {
        sprite.id: cached[sprite.id] if sprite.id in cached else sprite_keys(sprite, must_hash, shared)
        for sprite in sprites
    }


#: Bumped when packing or an atlas data format changes for the same inputs.
PACK_VERSION = "2"


def atlas_key(atlas: AtlasSpec, keys: Mapping[str, SpriteKeys], sprites: Mapping[str, SpriteSpec]) -> str:
    """The pack key: the atlas's parameters and, per member, its post key, frame count and layout."""
    members = [
        [member, keys[member].post, sum(g.batch_size for g in sprites[member].generations), sprites[member].layout]
        for member in atlas.members
    ]
    return hash_text(
        canonical_json(
            {
                "v": KEY_VERSION,
                "pack_version": PACK_VERSION,
                "output": atlas.output,
                "formats": list(atlas.formats),
                "max_size": list(atlas.max_size),
                "power_of_two": atlas.power_of_two,
                "padding": atlas.padding,
                "extrude": atlas.extrude,
                "fps": atlas.fps,
                "members": members,
            }
        )
    )
