"""The ComfyUI backend: generate sprites on one or more ComfyUI servers.

``create(settings, project_root, servers=...)`` takes the manifest's ``project.comfyui`` mapping (shape in
``config.py``); ``PIXELBUILD_COMFYUI_URL`` and the CLI's ``--server`` (``servers``) override its server
list.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from pixelbuild.backends.base import ProgressEvent
from pixelbuild.backends.comfyui.backend import ComfyUIBackend
from pixelbuild.backends.comfyui.config import ComfySettings, parse_settings
from pixelbuild.backends.comfyui.preflight import PreflightError
from pixelbuild.backends.comfyui.runner import Cancelled

__all__ = ["Cancelled", "ComfySettings", "ComfyUIBackend", "PreflightError", "ProgressEvent", "create"]


def create(settings: Mapping[str, Any], project_root: Path, *, servers: Sequence[str] = ()) -> ComfyUIBackend:
    """Make a ComfyUI backend from the manifest's ``project.comfyui`` settings (validated here); non-empty
    ``servers`` (``--server``) replace their server list."""
    return ComfyUIBackend(parse_settings(settings, project_root, servers_override=servers), project_root)
