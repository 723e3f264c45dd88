"""How a resolved sprite reads to a person: its spec fields as labelled text, and per-field values that
match the lock's per-field digests (``keys.sprite_keys``), so a diff can show old and new values."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from pixelbuild.spec import GenerationSpec, PostOp, SpriteSpec


def loras_text(generation: GenerationSpec) -> str:
    """``name ×weight, ...`` or ``none``."""
    return ", ".join(f"{lora.name} ×{lora.weight:g}" for lora in generation.loras) or "none"


def post_text(post: tuple[PostOp, ...], layout: Mapping[str, Any] | None = None) -> str:
    """The post chain as ``op(k=v) → op → ...`` (and the sheet layout, when given and not the default)."""
    steps = []
    for op in post:
        params = ", ".join(f"{key}={_scalar(value)}" for key, value in op.params.items())
        steps.append(f"{op.op}({params})" if params else op.op)
    text = " → ".join(steps) or "none"
    if layout is not None and dict(layout) != {"type": "strip", "columns": None, "padding": 0}:
        text += f"; layout {_scalar(dict(layout))}"
    return text


def _scalar(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return json.dumps(value, sort_keys=True, ensure_ascii=False, default=str)


def frame_count(sprite: SpriteSpec) -> int:
    """How many frames the sprite's output holds."""
    return sum(generation.batch_size for generation in sprite.generations)


def sprite_rows(sprite: SpriteSpec) -> list[tuple[str, str]]:
    """Labelled fields of a sprite for its card: what made it, in the manifest's words."""
    first = sprite.generations[0]
    if first.source_file:  # drawn by hand: no prompt, seed nor model made it
        frame = f"{first.frame_size[0]}×{first.frame_size[1]}" if first.frame_size else "whole image"
        return [
            ("source", f"{first.source_file} (drawn by hand)"),
            ("frames", f"{first.batch_size} of {frame}"),
            ("post", post_text(sprite.post, sprite.layout)),
            ("output", sprite.output),
        ]
    seeds = ", ".join(str(generation.seed) for generation in sprite.generations)
    rows = [
        ("prompt", first.prompt),
        ("negative", first.negative_prompt or "—"),
        ("seed", seeds),
        ("checkpoint", first.checkpoint),
        ("LoRAs", loras_text(first)),
        ("workflow", first.workflow),
        (
            "size",
            f"{first.width}×{first.height}, {first.steps} steps, cfg {first.cfg:g}, {first.sampler}/{first.scheduler}",
        ),
        ("post", post_text(sprite.post, sprite.layout)),
        ("output", sprite.output),
    ]
    for index, generation in enumerate(sprite.generations[1:], start=1):
        if generation.prompt != first.prompt:
            rows.insert(1 + index, (f"frame {index}", generation.prompt))
    if first.denoise != 1.0 or first.init_image:
        rows.append(("init image", f"{first.init_image or '—'} (denoise {first.denoise:g})"))
    if first.backend != "comfyui":
        rows.append(("backend", first.backend))
    return rows


def tags(sprite_id: str, atlases: list[str]) -> list[str]:
    """A sprite's tags: the folders of its id (``characters/knight`` → ``characters``) and its atlases."""
    folders = sprite_id.split("/")[:-1]
    return [*folders, *(f"atlas:{atlas}" for atlas in atlases)]


def field_value(sprite: SpriteSpec, name: str) -> str:
    """The manifest value behind one per-field digest name of the lock (``prompt``, ``frames[1].seed``,
    ``post``, ``file:palettes/a.hex``, ...), as text."""
    if name == "post":
        return post_text(sprite.post, sprite.layout)
    if name.startswith("file:"):
        return f"{name.removeprefix('file:')} (file content)"
    index = 0
    if name.startswith("frames["):
        head, _, name = name.partition("].")
        index = int(head.removeprefix("frames["))
    if index >= len(sprite.generations):
        return "—"
    generation = sprite.generations[index]
    if name == "backend":
        return generation.backend
    if name == "loras":
        return loras_text(generation)
    if name == "source_file":
        return f"{generation.source_file} (file content)"
    if name == "workflow_file":
        return f"{generation.workflow} ({generation.workflow_file})"
    if name in ("init_image", "bindings"):
        value = getattr(generation, name)
        return _scalar(dict(value)) if name == "bindings" else (value or "—")
    value = getattr(generation, name, None)
    return "—" if value is None else _scalar(value)


#: Manifest names of digest fields, for labels.
_LABELS = {
    "width": "size (width)",
    "height": "size (height)",
    "batch_size": "frames (batch)",
    "workflow_file": "workflow",
    "source_file": "source",
    "frame_size": "source frame size",
}


def field_label(name: str) -> str:
    """A digest field's name as the manifest calls it."""
    if name.startswith("file:"):
        return f"file {name.removeprefix('file:')}"
    prefix, _, leaf = name.rpartition(".")
    label = _LABELS.get(leaf, leaf)
    return f"{prefix}.{label}" if prefix else label
