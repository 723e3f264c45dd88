"""A file read through inherited defaults (a palette in the root's ``post``) is an input of the sprites
of included files too: editing it rebuilds them, also when their resolution comes from the spec cache."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from tests.conftest import Result, build_json

MANIFEST = """\
version: 1
include: [more/*.yaml]
defaults:
  size: 32
  post:
    - resize: {size: 16, filter: box}
    - palette: {file: colours.hex}
sprites:
  - {id: hero, prompt: blue knight}
"""
PALETTE = "000000\nffffff\nff0000\n00ff00\n0000ff\n"


def test_editing_an_inherited_palette_reposts_the_included_sprites(
    cli: Callable[..., Result], make_project: Callable[..., Path]
) -> None:
    project = make_project(
        MANIFEST, {"more/slime.yaml": "sprites:\n  - {id: slime, prompt: green slime}\n", "colours.hex": PALETTE}
    )
    assert build_json(cli, project)["generated"] == 2
    (project / "colours.hex").write_text(PALETTE.replace("ff0000", "ffff00"))
    plan = cli("plan", "-C", project, "--json").json
    assert {s["id"]: s["action"] for s in plan["sprites"]} == {"hero": "post", "slime": "post"}
    report = build_json(cli, project)
    assert (report["post_processed"], report["up_to_date"]) == (2, 0)
    assert cli("check", "-C", project).code == 0
