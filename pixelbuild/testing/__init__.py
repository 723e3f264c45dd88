"""Test utilities for projects that use pixelbuild: a fake ComfyUI 0.8.0 server on loopback for your own
tests, and small generation jobs for it.

``FakeComfyServer().start()`` serves real HTTP and websocket on ``127.0.0.1`` (an ephemeral port, see
``url``) and behaves as a real ComfyUI 0.8.0 does, per recorded transcripts: validation errors, queue,
websocket frames, history, uploads, interrupts. Its ``knobs`` model service time, model reloads and
failures; its counters and ``executions`` say what happened. ``make_job`` builds a job its tiny
checkpoint accepts::

    from pixelbuild.backends.comfyui import create
    from pixelbuild.testing import FakeComfyServer, make_job

    server = FakeComfyServer().start()
    backend = create({"servers": [server.url]}, project_root)
    backend.start([make_job("k1")])
    assert backend.result("k1").images

``pixelbuild.testing.degrade`` draws pixel art the way a diffusion model returns it (non-integer
upscale, cut edges, blur, noise, colour shift, JPEG), for testing grid recovery and palettes.

The server needs aiohttp, which comes with the ``test`` extra: ``pip install 'pixelbuild[test]'``.
"""

from __future__ import annotations

try:
    import aiohttp  # noqa: F401  # the fake server's HTTP stack; said here, once, when it is missing
except ImportError as error:  # pragma: no cover - depends on the environment
    raise ImportError(
        "pixelbuild.testing needs aiohttp for its fake ComfyUI server; install the test extra: "
        "pip install 'pixelbuild[test]'"
    ) from error

from pixelbuild.testing.fakecomfy import Execution, FakeComfyServer, Knobs, load_object_info, validate_prompt
from pixelbuild.testing.jobs import TINY_CKPT, TINY_LORA, lora, make_job, make_spec

__all__ = [
    "TINY_CKPT",
    "TINY_LORA",
    "Execution",
    "FakeComfyServer",
    "Knobs",
    "load_object_info",
    "lora",
    "make_job",
    "make_spec",
    "validate_prompt",
]
