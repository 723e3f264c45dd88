"""Deterministic PNG encoding and the pixel hash.

The same pixels always give the same bytes with one Pillow/zlib build: no time or text chunks, fixed
compression, and indexed colour chosen by a rule that depends only on the pixels. Because zlib builds
can differ, the lock also records a hash of the decoded pixels.
"""

from __future__ import annotations

import io
from typing import cast

import numpy as np
import xxhash
from PIL import Image

from pixelbuild.limits import MAX_SIDE
from pixelbuild.pngheader import png_header_size

MAX_PALETTE = 256


def _to_indexed(image: Image.Image) -> Image.Image | None:
    """Return ``image`` as a 'P' image with a value-sorted palette, or None if it has > 256 colours."""
    rgba = image if image.mode == "RGBA" else image.convert("RGBA")
    colours = rgba.getcolors(MAX_PALETTE)
    if colours is None:
        return None
    # Pack RGBA big-endian into one integer so sorting orders colours by (R, G, B, A). The palette comes
    # from Pillow's colour count (np.unique would import numpy.ma, ~15 ms of every build that writes one).
    rgba_colours = cast("list[tuple[int, tuple[int, int, int, int]]]", colours)
    packed_colours = sorted((r << 24) | (g << 16) | (b << 8) | a for _count, (r, g, b, a) in rgba_colours)
    palette_keys = np.array(packed_colours, dtype=np.uint32)
    packed = np.asarray(rgba, dtype=np.uint8).astype(np.uint32)
    keys = (packed[..., 0] << 24) | (packed[..., 1] << 16) | (packed[..., 2] << 8) | packed[..., 3]
    indices = np.searchsorted(palette_keys, keys).astype(np.uint8)
    indexed = Image.fromarray(indices, mode="P")
    rgb = np.stack([(palette_keys >> 24) & 255, (palette_keys >> 16) & 255, (palette_keys >> 8) & 255], axis=1).astype(
        np.uint8
    )
    indexed.putpalette(rgb.tobytes(), rawmode="RGB")
    alphas = (palette_keys & 255).astype(np.uint8).tobytes()
    if any(alpha != 255 for alpha in alphas):
        indexed.info["transparency"] = alphas
    return indexed


def encode_png(image: Image.Image, *, indexed: bool = True, compress_level: int = 9) -> bytes:
    """Encode ``image`` as PNG bytes that depend only on its pixels (and the zlib build).

    With ``indexed`` an image of at most 256 RGBA colours is written as palette PNG, else as RGB(A).
    """
    if image.mode not in ("RGB", "RGBA", "P", "L", "LA"):
        image = image.convert("RGBA")
    out_image: Image.Image = image
    if indexed:
        candidate = _to_indexed(image)
        if candidate is not None:
            out_image = candidate
    elif image.mode == "P":
        out_image = image.convert("RGBA")
    buffer = io.BytesIO()
    params: dict[str, object] = {"optimize": False, "compress_level": compress_level}
    if out_image.mode == "P" and "transparency" in out_image.info:
        params["transparency"] = out_image.info["transparency"]
    out_image.save(buffer, format="PNG", **params)
    return buffer.getvalue()


#: zlib level of raw generations in the cache. Every post-processing run decodes them, and a noisy 1024²
#: diffusion image stored (level 0) decodes in ~5 ms against ~17 ms at ComfyUI's level 4 and ~20 ms at
#: level 1, for about 1.6x the bytes (measured by bench/post_chain.py).
RAW_COMPRESS_LEVEL = 0


def encode_raw(image: Image.Image) -> bytes:
    """Encode a raw generation for the cache: lossless, truecolour, quick to write and to read back."""
    return encode_png(image, indexed=False, compress_level=RAW_COMPRESS_LEVEL)


#: The most pixels any PNG pixelbuild reads back may have (an atlas may reach the largest side squared).
MAX_DECODE_PIXELS = MAX_SIDE * MAX_SIDE
# Checked here, before decoding (see ``check_png``): Pillow's own guard would warn (or fail) on images
# pixelbuild itself writes, and lets a 13,000² "decompression bomb" of a few kB through.
Image.MAX_IMAGE_PIXELS = MAX_DECODE_PIXELS

def check_png(data: bytes, max_pixels: int = MAX_DECODE_PIXELS) -> tuple[int, int]:
    """The size of PNG ``data``; ``ValueError`` unless it is a PNG within ``MAX_SIDE`` a side and ``max_pixels``
    (checked on the header, before a byte is inflated: a few kB can claim gigabytes of pixels)."""
    size = png_header_size(data)
    if size is None:
        raise ValueError("not a PNG image")
    width, height = size
    if not (0 < width <= MAX_SIDE and 0 < height <= MAX_SIDE) or width * height > max_pixels:
        raise ValueError(
            f"the image claims {width}x{height} pixels, over the limit of {MAX_SIDE:,} a side and {max_pixels:,} in all"
        )
    return size


def decode_png(data: bytes, max_pixels: int = MAX_DECODE_PIXELS) -> Image.Image:
    """Decode PNG bytes fully into memory, dropping every metadata chunk; ``ValueError`` for anything but a
    PNG within the limits (see ``check_png``)."""
    check_png(data, max_pixels)
    with Image.open(io.BytesIO(data), formats=("PNG",)) as opened:
        opened.load()
        image = opened.copy()
    image.info = {k: v for k, v in image.info.items() if k == "transparency"}
    return image


def pixel_hash(image: Image.Image) -> str:
    """xxh3_128 of the image's size and its RGBA pixels: the same for any lossless encoding."""
    rgba = image if image.mode == "RGBA" else image.convert("RGBA")
    hasher = xxhash.xxh3_128()
    hasher.update(f"RGBA {rgba.width}x{rgba.height}\n".encode("ascii"))
    hasher.update(rgba.tobytes())
    return hasher.hexdigest()
