"""Helpers shared by the ComfyUI backend tests (the job builders live in ``pixelbuild.testing``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pixelbuild.testing import TINY_CKPT, TINY_LORA, load_object_info, lora, make_job, make_spec

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "comfyui"

__all__ = ["FIXTURES", "TINY_CKPT", "TINY_LORA", "fixture", "load_object_info", "lora", "make_job", "make_spec"]


def fixture(name: str) -> Any:
    """A JSON fixture recorded from a real ComfyUI 0.8.0 (see tests/fixtures/comfyui/README.md)."""
    return json.loads((FIXTURES / name).read_text())
