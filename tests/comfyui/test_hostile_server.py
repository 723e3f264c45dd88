"""A hostile or broken server: every answer is read within a bound (gzip included), every image is sized
before it is inflated, and every name it hands back is checked before it goes into a URL."""

from __future__ import annotations

import contextlib
import gzip
import http.server
import json
import struct
import threading
import zlib
from collections.abc import Callable, Iterator

import pytest

from pixelbuild.backends.comfyui import client as client_module
from pixelbuild.backends.comfyui.client import ComfyClient, ServerFailed
from pixelbuild.backends.comfyui.messages import (
    ImageRef,
    UnexpectedAnswer,
    parse_history,
    parse_images,
    parse_prompt_response,
)
from pixelbuild.backends.comfyui.runner import decode_clean

Reply = Callable[[http.server.BaseHTTPRequestHandler], None]


@pytest.fixture
def hostile() -> Iterator[Callable[[Reply], str]]:
    """Start a loopback server answering every GET with ``reply``; returns its URL."""
    servers: list[http.server.ThreadingHTTPServer] = []

    def start(reply: Reply) -> str:
        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                # The client stops reading at its bound: what a bound is for.
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    reply(self)

            def log_message(self, *args: object) -> None:
                pass

        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def _send(handler: http.server.BaseHTTPRequestHandler, body: bytes, headers: dict[str, str]) -> None:
    handler.send_response(200)
    for name, value in headers.items():
        handler.send_header(name, value)
    handler.end_headers()
    handler.wfile.write(body)


def _endless(handler: http.server.BaseHTTPRequestHandler) -> None:
    """A chunked answer that never ends."""
    handler.send_response(200)
    handler.send_header("Transfer-Encoding", "chunked")
    handler.end_headers()
    chunk = b"[" * 65536
    while True:
        handler.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))


_LIMIT = 1 << 20


@pytest.mark.parametrize(
    "reply",
    [
        lambda h: _send(h, b"{" + b" " * (2 * _LIMIT) + b"}", {"Content-Length": str(2 * _LIMIT + 2)}),
        lambda h: _send(h, gzip.compress(b" " * (8 * _LIMIT)), {"Content-Encoding": "gzip", "Connection": "close"}),
        _endless,
    ],
    ids=["long-body", "gzip-bomb", "endless-chunked"],
)
def test_answers_are_read_within_a_bound(
    hostile: Callable[[Reply], str], reply: Reply, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(client_module, "MAX_REPLY_BYTES", _LIMIT)
    monkeypatch.setattr(client_module, "MAX_IMAGE_BYTES", _LIMIT)
    client = ComfyClient(hostile(reply), retries=0, timeout=5.0)
    try:
        with pytest.raises(ServerFailed, match=r"more than|over"):
            client.system_stats()
        with pytest.raises(ServerFailed, match=r"more than|over"):
            client.view(ImageRef("a.png", "", "output"))
    finally:
        client.close()


def test_answers_within_the_bound_are_read_whole_even_compressed(
    hostile: Callable[[Reply], str], monkeypatch: pytest.MonkeyPatch
) -> None:
    body = gzip.compress(b'{"system": {"comfyui_version": "0.8.0"}, "pad": "' + b" " * 4096 + b'"}')
    monkeypatch.setattr(client_module, "MAX_REPLY_BYTES", _LIMIT)
    client = ComfyClient(
        hostile(lambda h: _send(h, body, {"Content-Encoding": "gzip", "Content-Length": str(len(body))}))
    )
    try:
        assert client.version() == "0.8.0"
    finally:
        client.close()


def _png_claiming(width: int, height: int) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = zlib.compress(b"\0" * (1 + (width + 7) // 8) * min(height, 64))
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", rows) + chunk(b"IEND", b"")


@pytest.mark.parametrize("size", [(20000, 20000), (12000, 12000), (9000, 9000), (16385, 1), (0, 5)])
def test_server_images_are_sized_before_they_are_inflated(size: tuple[int, int]) -> None:
    with pytest.raises(ValueError, match=r"limit|not a PNG"):
        decode_clean(_png_claiming(*size))


def test_not_a_png_is_refused_before_pillow_guesses_a_format() -> None:
    with pytest.raises(ValueError, match="not a PNG"):
        decode_clean(b"GIF89a" + b"\0" * 64)


@pytest.mark.parametrize(
    "image",
    [
        {"filename": "../../secret.png", "subfolder": "", "type": "output"},
        {"filename": "a.png", "subfolder": "../..", "type": "output"},
        {"filename": "a.png", "subfolder": "/etc", "type": "output"},
        {"filename": "/etc/passwd", "subfolder": "", "type": "output"},
        {"filename": "x/../../a.png", "subfolder": "", "type": "output"},
        {"filename": "a\\..\\..\\b.png", "subfolder": "", "type": "output"},
        {"filename": "C:a.png", "subfolder": "", "type": "output"},
        {"filename": "a\0.png", "subfolder": "", "type": "output"},
        {"filename": "a\n.png", "subfolder": "", "type": "output"},
        {"filename": "a" * 300 + ".png", "subfolder": "", "type": "output"},
        {"filename": "", "subfolder": "", "type": "output"},
        {"filename": "a.png", "subfolder": "x//y", "type": "output"},
        {"filename": "a.png", "subfolder": "", "type": "../../etc"},
    ],
)
def test_image_names_that_could_point_elsewhere_are_left_out(image: dict[str, str]) -> None:
    good = {"filename": "ComfyUI_00001_.png", "subfolder": "pixelbuild/ab", "type": "output"}
    assert parse_images({"images": [image, good]}) == (ImageRef("ComfyUI_00001_.png", "pixelbuild/ab", "output"),)
    entry = parse_history({"p1": {"outputs": {"9": {"images": [image]}}, "status": {}}}, "p1")
    assert entry is not None and entry.outputs["9"] == ()


@pytest.mark.parametrize("prompt_id", ["../free", "a/b", "x?y=1", "a b", "", "..", "a" * 200, "é"])
def test_prompt_ids_that_are_not_ids_are_refused(prompt_id: str, hostile: Callable[[Reply], str]) -> None:
    body = json.dumps({"prompt_id": prompt_id, "number": 1, "node_errors": {}}).encode()
    with pytest.raises(UnexpectedAnswer, match="not one"):
        parse_prompt_response(200, body)
    client = ComfyClient(hostile(lambda h: _send(h, b"{}", {"Content-Length": "2"})), retries=0)
    try:
        with pytest.raises(ServerFailed, match="not a prompt id"):
            client.history(prompt_id)
    finally:
        client.close()


def test_a_uuid_prompt_id_is_accepted() -> None:
    body = b'{"prompt_id": "0f6b6d2e-6c0e-4b8a-9d1c-2f1e0f3b9a77", "number": 3, "node_errors": {}}'
    accepted = parse_prompt_response(200, body)
    assert getattr(accepted, "prompt_id", None) == "0f6b6d2e-6c0e-4b8a-9d1c-2f1e0f3b9a77"
