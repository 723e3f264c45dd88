"""Palettes: the built-in ones and parsers for the palette files a game repository may hold.

Supported files: Lospec ``.hex`` (one ``rrggbb`` per line), GIMP/Aseprite ``.gpl``, JASC ``.pal``
(and the binary RIFF ``.pal``), Paint.NET ``.txt`` (``aarrggbb`` per line) and PNG/GIF swatches
(the image's distinct opaque colours in reading order). A malformed file raises ``ManifestError``
naming the file and the 1-based line.
"""

from __future__ import annotations

import io
import re
import struct
from collections.abc import Callable, Mapping
from pathlib import PurePosixPath

from pixelbuild.errors import ManifestError

RGB = tuple[int, int, int]

#: The most colours a palette may hold (an indexed PNG's limit).
MAX_COLOURS = 256


def _hex_list(text: str) -> tuple[RGB, ...]:
    words = text.split()
    return tuple((int(w[0:2], 16), int(w[2:4], 16), int(w[4:6], 16)) for w in words)


#: Built-in palettes by name, colours in their published order.
BUILTIN_PALETTES: Mapping[str, tuple[RGB, ...]] = {
    "pico-8": _hex_list(
        "000000 1d2b53 7e2553 008751 ab5236 5f574f c2c3c7 fff1e8 "
        "ff004d ffa300 ffec27 00e436 29adff 83769c ff77a8 ffccaa"
    ),
    "db16": _hex_list(
        "140c1c 442434 30346d 4e4a4e 854c30 346524 d04648 757161 "
        "597dce d27d2c 8595a1 6daa2c d2aa99 6dc2ca dad45e deeed6"
    ),
    "db32": _hex_list(
        "000000 222034 45283c 663931 8f563b df7126 d9a066 eec39a "
        "fbf236 99e550 6abe30 37946e 4b692f 524b24 323c39 3f3f74 "
        "306082 5b6ee1 639bff 5fcde4 cbdbfc ffffff 9badb7 847e87 "
        "696a6a 595652 76428a ac3232 d95763 d77bba 8f974a 8a6f30"
    ),
    "endesga-32": _hex_list(
        "be4a2f d77643 ead4aa e4a672 b86f50 733e39 3e2731 a22633 "
        "e43b44 f77622 feae34 fee761 63c74d 3e8948 265c42 193c3e "
        "124e89 0099db 2ce8f5 ffffff c0cbdc 8b9bb4 5a6988 3a4466 "
        "262b44 181425 ff0044 68386c b55088 f6757a e8b796 c28569"
    ),
    # The original Game Boy's four greens, darkest first.
    "gameboy": _hex_list("0f380f 306230 8bac0f 9bbc0f"),
    # The common 2C02 rendering of the NES palette, its repeated blacks given once: 55 colours.
    "nes": _hex_list(
        "7c7c7c 0000fc 0000bc 4428bc 940084 a80020 a81000 881400 503000 007800 006800 005800 004058 000000 "
        "bcbcbc 0078f8 0058f8 6844fc d800cc e40058 f83800 e45c10 ac7c00 00b800 00a800 00a844 008888 "
        "f8f8f8 3cbcfc 6888fc 9878f8 f878f8 f85898 f87858 fca044 f8b800 b8f818 58d854 58f898 00e8d8 787878 "
        "fcfcfc a4e4fc b8b8f8 d8b8f8 f8b8f8 f8a4c0 f0d0b0 fce0a8 f8d878 d8f878 b8f8b8 b8f8d8 00fcfc f8d8f8"
    ),
}

_HEX6 = re.compile(r"#?([0-9a-fA-F]{6})")
_HEX8 = re.compile(r"([0-9a-fA-F]{8})")


class _Reader:
    """Raises located errors for one palette file."""

    def __init__(self, name: str) -> None:
        self.name = name

    def fail(self, line: int | None, message: str) -> ManifestError:
        """The error to raise for ``line`` (1-based; None when lines do not apply)."""
        return ManifestError(message, file=self.name, line=line)

    def channel(self, word: str, line: int, what: str) -> int:
        """``word`` as a channel value 0..255, or a located error naming ``what``."""
        if not re.fullmatch(r"[0-9]+", word) or int(word) > 255:
            raise self.fail(line, f"{what} must be a whole number from 0 to 255, got '{word}'")
        return int(word)

    def rgb(self, words: list[str], line: int) -> RGB:
        """The first three ``words`` as red, green and blue."""
        names = ("red", "green", "blue")
        r, g, b = (self.channel(word, line, f"the {names[i]} value") for i, word in enumerate(words[:3]))
        return r, g, b

    def finish(self, colours: list[RGB], last_line: int | None) -> list[RGB]:
        """``colours`` if there are 1..256 of them, else a located error."""
        if not colours:
            raise self.fail(None, "the palette file holds no colours")
        if len(colours) > MAX_COLOURS:
            raise self.fail(last_line, f"a palette holds at most {MAX_COLOURS} colours, this one {len(colours)}")
        return colours


