"""One rule for file paths in manifest files, and the seeds of animation frames."""

from __future__ import annotations

import io
import logging
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from PIL import Image

from pixelbuild.local.layout import ProjectPaths
from pixelbuild.manifest import load_manifest
from pixelbuild.project import open_session
from pixelbuild.resolver import resolve
from tests.conftest import REPO, Result
from tests.refusal import COMMANDS, assert_accepted, assert_refused


def png_bytes(colour: tuple[int, int, int]) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (16, 16), colour).save(buffer, "PNG")
    return buffer.getvalue()


def resolved(project: Path) -> dict[str, object]:
    return {s.id: s for s in resolve(load_manifest(project / "pixelbuild.yaml")).sprites}


# ------------------------------------------------------------------------------------------------ paths


def test_a_palette_file_above_an_included_file_builds(
    cli: Callable[..., Result], make_project: Callable[..., Path]
) -> None:
    project = make_project(
        "version: 1\ninclude: [sprites/*.yaml]\n",
        files={
            "sprites/a.yaml": """\
                sprites:
                  - id: a
                    prompt: knight
                    size: 16
                    post:
                      - palette: {file: ../palettes/bw.hex}
                """,
            "palettes/bw.hex": "000000\nffffff\n",
        },
    )
    assert_accepted(cli, project, "validate")
    assert_accepted(cli, project, "build")
    colours = Image.open(project / "assets" / "a.png").convert("RGB").getcolors()
    assert colours is not None and {colour for _count, colour in colours} <= {(0, 0, 0), (255, 255, 255)}
    assert cli("check", "-C", project).code == 0


def test_paths_are_relative_to_the_file_that_names_them(make_project: Callable[..., Path]) -> None:
    project = make_project(
        """\
        version: 1
        include: [sprites/heroes.yaml]
        defaults:
          init_image: art/base.png
        sprites:
          - id: root_sprite
            prompt: x
        """,
        files={
            "sprites/heroes.yaml": """\
                sprites:
                  - id: inherits
                    prompt: from the root's defaults
                  - id: own
                    prompt: its own
                    init_image: art/own.png
                  - id: climbs
                    prompt: up
                    init_image: ../art/base.png
                    workflow: ../flows/custom.json
                """,
            "art/base.png": png_bytes((1, 2, 3)),
            "sprites/art/own.png": png_bytes((4, 5, 6)),
            "flows/custom.json": (REPO / "workflows" / "txt2img_sdxl.json").read_text(),
        },
    )
    specs = resolved(project)

    def init(sprite_id: str) -> object:
        return specs[sprite_id].generations[0].init_image  # type: ignore[attr-defined]

    assert init("root_sprite") == "art/base.png"
    assert init("inherits") == "art/base.png"  # defaults are relative to the file holding them
    assert init("own") == "sprites/art/own.png"
    assert init("climbs") == "art/base.png"
    assert specs["climbs"].generations[0].workflow_file == "flows/custom.json"  # type: ignore[attr-defined]


PATH_ERRORS: dict[str, tuple[str, list[str]]] = {
    "relative to the including file, not the project": (
        "init_image: art/i.png",
        ["sprites/a.yaml:4:", "sprite 'a'", "file 'art/i.png' does not exist", "looked for 'sprites/art/i.png'"],
    ),
    "out of the project": (
        "init_image: ../../outside.png",
        ["sprites/a.yaml:4:", "'../../outside.png' is outside the project folder", "relative to the file"],
    ),
    "absolute": (
        "init_image: /etc/passwd",
        ["sprites/a.yaml:4:", "must be a relative path"],
    ),
    "backslashes": (
        "init_image: ..\\\\art\\\\i.png",
        ["sprites/a.yaml:4:", "must be a relative path with '/'"],
    ),
    "NUL": (
        'init_image: "art/\\0.png"',
        ["sprites/a.yaml:4:", "U+0000"],
    ),
    "palette file out of the project": (
        "post: [{palette: {file: ../../bw.hex}}]",
        ["sprites/a.yaml:4:", "field 'post[0].palette.file'", "outside the project folder"],
    ),
    "workflow path out of the project": (
        "workflow: ../../flow.json",
        ["sprites/a.yaml:4:", "field 'workflow'", "outside the project folder"],
    ),
    "a name too long for the file system": (
        "init_image: " + "x" * 300 + ".png",
        ["sprites/a.yaml:4:", "does not exist"],
    ),
}


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize("case", sorted(PATH_ERRORS))
def test_bad_file_paths_are_located(
    case: str, command: str, cli: Callable[..., Result], make_project: Callable[..., Path]
) -> None:
    line, fragments = PATH_ERRORS[case]
    project = make_project(
        "version: 1\ninclude: [sprites/a.yaml]\n",
        files={
            "sprites/a.yaml": f"sprites:\n  - id: a\n    prompt: x\n    {line}\n",
            "art/i.png": png_bytes((0, 0, 0)),
            "../outside.png": png_bytes((0, 0, 0)),
            "../bw.hex": "000000\n",
            "../flow.json": "{}",
        },
    )
    assert_refused(cli, project, command, fragments)


