"""pixelbuild: build AI-generated pixel art the way make builds code.

The public API, for scripts and tools around a game repository::

    import pixelbuild

    report = pixelbuild.build("pixelbuild.yaml", pixelbuild.BuildOptions(jobs=4))
    problems = pixelbuild.check("pixelbuild.yaml").problems

Names are imported on first use, so ``import pixelbuild`` stays as cheap as the no-op build needs it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from pixelbuild._version import __version__

_EXPORTS = {
    "build": "pixelbuild.builder",
    "BuildOptions": "pixelbuild.builder",
    "BuildReport": "pixelbuild.builder",
    "check": "pixelbuild.checker",
    "CheckReport": "pixelbuild.checker",
    "Problem": "pixelbuild.checker",
    "load_manifest": "pixelbuild.manifest",
    "resolve": "pixelbuild.resolver",
    "SpriteSpec": "pixelbuild.spec",
    "GenerationSpec": "pixelbuild.spec",
    "AtlasSpec": "pixelbuild.spec",
    "PixelbuildError": "pixelbuild.errors",
    "ManifestError": "pixelbuild.errors",
    "GenerationError": "pixelbuild.errors",
    "BackendUnavailable": "pixelbuild.errors",
}

__all__ = [
    "AtlasSpec",
    "BackendUnavailable",
    "BuildOptions",
    "BuildReport",
    "CheckReport",
    "GenerationError",
    "GenerationSpec",
    "ManifestError",
    "PixelbuildError",
    "Problem",
    "SpriteSpec",
    "__version__",
    "build",
    "check",
    "load_manifest",
    "resolve",
]

if TYPE_CHECKING:
    from pixelbuild.builder import BuildOptions, BuildReport, build
    from pixelbuild.checker import CheckReport, Problem, check
    from pixelbuild.errors import BackendUnavailable, GenerationError, ManifestError, PixelbuildError
    from pixelbuild.manifest import load_manifest
    from pixelbuild.resolver import resolve
    from pixelbuild.spec import AtlasSpec, GenerationSpec, SpriteSpec


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'pixelbuild' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
