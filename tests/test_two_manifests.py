"""Two manifests in one folder: each owns its lock, journal, stamp and caches; neither deletes the
other's outputs, even in a shared output root."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from tests.conftest import Result, build_json, snapshot

OTHER = """\
version: 1
project:
  output: assets
defaults:
  size: 64
  post:
    - resize: {size: 16, filter: box}
sprites:
  - id: ui/button
    prompt: wooden button
  - id: ui/frame
    prompt: stone frame
"""


def test_a_second_manifest_never_removes_the_first_ones_outputs(
    cli: Callable[..., Result], make_project: Callable[..., Path]
) -> None:
    project = make_project(files={"other.yaml": OTHER})
    first = build_json(cli, project)
    assert first["generated"] == 3
    before = {name: data for name, data in snapshot(project).items() if name != "other.yaml"}

    other = build_json(cli, project, "--manifest", "other.yaml")
    assert (other["generated"], other["removed"]) == (2, 0)
    after = snapshot(project)
    # Nothing of the first manifest changed: not its outputs, not its lock.
    assert {name: data for name, data in after.items() if name in before} == before
    assert (project / "other.lock").is_file()
    assert sorted(json.loads((project / "other.lock").read_text())["sprites"]) == ["ui/button", "ui/frame"]
    assert sorted(json.loads((project / "pixelbuild.lock").read_text())["sprites"]) == ["hero", "items/coin", "slime"]

    # Both check ok: in the shared output root, the other manifest's files are not orphans.
    assert cli("check", "-C", project).code == 0, cli("check", "-C", project).out
    assert cli("check", "-C", project, "--manifest", "other.yaml").code == 0
    # A file neither lock records still is one.
    (project / "assets/stray.png").write_bytes(b"x")
    stray = cli("check", "-C", project, "--json")
    assert [p["subject"] for p in stray.json["problems"]] == ["assets/stray.png"]
    (project / "assets/stray.png").unlink()

    # Each is a no-op on its own stamp, and each plan has nothing to do.
    assert build_json(cli, project)["noop"] is True
    assert build_json(cli, project, "--manifest", "other.yaml")["noop"] is True
    for extra in ((), ("--manifest", "other.yaml")):
        assert cli("plan", "-C", project, *extra).out.startswith("nothing to do")

    # Removing a sprite from one manifest removes only that sprite's output.
    other_yaml = project / "other.yaml"
    other_yaml.write_text(other_yaml.read_text().replace("  - id: ui/frame\n    prompt: stone frame\n", ""))
    report = build_json(cli, project, "--manifest", "other.yaml")
    assert report["removed"] == 1
    assert not (project / "assets/ui/frame.png").exists()
    assert {name: data for name, data in snapshot(project).items() if name in before} == before
    assert build_json(cli, project)["noop"] is True


def test_each_manifest_has_its_own_state(cli: Callable[..., Result], make_project: Callable[..., Path]) -> None:
    project = make_project(files={"other.yaml": OTHER.replace("output: assets", "output: ui_assets")})
    build_json(cli, project, "--manifest", "other.yaml")
    state = project / ".pixelbuild/manifests/other"
    assert (state / "state/noop.json").is_file() and (state / "cache").is_dir()
    assert not (project / ".pixelbuild/state/noop.json").exists()
    assert not (project / "pixelbuild.lock").exists()
    # gc of one manifest keeps the other's cache whole.
    build_json(cli, project)
    cache = state / "cache"
    before = sorted(p.name for p in cache.rglob("*") if p.is_file())
    assert cli("gc", "-C", project).code == 0
    assert sorted(p.name for p in cache.rglob("*") if p.is_file()) == before
