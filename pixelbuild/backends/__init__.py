"""Generator backends behind one protocol (``base.Backend``), created by name.

Importing this package is cheap: backend modules are imported only when one is created. Each backend
module has ``create(settings, project_root, *, servers=())``.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping

import msgspec

from pixelbuild.backends.base import (
    Backend,
    BackendFactory,
    BackendIdentity,
    BackendRequest,
    GenerationJob,
    GenerationResult,
    ProgressCallback,
    ProgressEvent,
)
from pixelbuild.errors import UsageError


class BackendInfo(msgspec.Struct, frozen=True):
    """What the engine needs to know about a backend without importing it.

    ``version`` enters every generation key: bump it when the same spec would give other pixels.
    ``inputs`` are the ``GenerationSpec`` fields the backend reads; only they enter the key, so editing
    a field a backend ignores regenerates nothing. ``generator`` is False for a backend that only reads
    project files (``source``): its work is planned as post-processing, counts as no generator call, is
    allowed under ``--frozen`` and never needs a server.
    """

    module: str
    version: str
    inputs: tuple[str, ...]
    generator: bool = True


ALL_INPUTS = (
    "prompt",
    "negative_prompt",
    "seed",
    "width",
    "height",
    "steps",
    "cfg",
    "sampler",
    "scheduler",
    "denoise",
    "checkpoint",
    "loras",
    "workflow_file",
    "batch_size",
    "init_image",
    "bindings",
)

BACKENDS: Mapping[str, BackendInfo] = {
    "placeholder": BackendInfo(
        "pixelbuild.backends.placeholder",
        "1",
        ("prompt", "negative_prompt", "seed", "width", "height", "batch_size"),
    ),
    "comfyui": BackendInfo("pixelbuild.backends.comfyui", "1", ALL_INPUTS),
    "source": BackendInfo("pixelbuild.backends.source", "1", ("source_file", "frame_size", "batch_size"), False),
}

__all__ = [
    "ALL_INPUTS",
    "BACKENDS",
    "Backend",
    "BackendFactory",
    "BackendIdentity",
    "BackendInfo",
    "BackendRequest",
    "GenerationJob",
    "GenerationResult",
    "ProgressCallback",
    "ProgressEvent",
    "backend_info",
    "create_backend",
]


def backend_info(name: str) -> BackendInfo:
    """The registry entry of backend ``name``."""
    try:
        return BACKENDS[name]
    except KeyError:
        known = ", ".join(sorted(BACKENDS))
        raise UsageError(f"unknown backend '{name}' (known: {known})") from None


def create_backend(request: BackendRequest) -> Backend:
    """Instantiate backend ``request.name`` with its project settings (the default ``BackendFactory``)."""
    module = importlib.import_module(backend_info(request.name).module)
    backend: Backend = module.create(request.settings, request.project_root, servers=request.servers)
    return backend
