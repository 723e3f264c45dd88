"""Resolved, fully explicit sprite specifications: the typed models every later stage consumes.

A ``SpriteSpec`` is what ``resolve`` makes of one manifest entry after defaults are merged, paths
normalised and the seed derived. Nothing downstream looks at the raw manifest again.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgspec


class Lora(msgspec.Struct, frozen=True):
    """One LoRA applied on top of the checkpoint, in manifest order."""

    name: str
    weight: float
    sha256: str | None = None


class PostOp(msgspec.Struct, frozen=True):
    """One step of a post-processing chain: an op name and its (already validated) parameters."""

    op: str
    params: Mapping[str, Any] = msgspec.field(default_factory=dict)


class Source(msgspec.Struct, frozen=True):
    """Where a sprite was declared, for error messages (never hashed).

    ``file`` is the manifest file as shown to the user; ``path`` is the sprite's place in that
    document (e.g. ``("sprites", 3)``), turned into a line number only when an error needs one.
    """

    file: str
    path: tuple[str | int, ...]


class GenerationSpec(msgspec.Struct, frozen=True):
    """Everything the generator sees for one image (or one batch of images).

    File references (``workflow_file``, ``init_image``, ``source_file``) are project-relative POSIX paths;
    their content hashes, not their names, enter the generation key. A sprite drawn by hand has one
    generation of backend ``source``: ``source_file`` is its image (or sheet), cut into ``batch_size``
    frames of ``frame_size`` in row-major order; the generator fields are empty and never hashed.
    """

    backend: str
    prompt: str
    negative_prompt: str
    seed: int
    width: int
    height: int
    steps: int
    cfg: float
    sampler: str
    scheduler: str
    denoise: float
    checkpoint: str
    loras: tuple[Lora, ...]
    workflow: str
    workflow_file: str
    batch_size: int = 1
    init_image: str | None = None
    bindings: Mapping[str, Any] = msgspec.field(default_factory=dict)
    source_file: str | None = None
    frame_size: tuple[int, int] | None = None


class SpriteSpec(msgspec.Struct, frozen=True):
    """A fully resolved sprite: its generation(s), its post chain and where its output goes.

    ``generations`` usually holds one entry; an animation has one per frame (or one batch).
    ``output`` is relative to the project's output root.
    """

    id: str
    generations: tuple[GenerationSpec, ...]
    post: tuple[PostOp, ...]
    output: str
    source: Source
    post_files: tuple[str, ...] = ()
    layout: Mapping[str, Any] = msgspec.field(default_factory=lambda: {"type": "strip", "columns": None, "padding": 0})


#: Atlas data formats and the file each writes next to the atlas image (``{stem}``: its name without .png).
ATLAS_FORMATS: Mapping[str, str] = {
    "texturepacker-hash": "{stem}.json",
    "texturepacker-array": "{stem}.array.json",
    "aseprite": "{stem}.aseprite.json",
    "godot": "{stem}.tres",
    "libgdx": "{stem}.atlas",
}


class AtlasSpec(msgspec.Struct, frozen=True):
    """A resolved atlas: its member sprites (in atlas order) packed into one image plus data files."""

    id: str
    members: tuple[str, ...]
    output: str
    formats: tuple[str, ...]
    max_size: tuple[int, int]
    power_of_two: bool
    padding: int
    extrude: int
    fps: float
    source: Source

    def outputs(self) -> tuple[str, ...]:
        """Every file the atlas writes, relative to the output root: the image first, then data files."""
        folder, _, name = self.output.rpartition("/")
        stem = name.removesuffix(".png")
        prefix = f"{folder}/" if folder else ""
        return (self.output, *(prefix + ATLAS_FORMATS[fmt].format(stem=stem) for fmt in self.formats))
