"""Generator backends behind one protocol (``base.Backend``), created by name.

Importing this package is cheap: backend modules are imported only when one is created.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pixelbuild.backends.base import Backend, BackendIdentity, GenerationJob, GenerationResult
from pixelbuild.errors import UsageError

#: name -> (module, version of the output it makes). The version enters every generation key, so bumping
#: it regenerates that backend's sprites; it changes when the same spec would give different pixels.
BACKENDS: Mapping[str, tuple[str, str]] = {
    "placeholder": ("pixelbuild.backends.placeholder", "1"),
    "comfyui": ("pixelbuild.backends.comfyui", "1"),
}

__all__ = [
    "BACKENDS",
    "Backend",
    "BackendIdentity",
    "GenerationJob",
    "GenerationResult",
    "backend_key_version",
    "create_backend",
]


def backend_key_version(name: str) -> str:
    """The output version of backend ``name`` (part of the generation key)."""
    try:
        return BACKENDS[name][1]
    except KeyError:
        known = ", ".join(sorted(BACKENDS))
        raise UsageError(f"unknown backend '{name}' (known: {known})") from None


def create_backend(name: str, settings: Mapping[str, Any], project_root: Path) -> Backend:
    """Instantiate backend ``name`` with its project settings."""
    backend_key_version(name)
    module = importlib.import_module(BACKENDS[name][0])
    backend: Backend = module.create(settings, project_root)
    return backend
