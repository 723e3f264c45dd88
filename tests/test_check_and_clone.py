"""`check` on a fresh clone, and each kind of disagreement it must name."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from pixelbuild.backends import Backend, BackendRequest
from pixelbuild.builder import BuildOptions, build
from tests.conftest import Result, build_json, copy_committed


@pytest.fixture
def built(cli: Callable[..., Result], make_project: Callable[..., Path]) -> Path:
    project = make_project()
    build_json(cli, project)
    return project


def test_fresh_clone_is_up_to_date_and_calls_no_backend(
    cli: Callable[..., Result], built: Path, tmp_path: Path
) -> None:
    clone = tmp_path / "clone"
    copy_committed(built, clone)
    assert not (clone / ".pixelbuild").exists()

    def no_backend(request: BackendRequest) -> Backend:
        raise AssertionError("a fresh clone must not create a backend")

    result = cli("check", "-C", clone)
    assert result.code == 0, result.out
    assert "ok: 3 sprites" in result.out
    report = build(clone / "pixelbuild.yaml", BuildOptions(backend_factory=no_backend))
    assert report.ok, report.failures
    assert (report.generator_calls, report.up_to_date, report.noop) == (0, 3, False)
    assert build_json(cli, clone)["noop"] is True


def test_check_names_every_disagreement(cli: Callable[..., Result], built: Path) -> None:
    (built / "assets/items/coin.png").write_bytes((built / "assets/slime.png").read_bytes())  # tampered
    (built / "assets/slime.png").unlink()  # missing
    (built / "assets/stray.png").write_bytes(b"x")  # orphan
    manifest = built / "pixelbuild.yaml"
    manifest.write_text(manifest.read_text().replace("blue knight", "red knight"))  # stale lock entry
    result = cli("check", "-C", built)
    assert result.code == 1
    lines = result.out.splitlines()
    assert any(line.startswith("stale") and "hero" in line and "prompt changed" in line for line in lines)
    assert any(line.startswith("missing") and "assets/slime.png" in line for line in lines)
    assert any(line.startswith("modified") and "assets/items/coin.png" in line for line in lines)
    assert any(line.startswith("orphan") and "assets/stray.png" in line for line in lines)
    document = cli("check", "-C", built, "--json").json
    assert document["ok"] is False
    assert sorted(p["kind"] for p in document["problems"]) == ["missing", "modified", "orphan", "stale"]


def test_check_finds_lock_entries_without_sprites_and_sprites_without_entries(
    cli: Callable[..., Result], built: Path
) -> None:
    manifest = built / "pixelbuild.yaml"
    manifest.write_text(manifest.read_text().replace("- id: hero", "- id: hero2"))
    document = cli("check", "-C", built, "--json").json
    kinds = {(p["kind"], p["subject"]) for p in document["problems"]}
    assert ("removed", "hero") in kinds and ("unlocked", "hero2") in kinds


def test_check_accepts_other_png_bytes_with_the_same_pixels(cli: Callable[..., Result], built: Path) -> None:
    from PIL import Image

    path = built / "assets/hero.png"
    with Image.open(path) as image:
        image.convert("RGBA").save(path, compress_level=0)  # other bytes, same pixels (another zlib, say)
    assert cli("check", "-C", built).code == 0


def test_keep_globs_are_not_orphans(cli: Callable[..., Result], make_project: Callable[..., Path]) -> None:
    project = make_project(
        """\
        version: 1
        project: {keep: ["ui/**", "*.txt"]}
        defaults: {size: 32}
        sprites:
          - id: hero
            prompt: knight
        """
    )
    build_json(cli, project)
    (project / "assets/ui").mkdir()
    (project / "assets/ui/button.png").write_bytes(b"hand made")
    (project / "assets/README.txt").write_text("art")
    assert cli("check", "-C", project).code == 0


def test_check_never_writes(cli: Callable[..., Result], built: Path) -> None:
    (built / "assets/hero.png").unlink()
    lock = (built / "pixelbuild.lock").read_bytes()
    assert cli("check", "-C", built).code == 1
    assert not (built / "assets/hero.png").exists()
    assert (built / "pixelbuild.lock").read_bytes() == lock


def test_check_judges_staleness_as_plan_does(cli: Callable[..., Result], make_project: Callable[..., Path]) -> None:
    """One procedure: check names the same stale sprites and atlases as plan, with plan's reasons."""
    from tests.test_atlas import ATLASES

    project = make_project(ATLASES)
    build_json(cli, project)
    manifest = project / "pixelbuild.yaml"
    manifest.write_text(manifest.read_text().replace("purple wizard", "red wizard"))
    (project / "assets/items/coin.png").unlink()
    plan = cli("plan", "-C", project, "--json").json
    stale = {d["id"] for d in plan["sprites"] if d["action"] != "up-to-date"}
    stale |= {f"atlas {a['id']}" for a in plan["atlases"] if a["action"] != "up-to-date"}
    problems = cli("check", "-C", project, "--json").json["problems"]
    assert {p["subject"] for p in problems} == stale == {"heroes/wizard", "items/coin", "atlas heroes"}
    details = {p["subject"]: p["detail"] for p in problems}
    assert details["atlas heroes"] == "the lock entry is out of date: member heroes/wizard changed"
    assert details["heroes/wizard"] == "the lock entry is out of date: prompt changed"


def test_check_finds_an_atlas_whose_lock_entry_lost_an_output(
    cli: Callable[..., Result], make_project: Callable[..., Path]
) -> None:
    """A lock entry listing other outputs than the manifest makes is stale for check as for plan (check
    looked only at the outputs the entry listed)."""
    import json

    from tests.test_atlas import ATLASES

    project = make_project(ATLASES)
    build_json(cli, project)
    lock_path = project / "pixelbuild.lock"
    lock = json.loads(lock_path.read_text())
    lock["atlases"]["items"]["outputs"] = lock["atlases"]["items"]["outputs"][:1]
    lock_path.write_text(json.dumps(lock, indent=2) + "\n")
    assert "outputs changed" in cli("plan", "-C", project).out
    problems = cli("check", "-C", project, "--json").json["problems"]
    assert [(p["kind"], p["subject"]) for p in problems] == [("stale", "atlas items")]
    assert "['atlases/items.png'] in the lock" in problems[0]["detail"]