def test_include_paths_follow_the_same_rule(cli: Callable[..., Result], make_project: Callable[..., Path]) -> None:
    project = make_project(
        "version: 1\ninclude: [sprites/a.yaml]\n",
        files={
            "sprites/a.yaml": "include: [../shared/b.yaml]\nsprites:\n  - id: a\n    prompt: x\n",
            "shared/b.yaml": "sprites:\n  - id: b\n    prompt: y\n",
        },
    )
    assert "2 sprites in 3 files" in assert_accepted(cli, project).out
    long_name = "x" * 300 + ".yaml"
    project = make_project(f"version: 1\ninclude: [{long_name}]\n")
    assert_refused(cli, project, "validate", ["pixelbuild.yaml:2:", f"included file '{long_name}' does not exist"])


def test_a_symlink_out_of_the_project_is_refused(cli: Callable[..., Result], make_project: Callable[..., Path]) -> None:
    project = make_project(
        "version: 1\nsprites:\n  - id: a\n    prompt: x\n    init_image: art/link.png\n",
        files={"../secret.png": png_bytes((9, 9, 9))},
    )
    (project / "art").mkdir()
    (project / "art" / "link.png").symlink_to(project.parent / "secret.png")
    assert_refused(cli, project, "validate", ["pixelbuild.yaml:5:", "outside the project folder"])


def test_a_moved_file_with_the_same_bytes_resolves_again(make_project: Callable[..., Path]) -> None:
    # The spec cache must not hand out a resolution made for the file's old place.
    body = "sprites:\n  - id: a\n    prompt: x\n    size: 16\n    init_image: art/i.png\n"
    project = make_project(
        "version: 1\ninclude: ['*/a.yaml']\n",
        files={"one/a.yaml": body, "one/art/i.png": png_bytes((1, 1, 1)), "two/art/i.png": png_bytes((2, 2, 2))},
    )
    paths = ProjectPaths.for_manifest(project / "pixelbuild.yaml")
    assert open_session(paths).resolved.by_id["a"].generations[0].init_image == "one/art/i.png"
    (project / "one" / "a.yaml").rename(project / "two" / "a.yaml")
    assert open_session(paths).resolved.by_id["a"].generations[0].init_image == "two/art/i.png"


# ------------------------------------------------------------------------------------------------ seeds


def test_a_frame_without_a_seed_gets_the_sprite_seed_plus_its_index(make_project: Callable[..., Path]) -> None:
    project = make_project(
        "version: 1\nsprites:\n  - id: a\n    prompt: x\n    seed: 100\n    frames: [{}, {}, {seed: 7}, {}]\n"
    )
    seeds = [g.seed for g in resolved(project)["a"].generations]  # type: ignore[attr-defined]
    assert seeds == [100, 101, 7, 103]


COLLIDING = (
    "version: 1\nsprites:\n  - id: a\n    prompt: x\n    seed: 100\n"
    "    frames:\n      - {}\n      - {}\n      - {seed: 101}\n"
)


@pytest.mark.parametrize("command", COMMANDS)
def test_frames_that_end_with_one_seed_are_warned_about(
    command: str, cli: Callable[..., Result], make_project: Callable[..., Path], caplog: pytest.LogCaptureFixture
) -> None:
    project = make_project(COLLIDING)
    with caplog.at_level(logging.WARNING, logger="pixelbuild"):
        result = cli(command, "-C", project)
    assert result.code == 0, result.err
    warnings = [record.getMessage() for record in caplog.records if record.levelno == logging.WARNING]
    assert len(warnings) == 1, warnings
    (warning,) = warnings
    assert warning.startswith("pixelbuild: warning: ")
    assert "pixelbuild.yaml:9:" in warning and "sprite 'a'" in warning
    assert "frames[1] and frames[2] both run with seed 101" in warning
    assert "sprite's seed + 1" in warning and "\n" not in warning


def test_the_seed_warning_is_one_line_on_stderr(make_project: Callable[..., Path]) -> None:
    project = make_project(COLLIDING)
    result = subprocess.run(
        [sys.executable, "-m", "pixelbuild", "validate", "-C", str(project)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("pixelbuild: warning: ") and "seed 101" in lines[0]
    assert result.stdout.startswith("ok: 1 sprites")


@pytest.mark.parametrize(
    "frames",
    [
        "[{seed: 5}, {seed: 5}]",  # the same seed on purpose (say, with different prompts)
        "[{}, {}, {seed: 200}]",
        "4",  # one batch: the generator varies the images
    ],
)
def test_frames_with_distinct_or_deliberate_seeds_are_not_warned_about(
    frames: str, cli: Callable[..., Result], make_project: Callable[..., Path], caplog: pytest.LogCaptureFixture
) -> None:
    project = make_project(f"version: 1\nsprites:\n  - id: a\n    prompt: x\n    seed: 100\n    frames: {frames}\n")
    with caplog.at_level(logging.WARNING, logger="pixelbuild"):
        assert cli("validate", "-C", project).code == 0
    assert not [record for record in caplog.records if record.levelno >= logging.WARNING]
