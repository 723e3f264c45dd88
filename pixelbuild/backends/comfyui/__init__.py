"""The ComfyUI backend: generate sprites on one or more ComfyUI servers.

``create(settings, project_root)`` takes the manifest's ``project.comfyui`` mapping (shape in
``config.py``); ``PIXELBUILD_COMFYUI_URL`` and the CLI's ``--server`` (``settings["servers_override"]``)
override its server list. Beyond the ``Backend`` protocol the engine may use ``ordered(jobs)`` and
``set_progress_callback(callback)``.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pixelbuild.backends.comfyui.backend import ComfyUIBackend
from pixelbuild.backends.comfyui.config import ComfySettings, parse_settings
from pixelbuild.backends.comfyui.preflight import PreflightError
from pixelbuild.backends.comfyui.runner import Cancelled, ProgressEvent

__all__ = ["Cancelled", "ComfySettings", "ComfyUIBackend", "PreflightError", "ProgressEvent", "create"]


def create(settings: Mapping[str, Any], project_root: Path) -> ComfyUIBackend:
    """Make a ComfyUI backend from the manifest's ``project.comfyui`` settings (validated here)."""
    return ComfyUIBackend(parse_settings(settings, project_root), project_root)
