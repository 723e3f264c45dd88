"""Resource limits: every value the schema allows builds in bounded memory, or is refused at validation."""

from __future__ import annotations

import random
import tracemalloc
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from pixelbuild import limits
from pixelbuild.errors import ManifestError
from pixelbuild.limits import MAX_PIXELS, MAX_SIDE
from pixelbuild.manifest import parse_yaml
from pixelbuild.post import PostContext, load_ops, normalise_post_entry
from tests.conftest import Result
from tests.refusal import COMMANDS, assert_accepted, assert_refused


def sprite(extra: str, size: int = 64) -> str:
    return f"version: 1\nsprites:\n  - id: a\n    prompt: x\n    size: {size}\n{extra}"


#: name -> (manifest, fragments the message must hold)
TOO_LARGE: dict[str, tuple[str, list[str]]] = {
    "pad to the schema's maximum": (
        sprite("    post:\n      - pad: {amount: 16384}\n"),
        ["pixelbuild.yaml:7:", "sprite 'a'", "field 'post[0].pad'", "after 'pad'", "16,384 pixels per side"],
    ),
    "scale 64 of 8192": (
        sprite("    post:\n      - trim\n      - scale: {factor: 64}\n", size=8192),
        ["pixelbuild.yaml:8:", "sprite 'a'", "field 'post[1].scale'", "524288x524288", "16,384 pixels per side"],
    ),
    "64 frames of 8192": (
        sprite("    frames: 64\n", size=8192),
        ["pixelbuild.yaml:6:", "sprite 'a'", "field 'frames'", "64 frames of 8192x8192", f"{MAX_PIXELS:,} pixels"],
    ),
    "4 frames of 8192": (
        sprite("    frames: 4\n", size=8192),
        ["pixelbuild.yaml:6:", "field 'frames'", "4 frames of 8192x8192 = 268,435,456 pixels"],
    ),
    "a frame list too large in all": (
        sprite("    frames: [{}, {seed: 9}]\n", size=8192),
        ["pixelbuild.yaml:6:", "field 'frames'", "2 frames of 8192x8192"],
    ),
    "pixels after an op": (
        sprite("    post:\n      - pad: {left: 0, right: 8000, top: 0, bottom: 8000}\n", size=512),
        ["pixelbuild.yaml:7:", "field 'post[0].pad'", "8512x8512", f"{MAX_PIXELS:,} pixels"],
    ),
    "a sheet too wide": (
        sprite("    frames: 40\n    layout: strip\n", size=512),
        ["pixelbuild.yaml:7:", "field 'layout'", "as a frame sheet", "20480x512", "16,384 pixels per side"],
    ),
    "a sheet too wide by default": (
        sprite("    frames: 64\n", size=264),
        ["pixelbuild.yaml:6:", "sprite 'a'", "field 'frames'", "as a frame sheet", "16896x264", "per side"],
    ),
    "an op from defaults": (
        "version: 1\ndefaults:\n  post: [{scale: {factor: 3}}]\nsprites:\n  - id: a\n    prompt: x\n    size: 8192\n",
        ["pixelbuild.yaml:3:", "sprite 'a'", "'defaults'", "after 'scale'", "24576x24576"],
    ),
    "outline grows the canvas": (
        sprite("    post:\n      - canvas: {size: 8192}\n      - outline\n", size=64),
        ["pixelbuild.yaml:8:", "field 'post[1].outline'", "8194x8194"],
    ),
}


# A hang guard, not a speed figure: a refusal that allocated the image would take minutes or be killed.
@pytest.mark.timeout(60)
@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize("case", sorted(TOO_LARGE))
def test_images_over_the_limits_are_refused_before_anything_runs(
    case: str, command: str, cli: Callable[..., Result], make_project: Callable[..., Path]
) -> None:
    manifest, fragments = TOO_LARGE[case]
    assert_refused(cli, make_project(manifest), command, fragments)


@pytest.mark.parametrize(
    "manifest",
    [
        sprite("    post:\n      - scale: {factor: 2}\n", size=4096),  # exactly 8192x8192
        sprite("    frames: 4\n", size=4096),  # 4 x 4096^2 = the limit
        sprite("    frames: 64\n", size=256),  # a 16384 px strip
        sprite("    frames: 64\n    layout: grid\n", size=1024),
        sprite("    post:\n      - pad: {left: 16320}\n      - trim\n", size=64),  # 16384 wide, then smaller
    ],
)
def test_images_at_the_limits_validate(
    manifest: str, cli: Callable[..., Result], make_project: Callable[..., Path]
) -> None:
    assert_accepted(cli, make_project(manifest))


