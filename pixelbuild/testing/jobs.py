"""Small ComfyUI generation jobs for the fake server's tiny model (64x64, 4 steps, built-in templates)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pixelbuild.backends.base import GenerationJob
from pixelbuild.backends.comfyui.templates import builtin_template
from pixelbuild.spec import GenerationSpec, Lora

#: The checkpoint and LoRA a ``FakeComfyServer`` offers by default.
TINY_CKPT = "tiny-sd15.safetensors"
TINY_LORA = "tiny-sd15-lora.safetensors"


def make_spec(**overrides: Any) -> GenerationSpec:
    """A small txt2img spec for the tiny test model (64x64, 4 steps); ``overrides`` replace its fields."""
    values: dict[str, Any] = {
        "backend": "comfyui",
        "prompt": "pixel art knight, 16-bit sprite, side view",
        "negative_prompt": "blurry, photo",
        "seed": 42,
        "width": 64,
        "height": 64,
        "steps": 4,
        "cfg": 7.0,
        "sampler": "euler",
        "scheduler": "normal",
        "denoise": 1.0,
        "checkpoint": TINY_CKPT,
        "loras": (),
        "workflow": "txt2img_sd15",
        "workflow_file": "workflows/txt2img_sd15.json",
    }
    values.update(overrides)
    if isinstance(values["loras"], list):
        values["loras"] = tuple(values["loras"])
    return GenerationSpec(**values)


def make_job(key: str, sprite: str | None = None, *, init_image: Path | None = None, **overrides: Any) -> GenerationJob:
    """A job for ``make_spec(**overrides)`` using the built-in template named by ``workflow``."""
    if init_image is not None:
        overrides.setdefault("init_image", init_image.name)
    spec = make_spec(**overrides)
    return GenerationJob(
        key=key,
        sprite_id=sprite or f"sprite-{key}",
        spec=spec,
        workflow_path=builtin_template(spec.workflow),
        init_image_path=init_image,
    )


def lora(name: str = TINY_LORA, weight: float = 1.0, sha256: str | None = None) -> Lora:
    """A LoRA entry."""
    return Lora(name, weight, sha256)
