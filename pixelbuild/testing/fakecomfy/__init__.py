"""A fake ComfyUI 0.8.0 server (real HTTP + websocket on 127.0.0.1) for tests and benchmarks."""

from pixelbuild.testing.fakecomfy.server import Execution, FakeComfyServer, Knobs, load_object_info
from pixelbuild.testing.fakecomfy.validation import validate_prompt

__all__ = ["Execution", "FakeComfyServer", "Knobs", "load_object_info", "validate_prompt"]
