"""Deterministic PNG bytes, metadata-free, and a pixel hash independent of the encoding."""

from __future__ import annotations

import io
import struct

import numpy as np
from PIL import Image, PngImagePlugin

from pixelbuild.png import decode_png, encode_png, pixel_hash


def chunk_types(data: bytes) -> list[str]:
    types, offset = [], 8
    while offset < len(data):
        (length,) = struct.unpack(">I", data[offset : offset + 4])
        types.append(data[offset + 4 : offset + 8].decode("ascii"))
        offset += 12 + length
    return types


def sprite(colours: int, alpha: bool = True) -> Image.Image:
    rng = np.random.default_rng(3)
    palette = rng.integers(0, 256, (colours, 4), dtype=np.uint8)
    palette[:, 3] = 255
    if alpha:
        palette[0, 3] = 0
    return Image.fromarray(palette[rng.integers(0, colours, (24, 20))], mode="RGBA")


def test_same_pixels_same_bytes_and_no_metadata() -> None:
    image = sprite(12)
    first = encode_png(image)
    second = encode_png(image.copy())
    assert first == second
    assert chunk_types(first) == ["IHDR", "PLTE", "tRNS", "IDAT", "IEND"]
    assert decode_png(first).convert("RGBA").tobytes() == image.tobytes()


def test_many_colours_stay_truecolour() -> None:
    image = Image.fromarray(np.random.default_rng(1).integers(0, 256, (32, 32, 4), dtype=np.uint8), mode="RGBA")
    data = encode_png(image)
    assert chunk_types(data) == ["IHDR", "IDAT", "IEND"]
    assert pixel_hash(decode_png(data)) == pixel_hash(image)


def test_pixel_hash_ignores_the_encoding_but_not_the_pixels() -> None:
    image = sprite(6)
    info = PngImagePlugin.PngInfo()
    info.add_text("prompt", "{}")
    other = io.BytesIO()
    image.save(other, format="PNG", compress_level=0, pnginfo=info)
    assert other.getvalue() != encode_png(image)
    decoded = decode_png(other.getvalue())
    assert pixel_hash(decoded) == pixel_hash(image)
    assert "prompt" not in decoded.info
    changed = image.copy()
    changed.putpixel((0, 0), (1, 2, 3, 255))
    assert pixel_hash(changed) != pixel_hash(image)
    assert pixel_hash(image.resize((24, 20))) != pixel_hash(image.resize((20, 24)))
