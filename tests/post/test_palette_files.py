"""Palette files: every supported format parses; malformed ones give ManifestError at file:line."""

from __future__ import annotations

import io
import struct

import pytest
from PIL import Image

from pixelbuild.errors import ManifestError
from pixelbuild.post.palette_files import builtin_palette, parse_palette

THREE = [(255, 0, 0), (0, 128, 255), (17, 34, 51)]


def test_lospec_hex() -> None:
    data = "\ufeffff0000\n\n#0080FF\r\n112233\n".encode()
    assert parse_palette("palettes/game.hex", data) == THREE


def test_gimp_gpl_with_header_comments_and_names() -> None:
    data = b"""GIMP Palette
Name: Game
Columns: 4
# a comment
255   0   0	Red
  0 128 255	Sky blue (light)
 17  34  51
"""
    assert parse_palette("game.gpl", data) == THREE


def test_gimp_gpl_with_a_latin1_name_line() -> None:
    """GIMP on an 8-bit locale writes the name in Latin-1 (here 'Palette d\xe9j\xe0 vue', and a colour
    name 'Rouge fonc\xe9'): not UTF-8, yet a valid palette."""
    data = b"GIMP Palette\nName: Palette d\xe9j\xe0 vue\n#\n255 0 0\tRouge fonc\xe9\n0 128 255\n17 34 51\n"
    with pytest.raises(UnicodeDecodeError):
        data.decode("utf-8")
    assert parse_palette("game.gpl", data) == THREE


def test_aseprite_gpl_with_alpha_channel() -> None:
    data = b"GIMP Palette\nChannels: RGBA\n255 0 0 255 Red\n0 128 255 128\n17 34 51 0 Dark\n"
    assert parse_palette("game.GPL", data) == THREE


def test_jasc_pal() -> None:
    data = b"JASC-PAL\r\n0100\r\n3\r\n255 0 0\r\n0 128 255\r\n17 34 51\r\n"
    assert parse_palette("game.pal", data) == THREE


def test_riff_pal() -> None:
    entries = b"".join(bytes((r, g, b, 0)) for r, g, b in THREE)
    chunk = struct.pack("<HH", 0x300, len(THREE)) + entries
    data = b"RIFF" + struct.pack("<I", 12 + len(chunk)) + b"PAL data" + struct.pack("<I", len(chunk)) + chunk
    assert parse_palette("game.pal", data) == THREE


def test_paint_net_txt() -> None:
    data = b"; paint.net palette\nFFFF0000\nff0080ff\n80112233\n"
    assert parse_palette("game.txt", data) == THREE


@pytest.mark.parametrize("kind", ["png", "gif"])
def test_image_swatch_in_reading_order_at_any_zoom(kind: str) -> None:
    strip = Image.new("RGBA", (len(THREE), 1))
    for x, colour in enumerate(THREE):
        strip.putpixel((x, 0), (*colour, 255))
    zoomed = strip.resize((len(THREE) * 8, 8), Image.Resampling.NEAREST)
    buffer = io.BytesIO()
    (zoomed if kind == "png" else zoomed.convert("RGB")).save(buffer, format=kind.upper())
    assert parse_palette(f"swatch.{kind}", buffer.getvalue()) == THREE


def test_image_swatch_ignores_transparent_pixels() -> None:
    swatch = Image.new("RGBA", (3, 1), (9, 9, 9, 0))
    swatch.putpixel((1, 0), (1, 2, 3, 255))
    buffer = io.BytesIO()
    swatch.save(buffer, format="PNG")
    assert parse_palette("s.png", buffer.getvalue()) == [(1, 2, 3)]


def error_for(name: str, data: bytes) -> ManifestError:
    with pytest.raises(ManifestError) as caught:
        parse_palette(name, data)
    return caught.value


@pytest.mark.parametrize(
    ("name", "data", "line", "message"),
    [
        ("p.hex", b"ff0000\n00ff00\nnot-a-colour\n", 3, "expected a colour as 6 hexadecimal digits"),
        ("p.hex", b"ff0000\nff00\n", 2, "got 'ff00'"),
        ("p.gpl", b"Palette\n255 0 0\n", 1, "must start with the line 'GIMP Palette'"),
        (
            "p.gpl",
            b"GIMP Palette\nName: x\n255 0 0\n300 0 0 Too red\n",
            4,
            "the red value must be a whole number from 0 to 255",
        ),
        ("p.gpl", b"GIMP Palette\n255 0\n", 2, "expected 3 numbers"),
        ("p.gpl", b"GIMP Palette\nChannels: CMYK\n", 2, "'Channels' must be RGB or RGBA"),
        ("p.pal", b"JASC-PAL\n0200\n1\n0 0 0\n", 2, "version '0100'"),
        ("p.pal", b"JASC-PAL\n0100\nthree\n", 3, "colour count"),
        ("p.pal", b"JASC-PAL\n0100\n2\n0 0 0\n", 3, "declares 2 colours but lists 1"),
        ("p.pal", b"JASC-PAL\n0100\n1\n0 0 x\n", 4, "the blue value"),
        ("p.txt", b"FFFF0000\nFF00\n", 2, "8 hexadecimal digits"),
        ("p.hex", b"ff0000\n\xff\xfe\n", 2, "not UTF-8 text"),
    ],
)
def test_malformed_files_name_file_and_line(name: str, data: bytes, line: int, message: str) -> None:
    error = error_for(f"palettes/{name}", data)
    assert error.file == f"palettes/{name}"
    assert error.line == line
    assert message in error.message
    assert str(error).startswith(f"palettes/{name}:{line}: ")


@pytest.mark.parametrize(
    ("name", "data", "message"),
    [
        ("p.hex", b"\n; only a comment\n", "holds no colours"),
        ("p.png", b"not a png", "cannot be read as an image"),
        ("p.pal", b"RIFF\x00\x00\x00\x00WAVEdata", "no 'PAL ' data chunk"),
        ("p.aco", b"", "is not a palette file type"),
        ("p.hex", b"".join(b"%06x\n" % i for i in range(257)), "at most 256 colours"),
    ],
)
def test_other_malformed_files(name: str, data: bytes, message: str) -> None:
    error = error_for(name, data)
    assert error.file == name
    assert message in error.message


def test_builtin_palette_lookup() -> None:
    assert len(builtin_palette("db32")) == 32
    with pytest.raises(ValueError, match="unknown palette preset 'db33'"):
        builtin_palette("db33")
