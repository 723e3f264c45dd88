"""Matrix variants and animation frames: expansion, and minimal work on edits."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from PIL import Image

from tests.conftest import Result, build_json

MATRIX = """\
version: 1
defaults: {size: 32, post: [{resize: {size: 8}}]}
sprites:
  - id: hero_{direction}_{time}
    prompt: knight facing {direction}, {time} light
    output: hero/{time}/{direction}.png
    matrix:
      direction: [north, east, south, west]
      time: [day, night]
"""

FRAMES = """\
version: 1
defaults: {size: 32, post: [{resize: {size: 8}}]}
sprites:
  - id: slime_idle
    prompt: green slime
    seed: 100
    frames:
      - {}
      - {prompt: green slime squashed}
      - {seed: 7}
  - id: bat_fly
    prompt: purple bat
    frames: 4
    layout: {type: grid, columns: 2, padding: 1}
"""


def test_matrix_expands_ids_outputs_and_text(cli: Callable[..., Result], make_project: Callable[..., Path]) -> None:
    project = make_project(MATRIX)
    report = build_json(cli, project)
    assert report["generator_calls"] == 8
    assert (project / "assets/hero/night/west.png").is_file()
    plan = cli("plan", "-C", project, "--all", "--json").json
    assert sorted(s["id"] for s in plan["sprites"])[:2] == ["hero_east_day", "hero_east_night"]


def test_matrix_edit_regenerates_only_the_variants_it_touches(
    cli: Callable[..., Result], make_project: Callable[..., Path]
) -> None:
    project = make_project(MATRIX)
    build_json(cli, project)
    manifest = project / "pixelbuild.yaml"
    manifest.write_text(manifest.read_text().replace("[day, night]", "[day, night, dusk]"))
    report = build_json(cli, project)
    assert (report["generator_calls"], report["up_to_date"]) == (4, 8)
    manifest.write_text(manifest.read_text().replace("[north, east, south, west]", "[north, east, south]"))
    report = build_json(cli, project)
    assert (report["generator_calls"], report["removed"], report["up_to_date"]) == (0, 3, 9)
    assert not (project / "assets/hero/dusk/west.png").exists()


def test_matrix_variable_missing_from_the_id_is_an_error(
    cli: Callable[..., Result], make_project: Callable[..., Path]
) -> None:
    project = make_project(MATRIX.replace("hero_{direction}_{time}", "hero_{direction}"))
    result = cli("validate", "-C", project)
    assert result.code == 2
    assert "pixelbuild.yaml:9:" in result.err and "matrix variable 'time' does not appear in the id" in result.err


def test_frames_make_a_strip_and_a_grid(cli: Callable[..., Result], make_project: Callable[..., Path]) -> None:
    project = make_project(FRAMES)
    report = build_json(cli, project)
    assert report["generator_calls"] == 4  # three frames + one batch of four
    with Image.open(project / "assets/slime_idle.png") as strip:
        assert strip.size == (24, 8)
    with Image.open(project / "assets/bat_fly.png") as grid:
        assert grid.size == (17, 17)


def test_editing_one_frame_regenerates_that_frame_only(
    cli: Callable[..., Result], make_project: Callable[..., Path]
) -> None:
    project = make_project(FRAMES)
    build_json(cli, project)
    manifest = project / "pixelbuild.yaml"
    manifest.write_text(manifest.read_text().replace("green slime squashed", "green slime stretched"))
    plan = cli("plan", "-C", project, "--json").json
    slime = next(s for s in plan["sprites"] if s["id"] == "slime_idle")
    assert slime["reasons"] == ["frames[1].prompt changed"] and len(slime["generate"]) == 1
    report = build_json(cli, project)
    assert (report["generator_calls"], report["generated"], report["up_to_date"]) == (1, 1, 1)
