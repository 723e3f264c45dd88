"""Atlases: packed from the members' outputs, repacked exactly when a member or a setting changes."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path

from PIL import Image

from tests.conftest import Result, build_json
from tests.pack.test_writers import godot_id_from_text

ATLASES = """\
version: 1
defaults: {size: 32, post: [{resize: {size: 8}}]}
sprites:
  - {id: heroes/knight, prompt: blue knight}
  - {id: heroes/wizard, prompt: purple wizard}
  - {id: monsters/slime, prompt: green slime, frames: 3}
  - {id: items/coin, prompt: gold coin}
atlases:
  - id: heroes
    sprites: ["heroes/*", monsters/slime]
    formats: [texturepacker-hash, texturepacker-array, aseprite, godot, libgdx]
    padding: 1
  - id: items
    sprites: [items/coin]
"""


def test_atlas_files_and_lock(cli: Callable[..., Result], make_project: Callable[..., Path]) -> None:
    project = make_project(ATLASES)
    report = build_json(cli, project)
    assert (report["generated"], report["packed"]) == (4, 2)
    atlas_dir = project / "assets/atlases"
    names = sorted(p.name for p in atlas_dir.iterdir())
    assert names == [
        "heroes.array.json",
        "heroes.aseprite.json",
        "heroes.atlas",
        "heroes.json",
        "heroes.png",
        "heroes.tres",
        "items.json",
        "items.png",
    ]
    hashed = json.loads((atlas_dir / "heroes.json").read_text())
    assert set(hashed["frames"]) == {
        "heroes/knight",
        "heroes/wizard",
        "monsters/slime/0",
        "monsters/slime/1",
        "monsters/slime/2",
    }
    assert hashed["meta"]["image"] == "heroes.png"
    with Image.open(atlas_dir / "heroes.png") as image:
        assert [image.width, image.height] == [hashed["meta"]["size"]["w"], hashed["meta"]["size"]["h"]]
        knight = hashed["frames"]["heroes/knight"]["frame"]
        crop = image.convert("RGBA").crop(
            (knight["x"], knight["y"], knight["x"] + knight["w"], knight["y"] + knight["h"])
        )
    with Image.open(project / "assets/heroes/knight.png") as sprite:
        assert crop.tobytes() == sprite.convert("RGBA").tobytes()
    aseprite = json.loads((atlas_dir / "heroes.aseprite.json").read_text())
    tags = {tag["name"]: (tag["from"], tag["to"]) for tag in aseprite["meta"]["frameTags"]}
    assert tags["monsters/slime"][1] - tags["monsters/slime"][0] == 2
    tres = (atlas_dir / "heroes.tres").read_text()
    assert 'path="res://assets/atlases/heroes.png"' in tres
    # load_steps: 5 AtlasTextures, the texture, the SpriteFrames; the uid: Godot's text form of a 63-bit id
    # from the resource's res:// path, so every build (and every clone) writes the same one.
    header = '[gd_resource type="SpriteFrames" load_steps=7 format=3 uid="'
    first = tres.splitlines()[0]
    assert first.startswith(header) and first.endswith('"]')
    seed = b"res://assets/atlases/heroes.tres"
    digest = int.from_bytes(hashlib.sha256(seed).digest()[:8], "big") & (2**63 - 1)
    assert godot_id_from_text(first[len(header) : -2]) == digest
    lock = json.loads((project / "pixelbuild.lock").read_text())
    assert lock["atlases"]["heroes"]["members"] == ["heroes/knight", "heroes/wizard", "monsters/slime"]
    assert [o["path"] for o in lock["atlases"]["items"]["outputs"]] == ["atlases/items.png", "atlases/items.json"]
    assert cli("check", "-C", project).code == 0
    assert build_json(cli, project)["noop"] is True


def test_atlas_files_are_the_same_bytes_in_every_build(
    cli: Callable[..., Result], make_project: Callable[..., Path]
) -> None:
    """Two projects built apart (other folders, other processes' state) write byte-identical atlases."""
    first, second = make_project(ATLASES), make_project(ATLASES)
    build_json(cli, first)
    build_json(cli, second, "-j", "2")
    names = sorted(p.name for p in (first / "assets/atlases").iterdir())
    assert len(names) == 8
    for name in names:
        assert (first / "assets/atlases" / name).read_bytes() == (second / "assets/atlases" / name).read_bytes(), name


def test_member_edit_repacks_only_its_atlas(cli: Callable[..., Result], make_project: Callable[..., Path]) -> None:
    project = make_project(ATLASES)
    build_json(cli, project)
    items_before = (project / "assets/atlases/items.png").read_bytes()
    manifest = project / "pixelbuild.yaml"
    manifest.write_text(manifest.read_text().replace("purple wizard", "red wizard"))
    plan = cli("plan", "-C", project).out
    assert "pack        atlas heroes   member heroes/wizard changed" in plan
    assert "atlas items" not in plan
    report = build_json(cli, project)
    assert (report["generator_calls"], report["generated"], report["packed"]) == (1, 1, 1)
    assert (project / "assets/atlases/items.png").read_bytes() == items_before


def test_post_only_edit_of_a_member_repacks_without_generating(
    cli: Callable[..., Result], make_project: Callable[..., Path]
) -> None:
    project = make_project(ATLASES)
    build_json(cli, project)
    manifest = project / "pixelbuild.yaml"
    manifest.write_text(
        manifest.read_text().replace(
            "{id: items/coin, prompt: gold coin}", "{id: items/coin, prompt: gold coin, post: [{resize: {size: 12}}]}"
        )
    )
    report = build_json(cli, project)
    assert (report["generator_calls"], report["post_processed"], report["packed"]) == (0, 1, 1)
    with Image.open(project / "assets/atlases/items.png") as image:
        assert image.size == (12, 12)


def test_atlas_settings_lost_files_and_removal(cli: Callable[..., Result], make_project: Callable[..., Path]) -> None:
    project = make_project(ATLASES)
    build_json(cli, project)
    (project / "assets/atlases/heroes.tres").unlink()
    report = build_json(cli, project)
    assert (report["restored"], report["packed"], report["generator_calls"]) == (1, 0, 0)
    manifest = project / "pixelbuild.yaml"
    manifest.write_text(manifest.read_text().replace("    padding: 1\n", "    padding: 2\n"))
    assert "atlas settings changed" in cli("plan", "-C", project).out
    assert build_json(cli, project)["packed"] == 1
    manifest.write_text(manifest.read_text().split("  - id: items\n")[0])
    report = build_json(cli, project)
    assert report["removed"] == 1
    assert not (project / "assets/atlases/items.png").exists()
    assert "items" not in json.loads((project / "pixelbuild.lock").read_text())["atlases"]
    assert cli("check", "-C", project).code == 0


def test_atlas_errors(cli: Callable[..., Result], make_project: Callable[..., Path]) -> None:
    project = make_project(ATLASES.replace('["heroes/*", monsters/slime]', '["heroes/*", "monster/*"]'))
    result = cli("validate", "-C", project)
    assert result.code == 2
    assert (
        "pixelbuild.yaml:10:" in result.err
        and "atlas 'heroes'" in result.err
        and "'monster/*' matches no sprite" in result.err
    )
    project = make_project(ATLASES.replace("    padding: 1\n", "    padding: 1\n    max_size: 16\n"))
    result = cli("build", "-C", project)
    assert result.code == 1
    (line,) = [line for line in result.err.splitlines() if line.startswith("FAILED")]
    assert line.split()[1:3] == ["atlas", "heroes:"] and "fit" in line
    assert cli("check", "-C", project).code == 1  # the heroes atlas is not in the lock


def test_lock_with_atlases_matches_its_schema(cli: Callable[..., Result], make_project: Callable[..., Path]) -> None:
    import jsonschema

    from tests.conftest import REPO

    project = make_project(ATLASES)
    build_json(cli, project)
    schema = json.loads((REPO / "schemas/lock.schema.json").read_text())
    jsonschema.validate(json.loads((project / "pixelbuild.lock").read_text()), schema)


def test_manifest_schema_lists_every_atlas_format() -> None:
    from pixelbuild.spec import ATLAS_FORMATS
    from tests.conftest import REPO

    schema = json.loads((REPO / "schemas/manifest.schema.json").read_text())
    assert schema["$defs"]["atlas"]["properties"]["formats"]["items"]["enum"] == list(ATLAS_FORMATS)
