"""Incremental builds: exactly the work an edit calls for, and nothing else."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from pixelbuild.builder import BuildOptions, build
from tests.conftest import BASIC_MANIFEST, Result, build_json, failed_lines, snapshot


def edit(project: Path, old: str, new: str) -> None:
    manifest = project / "pixelbuild.yaml"
    text = manifest.read_text()
    assert old in text
    manifest.write_text(text.replace(old, new))


def test_first_build_then_noop(cli: Callable[..., Result], make_project: Callable[..., Path]) -> None:
    project = make_project()
    first = build_json(cli, project)
    assert (first["generator_calls"], first["generated"], first["up_to_date"]) == (3, 3, 0)
    for name in ("assets/hero.png", "assets/slime.png", "assets/items/coin.png"):
        assert (project / name).is_file()
    second = build_json(cli, project)
    assert second["noop"] is True
    assert (second["generator_calls"], second["up_to_date"]) == (0, 3)
    text = cli("build", "-C", project)
    assert text.out.startswith("0 generated, 3 up to date")


def test_edit_one_prompt_regenerates_that_sprite_only(
    cli: Callable[..., Result], make_project: Callable[..., Path]
) -> None:
    project = make_project()
    build_json(cli, project)
    before = snapshot(project)
    edit(project, "green slime", "purple slime")
    plan = cli("plan", "-C", project, "--json").json
    stale = [s for s in plan["sprites"] if s["action"] != "up-to-date"]
    assert [(s["id"], s["action"], s["reasons"]) for s in stale] == [("slime", "generate", ["prompt changed"])]
    human = cli("plan", "-C", project).out
    assert "slime" in human and "prompt changed" in human and "hero" not in human
    report = build_json(cli, project)
    assert (report["generator_calls"], report["generated"], report["up_to_date"]) == (1, 1, 2)
    after = snapshot(project)
    changed = {name for name in after if after[name] != before.get(name)}
    assert changed == {"assets/slime.png", "pixelbuild.lock", "pixelbuild.yaml"}


def test_post_only_edit_never_calls_the_generator(
    cli: Callable[..., Result], make_project: Callable[..., Path]
) -> None:
    project = make_project()
    build_json(cli, project)
    edit(project, "size: 16, filter: box", "size: 24, filter: box")
    plan = cli("plan", "-C", project, "--json").json
    assert {s["action"] for s in plan["sprites"]} == {"post"}
    assert all(s["reasons"] == ["post chain changed"] for s in plan["sprites"])
    report = build_json(cli, project)
    assert report["generator_calls"] == 0
    assert report["post_processed"] == 3
    from PIL import Image

    with Image.open(project / "assets/hero.png") as image:
        assert image.size == (24, 24)


def test_revert_restores_byte_identical_from_cache(
    cli: Callable[..., Result], make_project: Callable[..., Path]
) -> None:
    project = make_project()
    build_json(cli, project)
    original = snapshot(project)
    edit(project, "blue knight", "red knight")
    assert build_json(cli, project)["generator_calls"] == 1
    assert snapshot(project)["assets/hero.png"] != original["assets/hero.png"]
    edit(project, "red knight", "blue knight")
    plan = cli("plan", "-C", project, "--json").json
    assert [s["action"] for s in plan["sprites"] if s["id"] == "hero"] == ["restore"]
    report = build_json(cli, project)
    assert report["generator_calls"] == 0 and report["restored"] == 1
    assert snapshot(project) == original


def test_reorder_changes_nothing(cli: Callable[..., Result], make_project: Callable[..., Path]) -> None:
    project = make_project()
    build_json(cli, project)
    lock_before = (project / "pixelbuild.lock").read_bytes()
    manifest = project / "pixelbuild.yaml"
    head, sprites = manifest.read_text().split("sprites:\n")
    entries = ["  - id:" + chunk for chunk in sprites.split("  - id:")[1:]]
    manifest.write_text(head + "sprites:\n" + "".join(reversed(entries)))
    report = build_json(cli, project)
    assert report["generator_calls"] == 0 and report["up_to_date"] == 3
    assert (project / "pixelbuild.lock").read_bytes() == lock_before


def test_adding_a_sprite_keeps_derived_seeds_of_others(
    cli: Callable[..., Result], make_project: Callable[..., Path]
) -> None:
    project = make_project()
    build_json(cli, project)
    lock_before = (project / "pixelbuild.lock").read_text()
    manifest = project / "pixelbuild.yaml"
    manifest.write_text(manifest.read_text().replace("sprites:\n", "sprites:\n  - id: bat\n    prompt: purple bat\n"))
    report = build_json(cli, project)
    assert (report["generator_calls"], report["up_to_date"]) == (1, 3)
    lock_after = (project / "pixelbuild.lock").read_text()
    for block in lock_before.split('    "')[1:]:
        assert block.rstrip().rstrip("}").rstrip().rstrip(",") in lock_after


def test_removed_sprite_loses_outputs_and_lock_entry(
    cli: Callable[..., Result], make_project: Callable[..., Path]
) -> None:
    project = make_project()
    (project / "assets" / "items").mkdir(parents=True)
    (project / "assets" / "items" / "handmade.png").write_bytes(b"not ours")
    build_json(cli, project)
    manifest = project / "pixelbuild.yaml"
    manifest.write_text(BASIC_MANIFEST.replace("  - id: slime\n    prompt: green slime\n    seed: 7\n", ""))
    plan = cli("plan", "-C", project).out
    assert "remove" in plan and "slime" in plan and "no longer in the manifest" in plan
    result = cli("build", "-C", project)
    assert result.code == 0
    assert "removed" in result.err and "slime" in result.err
    assert "1 removed" in result.out
    assert not (project / "assets/slime.png").exists()
    assert "slime" not in (project / "pixelbuild.lock").read_text()
    # nothing else under the output root is touched
    assert (project / "assets/items/handmade.png").read_bytes() == b"not ours"
    assert (project / "assets/items/coin.png").exists()


def test_moving_an_output_needs_no_generator(cli: Callable[..., Result], make_project: Callable[..., Path]) -> None:
    project = make_project()
    build_json(cli, project)
    data = (project / "assets/hero.png").read_bytes()
    edit(project, "prompt: blue knight\n", "prompt: blue knight\n    output: characters/hero.png\n")
    report = build_json(cli, project)
    assert report["generator_calls"] == 0 and report["restored"] == 1
    assert not (project / "assets/hero.png").exists()
    assert (project / "assets/characters/hero.png").read_bytes() == data


def test_tampered_output_is_kept_unless_forced(cli: Callable[..., Result], make_project: Callable[..., Path]) -> None:
    project = make_project()
    build_json(cli, project)
    original = (project / "assets/hero.png").read_bytes()
    edited = (project / "assets/slime.png").read_bytes()
    (project / "assets/hero.png").write_bytes(edited)
    plan = cli("plan", "-C", project).out
    assert "would overwrite assets/hero.png, which was changed since pixelbuild wrote it (use --force)" in plan
    result = cli("build", "-C", project)
    assert result.code == 1 and "FAILED hero: would overwrite assets/hero.png" in failed_lines(result)
    assert (project / "assets/hero.png").read_bytes() == edited
    report = build_json(cli, project, "--force")
    assert report["restored"] == 1 and report["generator_calls"] == 0
    assert (project / "assets/hero.png").read_bytes() == original


def test_shared_generation_is_generated_once(cli: Callable[..., Result], make_project: Callable[..., Path]) -> None:
    project = make_project(
        """\
        version: 1
        defaults: {size: 64, seed: 5, prompt: gold coin}
        sprites:
          - id: coin_small
            post: [{resize: {size: 8}}]
          - id: coin_large
            post: [{resize: {size: 32}}]
        """
    )
    report = build_json(cli, project)
    assert report["generator_calls"] == 1 and report["generated"] == 2


def test_only_builds_the_selected_sprites(cli: Callable[..., Result], make_project: Callable[..., Path]) -> None:
    project = make_project()
    report = build_json(cli, project, "--only", "items/*")
    assert report["generator_calls"] == 1
    assert (project / "assets/items/coin.png").exists() and not (project / "assets/hero.png").exists()
    report = build_json(cli, project)
    assert (report["generator_calls"], report["up_to_date"]) == (2, 1)
    result = cli("build", "-C", project, "--only", "nosuch*")
    assert result.code == 2 and "matches no sprite" in result.err


def test_frozen_fails_instead_of_generating(cli: Callable[..., Result], make_project: Callable[..., Path]) -> None:
    project = make_project()
    result = cli("build", "-C", project, "--frozen")
    assert result.code == 1
    assert "--frozen" in result.err and "hero" in result.err and "new sprite" in result.err
    assert not (project / "assets").exists()
    build_json(cli, project)
    (project / "assets/hero.png").unlink()
    report = build_json(cli, project, "--frozen")  # restoring from the cache is not generating
    assert report["restored"] == 1 and report["generator_calls"] == 0


def test_parallel_build_matches_serial(cli: Callable[..., Result], make_project: Callable[..., Path]) -> None:
    many = "version: 1\ndefaults: {size: 48, post: [{resize: {size: 12}}]}\nsprites:\n" + "".join(
        f"  - id: s{i:02d}\n    prompt: {colour} blob number {i}\n"
        for i, colour in enumerate(["red", "blue", "green", "gold", "pink"] * 4)
    )
    serial = make_project(many)
    parallel = make_project(many)
    assert build_json(cli, serial)["generator_calls"] == 20
    assert build_json(cli, parallel, "-j", "3")["generator_calls"] == 20
    assert snapshot(serial) == snapshot(parallel)


def test_work_split_over_several_doit_runs_is_complete(
    cli: Callable[..., Result], make_project: Callable[..., Path]
) -> None:
    shared = "version: 1\ndefaults: {size: 32, seed: 3}\nsprites:\n" + "".join(
        f"  - id: s{i}\n    prompt: blob {i // 2}\n    post: [{{resize: {{size: {8 + i}}}}}]\n" for i in range(8)
    )
    project = make_project(shared)
    report = build(project / "pixelbuild.yaml", BuildOptions(jobs=2, sprites_per_run=3))
    assert report.ok, report.failures
    assert (report.generator_calls, report.generated) == (4, 8)  # pairs share a generation
    assert cli("check", "-C", project).code == 0