def test_the_sheet_limit_counts_padding(cli: Callable[..., Result], make_project: Callable[..., Path]) -> None:
    project = make_project(sprite("    frames: 64\n    layout: {type: strip, padding: 1}\n", size=256))
    assert_refused(cli, project, "validate", ["16447x256"])


# ------------------------------------------------------------------ every op's size rule is an upper bound

#: Parameters to try for each op; a new op must be added here (and get a size rule if it changes sizes).
OP_SAMPLES: Mapping[str, list[Any]] = {
    "resize": [{"size": 7}, {"size": [40, 9]}],
    "pixelate": [{}, {"mode": "box", "size": 5}, {"mode": "auto", "size": 40}, {"mode": "nearest", "size": [3, 50]}],
    "palette": [{"colors": 4}],
    "remove_background": [{}],
    "trim": [{}, {"margin": 3}, {"margin": 2, "common": False}],
    "pad": [{"amount": 2}, {"left": 1, "bottom": 5}],
    "canvas": [{"size": 40}, {"size": [5, 60]}],
    "outline": [{}, {"mode": "inner"}, {"expand": False}],
    "scale": [{"factor": 3}],
    "flip": [{}],
    "rotate": [{"angle": 90}, {"angle": 180}],
}


def test_every_op_has_samples() -> None:
    assert set(load_ops()) == set(OP_SAMPLES)


@pytest.mark.parametrize("op", sorted(OP_SAMPLES))
def test_size_rules_bound_what_the_ops_make(op: str) -> None:
    rng = random.Random(op)
    definition = load_ops()[op]
    for params in OP_SAMPLES[op]:
        step = normalise_post_entry({op: params})
        for width, height in ((24, 16), (31, 45)):
            frames = []
            for _ in range(2):
                image = Image.new("RGBA", (width, height), (0, 0, 0, 0))
                for _ in range(60):  # a blob of opaque pixels, not touching the border
                    x, y = rng.randrange(3, width - 3), rng.randrange(3, height - 3)
                    image.putpixel((x, y), (rng.randrange(256), 40, 200, 255))
                frames.append(image)
            out = definition.function(frames, step.params, PostContext(read_file=lambda ref: b""))
            bound = (
                (width, height)
                if definition.output_size is None
                else definition.output_size(step.params, (width, height))
            )
            for frame in out:
                assert frame.width <= bound[0] and frame.height <= bound[1], (op, params, frame.size, bound)


def test_limits_are_what_the_readme_says() -> None:
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    section = readme.split("## Limits", 1)[1].split("\n## ", 1)[0]
    for figure in (MAX_SIDE, MAX_PIXELS, limits.MAX_SPRITES, limits.MAX_YAML_NODES):
        assert f"{figure:,}" in section, figure
    assert f"{limits.MAX_MANIFEST_BYTES // (1024 * 1024)} MiB" in section


# ------------------------------------------------------------------------------------- YAML loading


def alias_bomb(levels: int = 9, width: int = 10) -> str:
    """Nested anchors: each level's list repeats the previous one ``width`` times (width**levels nodes)."""
    value = "&a0 [" + ", ".join(["x"] * width) + "]"
    for level in range(1, levels):
        value = f"&a{level} [{value}, " + ", ".join([f"*a{level - 1}"] * (width - 1)) + "]"
    return value


# A hang guard against walking the aliases, not a speed figure.
@pytest.mark.timeout(60)
@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize(
    "place",
    [
        "defaults:\n  bindings: {b: BOMB}\nsprites: []\n",
        "sprites:\n  - id: a\n    prompt: x\n    post: [{pixelate: BOMB}]\n",
        "sprites:\n  - id: a{v}\n    prompt: x\n    matrix: {v: BOMB}\n",
        "sprites: BOMB\n",
    ],
)
def test_alias_bomb_fails_fast_with_a_located_error(
    place: str, command: str, cli: Callable[..., Result], make_project: Callable[..., Path]
) -> None:
    project = make_project("version: 1\n" + place.replace("BOMB", alias_bomb()))
    line = 1 + next(i for i, text in enumerate(place.splitlines(), start=1) if "BOMB" in text)
    assert_refused(
        cli, project, command, [f"pixelbuild.yaml:{line}:", "expands to more than 2,000,000 YAML nodes", "aliases"]
    )


