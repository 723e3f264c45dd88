"""A fake ComfyUI server for pixelbuild's tests and benchmarks (real HTTP + websocket on loopback)."""

from tests.fakecomfy.server import FakeComfyServer, Knobs
from tests.fakecomfy.validation import validate_prompt

__all__ = ["FakeComfyServer", "Knobs", "validate_prompt"]
