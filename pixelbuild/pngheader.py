"""A PNG's size from its 24-byte header, without decoding it (and without importing an image library).

Every place that must bound an image before it is decoded (sources, outputs, server answers, review pages) asks
here first.
"""

from __future__ import annotations

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png_header_size(data: bytes) -> tuple[int, int] | None:
    """Width and height from a PNG's header (its first 24 bytes), or None if ``data`` is not a PNG."""
    if len(data) < 24 or not data.startswith(PNG_SIGNATURE) or data[12:16] != b"IHDR":
        return None
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
