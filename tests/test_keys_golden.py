"""The keys of a few sprites of every backend, spelled out: a key that changes makes every user's cache and
lock entries stale at once, so a change to how keys are computed must leave them as they are (or bump
``KEY_VERSION`` on purpose, and these with it)."""

from __future__ import annotations

from typing import Any

import pytest

from pixelbuild.hashing import hash_text
from pixelbuild.keys import compute_keys, generation_key, sprite_keys
from pixelbuild.spec import GenerationSpec, Lora, PostOp, Source, SpriteSpec


def file_hash(ref: str) -> str:
    return hash_text(f"content of {ref}")


def generation(**fields: Any) -> GenerationSpec:
    base: dict[str, Any] = {
        "backend": "placeholder",
        "prompt": "pixel art red slime",
        "negative_prompt": "blurry",
        "seed": 7919,
        "width": 32,
        "height": 32,
        "steps": 20,
        "cfg": 7.5,
        "sampler": "euler",
        "scheduler": "normal",
        "denoise": 1.0,
        "checkpoint": "sd_xl_base_1.0.safetensors",
        "loras": (Lora("pixel-art-xl.safetensors", 0.5),),
        "workflow": "txt2img_sdxl",
        "workflow_file": "builtin:txt2img_sdxl.json",
    }
    return GenerationSpec(**{**base, **fields})


def sprite(sprite_id: str, *generations: GenerationSpec, **fields: Any) -> SpriteSpec:
    return SpriteSpec(
        id=sprite_id,
        generations=generations or (generation(),),
        post=fields.pop("post", (PostOp("resize", {"size": [16, 16], "filter": "box"}),)),
        output=f"{sprite_id}.png",
        source=Source("pixelbuild.yaml", ("sprites", 0)),
        **fields,
    )


SPRITES = {
    "placeholder": sprite("slime"),
    "comfyui": sprite(
        "hero",
        generation(
            backend="comfyui",
            prompt='a "hero", café\nsecond line',
            cfg=8.0,
            loras=(Lora("a.safetensors", 1.0), Lora("b.safetensors", 0.25, "ab" * 32)),
            init_image="art/init.png",
            bindings={"strength": 0.6, "label": "x", "steps": 3},
            workflow_file="workflows/custom.json",
        ),
        post=(PostOp("palette", {"colors": ["#000000", "#ffffff"], "dither": False}), PostOp("trim", {})),
        post_files=("palettes/base.hex",),
        layout={"type": "grid", "columns": 2, "padding": 1},
    ),
    "frames": sprite(
        "walk",
        generation(backend="comfyui", seed=1, batch_size=4),
        generation(backend="comfyui", seed=2, negative_prompt="", denoise=0.5),
    ),
    "source": sprite(
        "drawn",
        generation(backend="source", source_file="art/sheet.png", frame_size=(16, 16), batch_size=4),
        post=(),
    ),
}

