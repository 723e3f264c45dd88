"""The backend protocol: how the engine asks a generator for images.

The engine creates a backend through a ``BackendFactory`` from a ``BackendRequest``, asks it how it would
order the run's jobs (``ordered``), hands it a progress callback (``set_progress_callback``) and every
generation job at once (``start``), so a remote backend can preflight, order and pipeline the work; then
it asks for each result (``result``) as the build needs it, and says when that result is safely cached
(``settled``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

import msgspec

from pixelbuild.spec import GenerationSpec

if TYPE_CHECKING:
    from PIL import Image


class BackendIdentity(msgspec.Struct, frozen=True):
    """What produced an image: recorded in the lock next to each sprite."""

    name: str
    version: str
    models: tuple[str, ...] = ()


class GenerationJob(msgspec.Struct, frozen=True):
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


class GenerationResult(msgspec.Struct):
    """The images of one job (``spec.batch_size`` of them, in batch order) and who made them."""

    images: list[Image.Image]
    identity: BackendIdentity
    info: dict[str, object] = msgspec.field(default_factory=dict)


Phase = Literal["queued", "sampling", "downloading", "done", "failed"]


class ProgressEvent(msgspec.Struct, frozen=True):
    """One job's progress, for the engine's display.

    ``phase`` is ``queued`` (submitted), ``sampling`` (``value`` of ``max`` steps), ``downloading``,
    ``done`` or ``failed``; ``server`` names where it runs (empty for in-process backends).
    """

    key: str
    sprite_id: str
    server: str
    phase: Phase
    value: int = 0
    max: int = 0


ProgressCallback = Callable[[ProgressEvent], None]


class BackendRequest(msgspec.Struct, frozen=True):
    """What a backend is created from: its name, the manifest's ``project.<name>`` settings, the project
    folder, and ``servers`` given on the command line (``--server``), which replace any server list."""

    name: str
    settings: Mapping[str, Any]
    project_root: Path
    servers: tuple[str, ...] = ()


class Backend(Protocol):
    """A generator. Implementations: ``placeholder`` (in-process) and ``comfyui`` (remote).

    A class that subclasses ``Backend`` inherits identity ``ordered``, a ``set_progress_callback`` that
    reports nothing and a ``settled`` that ignores the news; others must define all seven members.
    """

    name: str

    def ordered(self, jobs: Sequence[GenerationJob]) -> list[GenerationJob]:
        """``jobs`` in the order this backend works through them (the engine schedules its tasks so)."""
        return list(jobs)

    def set_progress_callback(self, callback: ProgressCallback | None) -> None:
        """Receive ``ProgressEvent`` s, possibly from worker threads (keep the callback quick)."""
        return None

    def start(self, jobs: Sequence[GenerationJob]) -> None:
        """Preflight every job and begin work; raise before any generation on bad configuration."""
        ...

    def result(self, key: str) -> GenerationResult:
        """Block until the job with generation key ``key`` is done; raise ``GenerationError`` on failure."""
        ...

    def settled(self, key: str) -> None:
        """The engine has stored job ``key``'s result in its cache: a backend that tracks its submissions
        (ComfyUI's prompt ledger) may forget them."""
        return None

    def cancel(self) -> None:
        """Stop pending and running work (Ctrl-C); finished results stay available."""
        ...

    def close(self) -> None:
        """Release connections and threads."""
        ...


#: Makes the backend for a build; ``pixelbuild.backends.create_backend`` by default, any callable in tests.
BackendFactory = Callable[[BackendRequest], Backend]
