"""Stage keys: what identifies a generation, a post-processed sprite and (later) an atlas.

A *generation key* hashes what the generator sees (only the spec fields its backend reads, plus the
content of every file it reads); a *post key* hashes the generation keys plus the post chain. A change
to post-processing alone therefore never changes a generation key. Keys are xxh3_128 of canonical
JSON, prefixed by ``KEY_VERSION`` so a change of the scheme itself invalidates everything once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from pixelbuild.backends import backend_info
from pixelbuild.hashing import (
    canonical_json,
    canonical_json_of_normalised,
    canonical_object,
    hash_text,
    short_hash_text,
)
from pixelbuild.post import POST_VERSION
from pixelbuild.spec import AtlasSpec, GenerationSpec, Lora, SpriteSpec

KEY_VERSION = "1"

#: Maps a file reference of a resolved spec to the hash of its content.
FileHasher = Callable[[str], str]
#: The same, None for a file that does not exist (any more).
RefHasher = Callable[[str], str | None]

_FILE_FIELDS = ("workflow_file", "init_image", "source_file")


@dataclass(frozen=True, slots=True)
class SpriteKeys:
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


def generation_inputs(generation: GenerationSpec, file_hash: FileHasher) -> dict[str, str]:
    """The canonical JSON of every field the generation's backend reads (files as content hashes)."""
    info = backend_info(generation.backend)
    inputs = {"backend": canonical_json(f"{generation.backend}/{info.version}")}
    for name in info.inputs:
        value = getattr(generation, name)
        if name in _FILE_FIELDS:
            value = file_hash(value) if value else None
        inputs[name] = canonical_json_of_normalised(_canonical_value(value))
    return inputs


def _generation_key(inputs: Mapping[str, str]) -> str:
    return hash_text(canonical_object({"v": canonical_json(KEY_VERSION), "generation": canonical_object(inputs)}))


def generation_key(generation: GenerationSpec, file_hash: FileHasher) -> str:
    """The generation key of one generation (what ``sprite_keys`` computes for each)."""
    return _generation_key(generation_inputs(generation, file_hash))


def sprite_keys(sprite: SpriteSpec, file_hash: FileHasher) -> SpriteKeys:
    """Compute a sprite's generation keys, post key and per-field digests."""
    fields: dict[str, str] = {}
    generation_keys: list[str] = []
    several = len(sprite.generations) > 1
    for index, generation in enumerate(sprite.generations):
        inputs = generation_inputs(generation, file_hash)
        generation_keys.append(_generation_key(inputs))
        prefix = f"frames[{index}]." if several else ""
        for name, piece in inputs.items():
            fields[prefix + name] = short_hash_text(piece)
    chain = canonical_json_of_normalised([[op.op, _canonical_value(op.params)] for op in sprite.post])
    post_files = {ref: file_hash(ref) for ref in sprite.post_files}
    post_key = hash_text(
        canonical_object(
            {
                "v": canonical_json(KEY_VERSION),
                "post_version": canonical_json(POST_VERSION),
                "generations": canonical_json(generation_keys),
                "chain": chain,
                "files": canonical_json(post_files),
                "layout": canonical_json(sprite.layout),
            }
        )
    )
    fields["post"] = short_hash_text(f"[{chain},{canonical_json(sprite.layout)}]")
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
    return {
        sprite.id: cached[sprite.id] if sprite.id in cached else sprite_keys(sprite, must_hash) for sprite in sprites
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