def _lines(reader: _Reader, data: bytes, *, lenient: bool = False) -> list[str]:
    """``data``'s lines as UTF-8 text; ``lenient`` falls back to Latin-1, which decodes any byte.

    GIMP and Aseprite write a palette's ``Name:`` in the system's 8-bit encoding on some systems,
    while the colour lines that matter are ASCII: those files are read, not rejected.
    """
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as problem:
        if lenient:
            return data.decode("latin-1").splitlines()
        line = data[: problem.start].count(b"\n") + 1
        raise reader.fail(line, "the palette file is not UTF-8 text") from None
    return text.splitlines()


def _parse_hex_lines(reader: _Reader, data: bytes, pattern: re.Pattern[str], skip: int, expected: str) -> list[RGB]:
    """One hexadecimal colour per line (``;`` comments); ``skip`` leading digits (an alpha) are ignored."""
    colours: list[RGB] = []
    lines = _lines(reader, data)
    for number, raw in enumerate(lines, start=1):
        line = raw.strip()
        if not line or line.startswith(";"):
            continue
        match = pattern.fullmatch(line)
        if match is None:
            raise reader.fail(number, f"expected a colour as {expected}, got '{line}'")
        digits = match.group(1)[skip:]
        colours.append((int(digits[0:2], 16), int(digits[2:4], 16), int(digits[4:6], 16)))
    return reader.finish(colours, len(lines))


def _parse_hex(reader: _Reader, data: bytes) -> list[RGB]:
    return _parse_hex_lines(reader, data, _HEX6, 0, "6 hexadecimal digits (e.g. 'ff8800')")


def _parse_gpl(reader: _Reader, data: bytes) -> list[RGB]:
    lines = _lines(reader, data, lenient=True)
    if not lines or lines[0].strip() != "GIMP Palette":
        got = lines[0].strip() if lines else ""
        raise reader.fail(1, f"a .gpl file must start with the line 'GIMP Palette', got '{got}'")
    channels = 3
    colours: list[RGB] = []
    for number, raw in enumerate(lines[1:], start=2):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        header = re.fullmatch(r"(Name|Columns|Channels)\s*:\s*(.*)", line)
        if header and not colours:
            if header.group(1) == "Channels":
                value = header.group(2).strip().upper()
                if value not in ("RGB", "RGBA"):
                    raise reader.fail(number, f"'Channels' must be RGB or RGBA, got '{header.group(2).strip()}'")
                channels = len(value)
            continue
        words = line.split()
        if len(words) < channels:
            raise reader.fail(
                number,
                f"expected {channels} numbers (red green blue{' alpha' if channels == 4 else ''}) "
                f"and an optional name, got '{line}'",
            )
        colour = reader.rgb(words, number)
        if channels == 4:
            reader.channel(words[3], number, "the alpha value")
        colours.append(colour)
    return reader.finish(colours, len(lines))


def _parse_jasc(reader: _Reader, data: bytes) -> list[RGB]:
    lines = _lines(reader, data)
    if not lines or lines[0].strip() != "JASC-PAL":
        got = lines[0].strip() if lines else ""
        raise reader.fail(1, f"a JASC .pal file must start with the line 'JASC-PAL', got '{got}'")
    if len(lines) < 2 or lines[1].strip() != "0100":
        got = lines[1].strip() if len(lines) > 1 else ""
        raise reader.fail(2, f"the second line of a JASC .pal file must be the version '0100', got '{got}'")
    if len(lines) < 3 or not re.fullmatch(r"[0-9]+", lines[2].strip()):
        got = lines[2].strip() if len(lines) > 2 else ""
        raise reader.fail(3, f"the third line of a JASC .pal file must be the colour count, got '{got}'")
    count = int(lines[2].strip())
    colours: list[RGB] = []
    for number, raw in enumerate(lines[3:], start=4):
        line = raw.strip()
        if not line:
            continue
        words = line.split()
        if len(words) not in (3, 4):
            raise reader.fail(number, f"expected three numbers (red green blue), got '{line}'")
        colours.append(reader.rgb(words, number))
    if len(colours) != count:
        raise reader.fail(3, f"the file declares {count} colours but lists {len(colours)}")
    return reader.finish(colours, len(lines))