# Computed by the keys stage as it was before it was made faster; never edited since.
EXPECTED: dict[str, tuple[list[str], str, dict[str, str]]] = {
    "placeholder": (
        ["d1cb32bae2a393177fbd43d1e34f3dfc"],
        "6325073864b502c4e06caddf25c70a27",
        {
            "backend": "580ce46bb0bb2b97",
            "prompt": "f1605ba8cf292175",
            "negative_prompt": "dcddd13144cf7bb5",
            "seed": "27bae98174d62bfe",
            "width": "d76a3f83203391d9",
            "height": "d76a3f83203391d9",
            "batch_size": "65cd25028f98f158",
            "post": "d60737e8b139bc55",
        },
    ),
    "comfyui": (
        ["829a7e02a61274cdd1fd523b2c1713d8"],
        "e10161f8d4c464e7c85dba64debcde11",
        {
            "backend": "3f0320d736933844",
            "prompt": "7046e2b974bfb856",
            "negative_prompt": "dcddd13144cf7bb5",
            "seed": "27bae98174d62bfe",
            "width": "d76a3f83203391d9",
            "height": "d76a3f83203391d9",
            "steps": "e4f7ce4c0f09ecfd",
            "cfg": "664f427c6b2c4bea",
            "sampler": "1d5ec59f6e95cf21",
            "scheduler": "d97a8ee75efcf575",
            "denoise": "65cd25028f98f158",
            "checkpoint": "691742c33581116d",
            "loras": "58cf08614cb35eb7",
            "workflow_file": "e098bcb6e4dab2c2",
            "batch_size": "65cd25028f98f158",
            "init_image": "9331d14d37997d89",
            "bindings": "7f4cb0824c99033a",
            "post": "c0e578e6f62a2202",
            "file:palettes/base.hex": "c5b581a08d51c7f8",
        },
    ),
    "frames": (
        ["ec1fd9969ed80b1fa354109b336552fb", "fe6292357b918282fa67119d51e74aea"],
        "c0f477e7a8fadff229278c7bf3a4a9b5",
        {
            "frames[0].backend": "3f0320d736933844",
            "frames[0].prompt": "f1605ba8cf292175",
            "frames[0].negative_prompt": "dcddd13144cf7bb5",
            "frames[0].seed": "65cd25028f98f158",
            "frames[0].width": "d76a3f83203391d9",
            "frames[0].height": "d76a3f83203391d9",
            "frames[0].steps": "e4f7ce4c0f09ecfd",
            "frames[0].cfg": "63cbf8983bec32fd",
            "frames[0].sampler": "1d5ec59f6e95cf21",
            "frames[0].scheduler": "d97a8ee75efcf575",
            "frames[0].denoise": "65cd25028f98f158",
            "frames[0].checkpoint": "691742c33581116d",
            "frames[0].loras": "aa54e8d1588d5222",
            "frames[0].workflow_file": "51c05eeca06fec3b",
            "frames[0].batch_size": "e28911027fcf803f",
            "frames[0].init_image": "b785b6ec423c44e1",
            "frames[0].bindings": "1349cde127705c16",
            "frames[1].backend": "3f0320d736933844",
            "frames[1].prompt": "f1605ba8cf292175",
            "frames[1].negative_prompt": "a10276e838f45d34",
            "frames[1].seed": "fb95a7322f5da314",
            "frames[1].width": "d76a3f83203391d9",
            "frames[1].height": "d76a3f83203391d9",
            "frames[1].steps": "e4f7ce4c0f09ecfd",
            "frames[1].cfg": "63cbf8983bec32fd",
            "frames[1].sampler": "1d5ec59f6e95cf21",
            "frames[1].scheduler": "d97a8ee75efcf575",
            "frames[1].denoise": "e1cdb070569256e9",
            "frames[1].checkpoint": "691742c33581116d",
            "frames[1].loras": "aa54e8d1588d5222",
            "frames[1].workflow_file": "51c05eeca06fec3b",
            "frames[1].batch_size": "65cd25028f98f158",
            "frames[1].init_image": "b785b6ec423c44e1",
            "frames[1].bindings": "1349cde127705c16",
            "post": "d60737e8b139bc55",
        },
    ),
    "source": (
        ["d97db0378c362855f5074a1c393e292f"],
        "03c514876eb27d6f09c0a6db97b680c8",
        {
            "backend": "8f99d3efee2bb0e8",
            "source_file": "8298427974a42720",
            "frame_size": "fe4c8767d98e9a43",
            "batch_size": "e28911027fcf803f",
            "post": "2a3a037aefbe700b",
        },
    ),
}


@pytest.mark.parametrize("name", sorted(SPRITES))
def test_keys_are_what_they_always_were(name: str) -> None:
    keys = sprite_keys(SPRITES[name], file_hash)
    generations, post, fields = EXPECTED[name]
    assert (list(keys.generations), keys.post) == (generations, post)
    assert list(keys.fields.items()) == list(fields.items())  # the order "what changed" lists them in too
    assert [generation_key(g, file_hash) for g in SPRITES[name].generations] == generations


def test_keys_of_a_project_are_the_keys_of_each_sprite() -> None:
    # compute_keys shares pieces between sprites: the same value in another field or of another type
    # (1, 1.0 and True; text "1") never borrows another's piece.
    twins = [
        sprite("a", generation(seed=1, width=1, height=1)),
        sprite("b", generation(seed=True, prompt="1", negative_prompt="1")),
        sprite("c", generation(seed=1, cfg=1.0, width=1, height=1)),
        *SPRITES.values(),
    ]
    together = compute_keys(twins, file_hash)
    for one in twins:
        assert together[one.id] == sprite_keys(one, file_hash)