def test_a_value_that_contains_itself_is_refused(cli: Callable[..., Result], make_project: Callable[..., Path]) -> None:
    project = make_project("version: 1\ndefaults:\n  bindings: &loop {x: *loop}\nsprites: []\n")
    assert_refused(cli, project, "validate", ["pixelbuild.yaml:3:", "contains itself through an alias"])


@pytest.mark.parametrize(
    "text",
    ["&a [*a]", "x: &a [*a]", "x: [&a [*a]]", "x: {y: &a [*a]}", "x: [1,&a [*a]]", "x:\t&a [*a]", "x:\r\n  &a [*a]"],
)
def test_an_anchor_is_found_wherever_a_value_may_start(text: str, tmp_path: Path) -> None:
    # Found at the very first byte too: a value that contains itself is refused, never recursed into.
    with pytest.raises(ManifestError, match="contains itself through an alias"):
        parse_yaml(text.encode(), tmp_path / "pixelbuild.yaml")


def test_aliases_of_ordinary_size_are_fine(cli: Callable[..., Result], make_project: Callable[..., Path]) -> None:
    project = make_project(
        "version: 1\nsprites:\n  - id: a\n    prompt: x\n    post: &chain [trim, {scale: {factor: 2}}]\n"
        "  - id: b\n    prompt: y & z\n    post: *chain\n"
    )
    assert "2 sprites" in assert_accepted(cli, project).out


def test_deep_nesting_is_a_located_error(cli: Callable[..., Result], make_project: Callable[..., Path]) -> None:
    deep = "version: 1\ndefaults:\n  bindings:\n" + "".join("  " * (i + 2) + f"k{i}:\n" for i in range(1500))
    assert_refused(cli, make_project(deep), "validate", ["pixelbuild.yaml:", "nesting depth"])


def test_manifest_file_size_is_bounded(cli: Callable[..., Result], make_project: Callable[..., Path]) -> None:
    # The real limit, not a patched one: 32 MiB of comment is written and refused in well under a second.
    project = make_project("version: 1\nsprites: []\n" + "#" * limits.MAX_MANIFEST_BYTES + "\n")
    limit = f"larger than {limits.MAX_MANIFEST_BYTES // (1024 * 1024)} MiB"
    assert_refused(cli, project, "validate", ["pixelbuild.yaml: ", limit])


# ------------------------------------------------------------------------------------- sprite count


@pytest.mark.parametrize("command", COMMANDS)
def test_a_million_sprite_matrix_is_refused_before_it_expands(
    command: str, cli: Callable[..., Result], make_project: Callable[..., Path]
) -> None:
    values = "[" + ", ".join(str(i) for i in range(10)) + "]"
    matrix = ", ".join(f"{name}: {values}" for name in "abcdef")
    project = make_project(
        f"version: 1\nsprites:\n  - id: s_{{a}}{{b}}{{c}}{{d}}{{e}}{{f}}\n    prompt: x\n    matrix: {{{matrix}}}\n"
    )
    # Refused before it expands: counted by allocation, not by wall-clock time, so a busy machine cannot
    # fail it (a million resolved sprites would take gigabytes; the refusal peaks near 35 MB).
    tracemalloc.start()
    try:
        assert_refused(
            cli,
            project,
            command,
            ["pixelbuild.yaml:5:", "field 'matrix'", "more than 100,000 sprites", "1,000,000", "project.max_sprites"],
        )
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 256 * 1024 * 1024


def test_max_sprites_can_be_lowered_and_raised(cli: Callable[..., Result], make_project: Callable[..., Path]) -> None:
    more = "sprites:\n  - id: s{v}\n    prompt: x\n    matrix: {v: [1, 2, 3]}\n  - id: t\n    prompt: y\n"
    project = make_project("version: 1\nproject:\n  max_sprites: 3\ninclude: [more.yaml]\n", files={"more.yaml": more})
    assert_refused(cli, project, "validate", ["more.yaml:5:", "sprite 't'", "more than 3 sprites"])
    manifest = project / "pixelbuild.yaml"
    manifest.write_text(manifest.read_text().replace("max_sprites: 3", "max_sprites: 4"))
    assert "4 sprites" in assert_accepted(cli, project).out
    # The limit also counts the sprites of a file that comes from the spec cache.
    assert cli("build", "-C", project).code == 0
    manifest.write_text(manifest.read_text().replace("max_sprites: 4", "max_sprites: 2"))
    assert_refused(cli, project, "plan", ["more.yaml:", "more than 2 sprites"])