def _parse_riff(reader: _Reader, data: bytes) -> list[RGB]:
    # RIFF 'PAL ' chunk: 'data' holds a version word, a count word and 4-byte (r, g, b, flags) entries.
    if len(data) < 24 or data[8:12] != b"PAL " or data[12:16] != b"data":
        raise reader.fail(None, "the file starts like a RIFF palette but has no 'PAL ' data chunk")
    (size,) = struct.unpack_from("<I", data, 16)
    _, count = struct.unpack_from("<HH", data, 20)
    if size < 4 + 4 * count or len(data) < 24 + 4 * count:
        raise reader.fail(None, f"the RIFF palette declares {count} colours but is too short to hold them")
    colours = [(data[24 + 4 * i], data[25 + 4 * i], data[26 + 4 * i]) for i in range(count)]
    return reader.finish(colours, None)


def _parse_pal(reader: _Reader, data: bytes) -> list[RGB]:
    if data.startswith(b"RIFF"):
        return _parse_riff(reader, data)
    return _parse_jasc(reader, data)


def _parse_paintnet(reader: _Reader, data: bytes) -> list[RGB]:
    return _parse_hex_lines(reader, data, _HEX8, 2, "8 hexadecimal digits 'aarrggbb'")


#: Pixels of a palette image (a swatch strip or grid; 4096² leaves room for any zoom).
MAX_PALETTE_IMAGE_PIXELS = 4096 * 4096


def _parse_image(reader: _Reader, data: bytes) -> list[RGB]:
    import numpy as np
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as opened:
            # Sized before decoding: a few kB of image file can claim gigabytes of pixels.
            if opened.width * opened.height > MAX_PALETTE_IMAGE_PIXELS:
                raise reader.fail(
                    None,
                    f"the palette image is {opened.width}x{opened.height} pixels, over the limit of "
                    f"{MAX_PALETTE_IMAGE_PIXELS:,} for a palette image",
                )
            image = opened.convert("RGBA")
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError):
        raise reader.fail(None, "the palette image cannot be read as an image") from None
    pixels = np.asarray(image).reshape(-1, 4)
    opaque = pixels[pixels[:, 3] > 0, :3]
    packed = (opaque[:, 0].astype(np.int64) << 16) | (opaque[:, 1].astype(np.int64) << 8) | opaque[:, 2]
    # Distinct colours in reading order (a swatch strip or grid, at any zoom).
    _, first = np.unique(packed, return_index=True)
    colours = [(int(r), int(g), int(b)) for r, g, b in opaque[np.sort(first)]]
    if len(colours) > MAX_COLOURS:
        raise reader.fail(None, f"a palette image may hold at most {MAX_COLOURS} colours, this one {len(colours)}")
    return reader.finish(colours, None)


_PARSERS: Mapping[str, Callable[[_Reader, bytes], list[RGB]]] = {
    ".hex": _parse_hex,
    ".gpl": _parse_gpl,
    ".pal": _parse_pal,
    ".txt": _parse_paintnet,
    ".png": _parse_image,
    ".gif": _parse_image,
}

#: File extensions ``parse_palette`` understands.
PALETTE_EXTENSIONS = tuple(_PARSERS)


def parse_palette(name: str, data: bytes) -> list[RGB]:
    """Parse palette file ``data`` by the extension of ``name``; malformed: ``ManifestError`` (file:line)."""
    suffix = PurePosixPath(name).suffix.lower()
    parser = _PARSERS.get(suffix)
    reader = _Reader(name)
    if parser is None:
        kinds = ", ".join(PALETTE_EXTENSIONS)
        raise reader.fail(None, f"'{suffix or name}' is not a palette file type pixelbuild reads ({kinds})")
    return parser(reader, data)


def builtin_palette(name: str) -> list[RGB]:
    """A built-in palette's colours; ``ValueError`` listing the names if there is none called ``name``."""
    colours = BUILTIN_PALETTES.get(name)
    if colours is None:
        raise ValueError(f"unknown palette preset '{name}' (built in: {', '.join(BUILTIN_PALETTES)})")
    return list(colours)
