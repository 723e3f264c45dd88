"""Bad names fail at validation, never in the middle of a build; messages say what was expected."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest

from pixelbuild import names
from pixelbuild.names import portable_path_problem
from tests.conftest import Result
from tests.refusal import COMMANDS, assert_accepted, assert_refused


def with_output(output: str) -> str:
    return f'version: 1\nsprites:\n  - id: a\n    prompt: x\n    size: 16\n    output: "{output}"\n'


LONG_NAME = "n" * 252 + ".png"  # 256 bytes

#: name -> (manifest, fragments the message must hold)
BAD_NAMES: dict[str, tuple[str, list[str]]] = {
    "NUL in output": (with_output("a\\0b.png"), ["pixelbuild.yaml:6:", "sprite 'a'", "control character U+0000"]),
    "newline in output": (with_output("a\\nb.png"), ["pixelbuild.yaml:6:", '"a\\nb.png"', "U+000A"]),
    "line separator in output": (with_output("a\\u2028b.png"), ["pixelbuild.yaml:6:", "U+2028"]),
    "newline in id from a matrix": (
        'version: 1\nsprites:\n  - id: "hero_{v}"\n    prompt: x\n    matrix: {v: ["a\\nb"]}\n',
        ["pixelbuild.yaml:3:", "field 'id'", '"hero_a\\nb"', "U+000A"],
    ),
    "trailing newline in id": (
        'version: 1\nsprites:\n  - id: "hero\\n"\n    prompt: x\n',
        ["pixelbuild.yaml:3:", "field 'id'"],
    ),
    "300-character id": (
        f"version: 1\nsprites:\n  - id: {'i' * 300}\n    prompt: x\n",
        ["pixelbuild.yaml:3:", "300 characters long, over the limit of 200"],
    ),
    "256-byte output name": (with_output(LONG_NAME), ["pixelbuild.yaml:6:", "256 bytes", "limit of 255 bytes"]),
    "256-byte name in a folder": (with_output(f"{'d' * 256}/a.png"), ["256 bytes", "limit of 255"]),
    "long multibyte name": (with_output("é" * 126 + ".png"), ["256 bytes"]),
    "path over 1024 bytes": (with_output("/".join(["d" * 200] * 6) + ".png"), ["1209 bytes", "limit of 1024"]),
    "CON": (with_output("CON.png"), ["'CON.png'", "Windows reserves"]),
    "aux.png": (with_output("sounds/aux.png"), ["'aux.png'", "Windows reserves"]),
    "lpt1 folder": (with_output("lpt1/x.png"), ["'lpt1'", "Windows reserves"]),
    "com9 with spaces": (with_output("Com9 .tar.png"), ["Windows"]),
    "name ending in a dot": (with_output("folder./x.png"), ["'folder.'", "ends in '.'"]),
    "name ending in a space": (with_output("folder /x.png"), ["'folder '", "ends in ' '"]),
    "colon": (with_output("a:b.png"), ["character ':'", "Windows"]),
    "question mark": (with_output("a?.png"), ["character '?'"]),
    "star": (with_output("a*.png"), ["character '*'"]),
    "pipe": (with_output("a|b.png"), ["character '|'"]),
    "angle brackets": (with_output("a<b>.png"), ["character '<'"]),
    "double quote": ("version: 1\nsprites:\n  - id: a\n    prompt: x\n    output: 'a\"b.png'\n", ["character '\"'"]),
    "temp-file name": (with_output(".pixelbuild-tmp.x.png"), ["temporary files"]),
    "output inside another output": (
        "version: 1\nsprites:\n  - id: x\n    prompt: x\n    output: x.png\n"
        "  - id: y\n    prompt: y\n    output: x.png/y.png\n",
        ["pixelbuild.yaml:8:", "sprite 'y'", "needs a folder 'x.png'", "sprite 'x'"],
    ),
    "output that is another's folder": (
        "version: 1\nsprites:\n  - id: y\n    prompt: y\n    output: x.png/y.png\n  - id: x\n    prompt: x\n",
        ["pixelbuild.yaml:6:", "sprite 'x'", "output 'x.png' would be a file where sprite 'y'"],
    ),
    "output folder differing in case": (
        "version: 1\nsprites:\n  - id: hero\n    prompt: x\n"
        "  - id: idle\n    prompt: y\n    output: HERO.PNG/idle.png\n",
        ["pixelbuild.yaml:7:", "needs a folder 'hero.png'", "sprite 'hero'"],
    ),
    "duplicate output": (
        "version: 1\nsprites:\n  - id: a\n    prompt: x\n  - id: b\n    prompt: y\n    output: A.png\n",
        ["pixelbuild.yaml:7:", "duplicate output 'A.png'", "sprite 'a'"],
    ),
    "atlas beside a sprite's folder": (
        "version: 1\nsprites:\n  - id: atlases/hero.png/x\n    prompt: x\natlases:\n  - id: hero\n    sprites: ['*']\n",
        ["pixelbuild.yaml:6:", "atlas 'hero'", "output 'atlases/hero.png' would be a file where sprite"],
    ),
    "atlas data file in a sprite's place": (
        "version: 1\nsprites:\n  - id: a\n    prompt: x\n    output: sheet.json/a.png\n"
        "atlases:\n  - id: all\n    sprites: ['*']\n    output: sheet.png\n",
        ["pixelbuild.yaml:9:", "atlas 'all'", "'sheet.json'"],
    ),
    "atlas output with a control character": (
        "version: 1\nsprites:\n  - id: a\n    prompt: x\n"
        'atlases:\n  - id: all\n    sprites: [a]\n    output: "a\\tb.png"\n',
        ["pixelbuild.yaml:8:", "atlas 'all'", "U+0009"],
    ),
    "atlas output reserved by Windows": (
        "version: 1\nsprites:\n  - id: a\n    prompt: x\n"
        "atlases:\n  - id: all\n    sprites: [a]\n    output: nul.png\n",
        ["pixelbuild.yaml:8:", "atlas 'all'", "Windows reserves"],
    ),
    "output root .pixelbuild": (
        "version: 1\nproject:\n  output: .pixelbuild\nsprites: []\n",
        ["pixelbuild.yaml:3:", "field 'project.output'", "inside .pixelbuild"],
    ),
    "output root inside .pixelbuild": (
        "version: 1\nproject:\n  output: ./.PixelBuild/assets\nsprites: []\n",
        ["pixelbuild.yaml:3:", "inside .pixelbuild"],
    ),
    "output root is the project": (
        "version: 1\nproject:\n  output: .\nsprites: []\n",
        ["pixelbuild.yaml:3:", "cannot be the project folder itself"],
    ),
    "output root via ..": (
        "version: 1\nproject:\n  output: assets/..\nsprites: []\n",
        ["pixelbuild.yaml:3:", "cannot be the project folder itself"],
    ),
    "output root reserved by Windows": (
        "version: 1\nproject:\n  output: art/aux\nsprites: []\n",
        ["pixelbuild.yaml:3:", "Windows reserves"],
    ),
    "cfg .nan": (
        "version: 1\nsprites:\n  - id: a\n    prompt: x\n    cfg: .nan\n",
        ["pixelbuild.yaml:5:10", "'.nan' is not a finite number"],
    ),
    "timeout .inf": (
        "version: 1\nproject:\n  backend: comfyui\n  comfyui:\n    timeout: .inf\nsprites: []\n",
        ["pixelbuild.yaml:5:14", "'.inf' is not a finite number"],
    ),
    "-.Inf in a matrix": (
        "version: 1\nsprites:\n  - id: a{v}\n    prompt: x\n    matrix: {v: [1, -.Inf]}\n",
        ["pixelbuild.yaml:5:21", "'-.Inf' is not a finite number"],
    ),
    "overflowing float": (
        "version: 1\nsprites:\n  - id: a\n    prompt: x\n    denoise: 1.0e+999\n",
        ["pixelbuild.yaml:5:14", "not a finite number"],
    ),
    "integer of 5000 digits": (
        "version: 1\nsprites:\n  - id: a\n    prompt: x\n    seed: " + "9" * 5000 + "\n",
        ["pixelbuild.yaml:5:11", "5,000 digits"],
    ),
    "version as text": (
        'version: "1"\nsprites: []\n',
        ["pixelbuild.yaml:1:10", "field 'version'", 'expected the number 1, got the text "1"'],
    ),
    "palette preset and colors": (
        "version: 1\nsprites:\n  - id: a\n    prompt: x\n    post:\n      - palette: {preset: pico-8, colors: 4}\n",
        ["pixelbuild.yaml:6:", "sprite 'a'", "'preset' and 'colors' are mutually exclusive"],
    ),
    "palette without colours": (
        "version: 1\nsprites:\n  - id: a\n    prompt: x\n    post:\n      - palette: {dither: ordered}\n",
        ["pixelbuild.yaml:6:", "give one of colors, preset, file"],
    ),
    "a key forbidden with the others": (
        "version: 1\nsprites:\n  - id: a\n    prompt: x\n"
        "    post:\n      - pixelate: {mode: box, size: 4, max_cell: 8}\n",
        [
            "pixelbuild.yaml:6:",
            "field 'post[0].pixelate.max_cell'",
            "'max_cell' is not allowed together with the other settings of pixelate: it applies only when 'mode' is "
            "'auto'",
        ],
    ),
    "a key required under a condition": (
        "version: 1\nsprites:\n  - id: a\n    prompt: x\n    post:\n      - pixelate: {mode: box}\n",
        ["pixelbuild.yaml:6:", "missing required key 'size' (required when 'mode' is 'nearest', 'box' or 'mode')"],
    ),
    "two keys of which at most one": (
        "version: 1\nsprites:\n  - id: a\n    prompt: x\n    post:\n      - pixelate: {size: 8, max_size: 9}\n",
        ["pixelbuild.yaml:6:", "field 'post[0].pixelate'", "'size' and 'max_size' are mutually exclusive"],
    ),
    "a bare op that needs params": (
        "version: 1\nsprites:\n  - id: a\n    prompt: x\n    post:\n      - rotate\n",
        ["pixelbuild.yaml:6:", "field 'post[0]'", "op 'rotate' needs parameters (angle)"],
    ),
    "a colour that is not one": (
        "version: 1\nsprites:\n  - id: a\n    prompt: x\n    post:\n      - outline: {color: '#ff00'}\n",
        ["pixelbuild.yaml:6:", "field 'post[0].outline.color'", "a colour is '#rrggbb' or '#rrggbbaa'"],
    ),
    "a semantic check after the schema": (
        "version: 1\nsprites:\n  - id: a\n    prompt: x\n    post:\n      - pixelate: {min_cell: 8, max_cell: 4}\n",
        ["pixelbuild.yaml:6:", "field 'post[0]'", "min_cell (8) must be smaller than max_cell (4)"],
    ),
}


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize("case", sorted(BAD_NAMES))
def test_bad_names_and_values_fail_at_validation(
    case: str, command: str, cli: Callable[..., Result], make_project: Callable[..., Path]
) -> None:
    manifest, fragments = BAD_NAMES[case]
    assert_refused(cli, make_project(manifest), command, fragments)


@pytest.mark.parametrize(
    ("raw", "position"),
    [
        (b"version: 1\nsprites:\n  - id: a\n    prompt: caf\xe9 au lait\n", "pixelbuild.yaml:4:16"),
        (b"version: 1\nsprites:\n  - id: \xc3\xa9t\xc3\xa9\n    prompt: \xff\n", "pixelbuild.yaml:4:13"),
        (b"\xef\xbb\xbfversion: 1\nsprites: [\x80]\n", "pixelbuild.yaml:2:11"),
    ],
)
@pytest.mark.parametrize("command", COMMANDS)
def test_non_utf8_bytes_are_located(
    raw: bytes, position: str, command: str, cli: Callable[..., Result], make_project: Callable[..., Path]
) -> None:
    project = make_project("")
    (project / "pixelbuild.yaml").write_bytes(raw)
    assert_refused(cli, project, command, [position, "not UTF-8", "0x"])


def test_control_characters_in_yaml_are_located(cli: Callable[..., Result], make_project: Callable[..., Path]) -> None:
    project = make_project("")
    (project / "pixelbuild.yaml").write_bytes(b"version: 1\nsprites:\n  - id: a\n    prompt: bell\x07 x\n")
    assert_refused(cli, project, "validate", ["pixelbuild.yaml:4:17", "U+0007"])


def test_names_at_the_limits_build(cli: Callable[..., Result], make_project: Callable[..., Path]) -> None:
    name = "n" * 251 + ".png"  # 255 bytes: the file system's limit, with the temporary file named apart
    deep = "/".join(["d" * 200] * 4) + "/" + "e" * 210 + ".png"  # 1,018 bytes
    project = make_project(
        f"version: 1\nsprites:\n  - id: {'i' * 200}\n    prompt: x\n    size: 16\n    output: {name}\n"
        f"  - id: b\n    prompt: y\n    size: 16\n    output: {deep}\n"
        "  - id: c\n    prompt: z\n    size: 16\n    output: con_tent/console.png\n"
    )
    assert_accepted(cli, project, "build")
    assert (project / "assets" / name).is_file()
    assert (project / "assets" / deep).is_file()
    assert cli("check", "-C", project).code == 0


def test_unicode_names_are_counted_in_bytes() -> None:
    assert portable_path_problem("é" * 127 + ".png") is not None  # 258 bytes, 131 characters
    assert portable_path_problem("é" * 125 + ".png") is None


@pytest.mark.parametrize(
    "path",
    [
        "a/b.png",
        "con.png",
        "sub/COM1.x.png",
        "lpt9/a.png",
        "com10.png",
        "conx/a.png",
        "con-a.png",
        "a./b.png",
        ".pixelbuild-tmp.x/a.png",
        ".hidden/a.png",
        "a//b.png",
        "a*b.png",
        "\u0131.png",  # dotless i: IGNORECASE alone would let [a-z] take it
        "\u212a.png",  # Kelvin sign
        "x" * 255,
        "x" * 256,
        "/".join(["d" * 200] * 6),
    ],
)
def test_the_fast_path_answers_as_the_full_check(path: str, monkeypatch: pytest.MonkeyPatch) -> None:
    fast = portable_path_problem(path)
    monkeypatch.setattr(names, "_PLAIN_PATH", re.compile(r"(?!)"))
    assert fast == portable_path_problem(path)
