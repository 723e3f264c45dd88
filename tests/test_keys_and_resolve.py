"""Resolution and keys: complete specs, stable seeds, keys that change exactly when they should."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from pixelbuild.hashing import canonical_json, hash_text
from pixelbuild.keys import sprite_keys
from pixelbuild.manifest import load_manifest
from pixelbuild.resolver import derive_seed, resolve
from pixelbuild.spec import SpriteSpec


def resolved(make_project: Callable[..., Path], manifest: str, **files: str) -> dict[str, SpriteSpec]:
    project = make_project(manifest, files=files)
    return {s.id: s for s in resolve(load_manifest(project / "pixelbuild.yaml")).sprites}


def keys_of(sprite: SpriteSpec) -> tuple[tuple[str, ...], str]:
    keys = sprite_keys(sprite, hash_text)
    return keys.generations, keys.post


def test_canonical_json_is_type_and_order_insensitive() -> None:
    assert canonical_json({"b": 8.0, "a": [1, 2.5]}) == canonical_json({"a": [1, 2.5], "b": 8}) == '{"a":[1,2.5],"b":8}'


def test_defaults_layering_and_explicit_resolution(make_project: Callable[..., Path]) -> None:
    sprites = resolved(
        make_project,
        """\
        version: 1
        include: [more.yaml]
        defaults: {size: [64, 32], steps: 9, loras: [{name: pixel.safetensors}]}
        sprites:
          - id: a
            prompt: one
        """,
        **{"more.yaml": "defaults: {steps: 4}\nsprites:\n  - id: b\n    prompt: two\n    cfg: 3\n"},
    )
    a, b = sprites["a"].generations[0], sprites["b"].generations[0]
    assert (a.width, a.height, a.steps, a.cfg, a.sampler) == (64, 32, 9, 8.0, "euler")
    assert a.loras[0].name == "pixel.safetensors" and a.loras[0].weight == 1.0
    assert (b.steps, b.cfg, b.width) == (4, 3.0, 64)
    assert a.workflow_file == "builtin:txt2img_sdxl.json"
    assert sprites["a"].output == "a.png"


def test_derived_seed_depends_on_id_only(make_project: Callable[..., Path]) -> None:
    one = resolved(make_project, "version: 1\nsprites:\n  - {id: a, prompt: x}\n  - {id: b, prompt: y}\n")
    two = resolved(
        make_project,
        "version: 1\nsprites:\n  - {id: z, prompt: q}\n  - {id: b, prompt: other}\n  - {id: a, prompt: x}\n",
    )
    assert one["a"].generations[0].seed == two["a"].generations[0].seed == derive_seed("a")
    assert one["b"].generations[0].seed == two["b"].generations[0].seed
    assert derive_seed("a") != derive_seed("b")


def test_fields_the_backend_ignores_do_not_change_the_key(make_project: Callable[..., Path]) -> None:
    base = "version: 1\nsprites:\n  - id: a\n    prompt: x\n"
    plain = resolved(make_project, base)["a"]
    other_sampler = resolved(make_project, base + "    sampler: dpmpp_2m\n    steps: 30\n")["a"]
    assert keys_of(plain) == keys_of(other_sampler)  # the placeholder reads neither
    other_seed = resolved(make_project, base + "    seed: 1\n")["a"]
    assert keys_of(plain)[0] != keys_of(other_seed)[0]
    batch = resolved(make_project, base + "    frames: 2\n")["a"]
    assert keys_of(plain)[0] != keys_of(batch)[0]


def test_post_change_keeps_the_generation_key(make_project: Callable[..., Path]) -> None:
    base = "version: 1\nsprites:\n  - id: a\n    prompt: x\n"
    plain = resolved(make_project, base)["a"]
    posted = resolved(make_project, base + "    post: [{resize: {size: 8}}]\n")["a"]
    assert keys_of(plain)[0] == keys_of(posted)[0]
    assert keys_of(plain)[1] != keys_of(posted)[1]


def test_same_value_written_differently_gives_the_same_keys(make_project: Callable[..., Path]) -> None:
    a = resolved(
        make_project, "version: 1\nsprites:\n  - {id: a, prompt: x, cfg: 8, size: 64, post: [{resize: {size: 8}}]}\n"
    )
    b = resolved(
        make_project,
        "version: 1\nsprites:\n  - {id: a, prompt: x, cfg: 8.0, size: [64, 64],"
        " post: [{resize: {size: 8, filter: nearest}}]}\n",
    )
    assert keys_of(a["a"])[0] == keys_of(b["a"])[0]


def test_keys_are_a_stage_after_resolve_and_the_spec_cache_keeps_what_it_is_given(
    make_project: Callable[..., Path],
) -> None:
    from pixelbuild.keys import SpriteKeys, compute_keys
    from pixelbuild.local.speccache import SpecCache

    project = make_project(
        "version: 1\ninclude: [more.yaml]\nsprites:\n  - id: a\n    prompt: one\n",
        files={"more.yaml": "sprites:\n  - id: b\n    prompt: two\n"},
    )
    hashed: list[str] = []

    def file_hash(ref: str) -> str:
        hashed.append(ref)
        return hash_text(ref)

    cache = SpecCache(project / "cache", file_hash, project)
    manifest = load_manifest(project / "pixelbuild.yaml")
    sprites = resolve(manifest, cache).sprites
    assert cache.keys == {} and hashed == []  # resolving computes no key
    keys = compute_keys(sprites, file_hash, cache.keys)
    assert keys == {sprite.id: sprite_keys(sprite, file_hash) for sprite in sprites}
    # The cache stores the keys it is given, whatever they are, and hands them back.
    given = {sprite_id: SpriteKeys(("0" * 32,), f"{n:032x}", {}) for n, sprite_id in enumerate(keys)}
    cache.save(given)
    again = SpecCache(project / "cache", file_hash, project)
    assert [s.id for s in resolve(load_manifest(project / "pixelbuild.yaml"), again).sprites] == ["a", "b"]
    assert again.keys == given
    assert compute_keys(sprites, file_hash, again.keys) == given


def test_the_spec_cache_keeps_a_file_with_a_hand_drawn_source_sprite(make_project: Callable[..., Path]) -> None:
    # A source sprite has no workflow file (''); its entry was once taken for a foreign one on every read:
    # a warning each run and the file resolved again every time.
    import io

    from PIL import Image

    from pixelbuild.keys import compute_keys
    from pixelbuild.local.speccache import SpecCache

    image = io.BytesIO()
    Image.new("RGB", (8, 8), (255, 0, 0)).save(image, format="PNG")
    project = make_project(
        "version: 1\nsprites:\n  - id: hero\n    prompt: knight\n  - id: heart\n    source: art/heart.png\n",
        files={"art/heart.png": image.getvalue()},
    )
    cache = SpecCache(project / "cache", hash_text, project)
    sprites = resolve(load_manifest(project / "pixelbuild.yaml"), cache).sprites
    keys = compute_keys(sprites, hash_text, cache.keys)
    cache.save(keys)
    again = SpecCache(project / "cache", hash_text, project)
    assert [s.id for s in resolve(load_manifest(project / "pixelbuild.yaml"), again).sprites] == ["hero", "heart"]
    assert again.keys == keys  # read back from the cache, not resolved again


def test_keys_computed_together_equal_keys_computed_alone() -> None:
    """compute_keys reuses the JSON of values sprites share; values equal in Python (1, 1.0, True) but not
    in JSON must still give each sprite its own keys."""
    from msgspec.structs import replace

    from pixelbuild.keys import compute_keys
    from pixelbuild.spec import GenerationSpec, Lora, PostOp, Source

    base = GenerationSpec(
        backend="comfyui", prompt="p", negative_prompt="n", seed=1, width=16, height=16, steps=20, cfg=7.0,
        sampler="euler", scheduler="normal", denoise=1.0, checkpoint="c", loras=(), workflow="txt2img",
        workflow_file=None, batch_size=1, init_image=None, bindings={},
    )  # fmt: skip
    sprites = []
    values: list[Any] = [1, 1.0, True, 0, False, None, "1", 0.5]
    for index, value in enumerate(values):
        generation = replace(base, steps=value, bindings={"x": value}, loras=(Lora("l", 1.0),))
        post = (PostOp("resize", {"size": value}),)
        layout = {"type": "strip", "columns": value, "padding": 0}
        sprites.append(SpriteSpec(f"s{index}", (generation,), post, f"s{index}.png", Source("f", "d"), (), layout))
    together = compute_keys(sprites, hash_text)
    assert together == {sprite.id: sprite_keys(sprite, hash_text) for sprite in sprites}
    # 1 and 1.0 are one JSON number; True, 0, False, None and "1" are not.
    assert len({keys.fields["post"] for keys in together.values()}) == 7
    assert len({keys.generations for keys in together.values()}) == 7
