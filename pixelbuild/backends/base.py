"""The backend protocol: how the engine asks a generator for images.

The engine hands a backend every generation job of a run at once (``start``), so a remote backend can
preflight, order and pipeline the work; then it asks for each result (``result``) as the build needs it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from pixelbuild.spec import GenerationSpec

if TYPE_CHECKING:
    from PIL import Image


@dataclass(frozen=True, slots=True)
class BackendIdentity:
    """What produced an image: recorded in the lock next to each sprite."""

    name: str
    version: str
    models: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class GenerationJob:
    """One generation to run. ``key`` is its generation key; ``sprite_id`` names it in errors.

    ``workflow_path``, ``init_image_path`` and ``source_path`` are absolute paths to the files the spec
    refers to.
    """

    key: str
    sprite_id: str
    spec: GenerationSpec
    workflow_path: Path
    init_image_path: Path | None = None
    source_path: Path | None = None


@dataclass(slots=True)
class GenerationResult:
    """The images of one job (``spec.batch_size`` of them, in batch order) and who made them."""

    images: list[Image.Image]
    identity: BackendIdentity
    info: dict[str, object] = field(default_factory=dict)


class Backend(Protocol):
    """A generator. Implementations: ``placeholder`` (in-process) and ``comfyui`` (remote)."""

    name: str

    def start(self, jobs: Sequence[GenerationJob]) -> None:
        """Preflight every job and begin work; raise before any generation on bad configuration."""
        ...

    def result(self, key: str) -> GenerationResult:
        """Block until the job with generation key ``key`` is done; raise ``GenerationError`` on failure."""
        ...

    def cancel(self) -> None:
        """Stop pending and running work (Ctrl-C); finished results stay available."""
        ...

    def close(self) -> None:
        """Release connections and threads."""
        ...
