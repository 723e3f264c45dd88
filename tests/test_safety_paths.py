"""Attacks on the file system and on local state: nothing outside the output root is ever written or
deleted, no link is followed, files pixelbuild does not own are left alone, and local state is data."""

from __future__ import annotations

import json
import os
import pickle
import re
from collections.abc import Callable
from pathlib import Path

import pytest

from pixelbuild import fsguard, notices
from pixelbuild import lock as lock_module
from pixelbuild.fsguard import OutputGuard, Removal, UnsafePathError
from pixelbuild.names import MAX_NAME_BYTES, TEMP_PREFIX
from tests.conftest import BASIC_MANIFEST, Result, build_json, failed_lines

ATLAS_MANIFEST = BASIC_MANIFEST + "atlases:\n  - id: all\n    sprites: [hero, slime]\n"


@pytest.fixture(autouse=True)
def _fresh_warnings(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test is one pixelbuild process as far as once-only warnings go."""
    monkeypatch.setattr(notices, "_said", set())


@pytest.fixture
def victim(tmp_path: Path) -> Path:
    """A file outside every project that no command may touch."""
    path = tmp_path / "outside" / "victim.txt"
    path.parent.mkdir()
    path.write_bytes(b"precious")
    return path


def _line_of(text: str, needle: str) -> int:
    return text[: text.index(needle)].count("\n") + 1


def _assert_refused(cli: Callable[..., Result], project: Path, needle: str) -> None:
    """build, plan and check exit 2 naming the lock and the line of ``needle``."""
    lock_text = (project / "pixelbuild.lock").read_text()
    line = _line_of(lock_text, needle)
    for command in ("build", "plan", "check"):
        result = cli(command, "-C", project)
        assert result.code == 2, (command, result)
        assert f"pixelbuild.lock:{line}:" in result.err, (command, result.err)
        assert "Traceback" not in result.err and result.err.count("\n") == 1


# ------------------------------------------------------------------------------------ lock paths


@pytest.mark.parametrize("kind", ["relative", "absolute"])
def test_lock_sprite_entry_outside_the_root_is_refused(
    cli: Callable[..., Result], make_project: Callable[..., Path], victim: Path, kind: str
) -> None:
    project = make_project()
    build_json(cli, project)
    evil = "../../outside/victim.txt" if kind == "relative" else str(victim)
    data = json.loads((project / "pixelbuild.lock").read_text())
    entry = json.loads(json.dumps(data["sprites"]["hero"]))
    entry["outputs"][0]["path"] = evil
    data["sprites"]["evil"] = entry  # a sprite no longer in the manifest: build would remove its output
    (project / "pixelbuild.lock").write_text(json.dumps(data, indent=2))
    _assert_refused(cli, project, json.dumps(evil))
    assert victim.read_bytes() == b"precious"


def test_lock_atlas_entry_outside_the_root_is_refused(
    cli: Callable[..., Result], make_project: Callable[..., Path], victim: Path
) -> None:
    project = make_project(ATLAS_MANIFEST)
    build_json(cli, project)
    lock = project / "pixelbuild.lock"
    text = lock.read_text()
    assert '"atlases/all.json"' in text
    lock.write_text(text.replace('"atlases/all.json"', '"../../outside/victim.txt"'))
    (project / "pixelbuild.yaml").write_text(BASIC_MANIFEST)  # the atlas left: build would delete its files
    _assert_refused(cli, project, '"../../outside/victim.txt"')
    assert victim.read_bytes() == b"precious"


def test_old_output_path_of_an_existing_sprite_outside_the_root_is_refused(
    cli: Callable[..., Result], make_project: Callable[..., Path], victim: Path
) -> None:
    project = make_project()
    build_json(cli, project)
    lock = project / "pixelbuild.lock"
    # slime "moved" from the victim to assets/slime.png: build would delete the old path
    lock.write_text(lock.read_text().replace('"slime.png"', json.dumps(str(victim))))
    _assert_refused(cli, project, json.dumps(str(victim)))
    assert victim.read_bytes() == b"precious"


@pytest.mark.parametrize(
    "path", ["a/../b.png", "./a.png", "a//b.png", "a\\b.png", "a\x00b.png", "a\nb.png", "", "a/..", "a/.", "C:x.png"]
)
@pytest.mark.parametrize("sprite", ["hero", "slime"])
def test_lock_output_paths_are_validated_as_the_manifests_are(
    cli: Callable[..., Result], make_project: Callable[..., Path], path: str, sprite: str
) -> None:
    project = make_project()
    build_json(cli, project)
    lock = project / "pixelbuild.lock"
    lock.write_text(lock.read_text().replace(f'"{sprite}.png"', json.dumps(path)))
    line = _line_of(lock.read_text(), json.dumps(path))
    result = cli("build", "-C", project)
    assert result.code == 2 and f"pixelbuild.lock:{line}:" in result.err and f"sprite '{sprite}'" in result.err
    assert (project / f"assets/{sprite}.png").exists()


def test_oversized_lock_is_refused(
    cli: Callable[..., Result], make_project: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    project = make_project()
    build_json(cli, project)
    monkeypatch.setattr(lock_module, "MAX_LOCK_BYTES", 100)
    result = cli("plan", "-C", project)
    assert result.code == 2 and "pixelbuild.lock" in result.err and "MiB" in result.err


# ------------------------------------------------------------------------------ journal and cache


def test_crafted_journal_records_are_ignored(
    cli: Callable[..., Result], make_project: Callable[..., Path], victim: Path
) -> None:
    project = make_project()
    build_json(cli, project)
    entry = json.loads((project / "pixelbuild.lock").read_text())["sprites"]["hero"]
    bad = json.loads(json.dumps(entry))
    bad["outputs"][0]["path"] = "../../outside/victim.txt"
    absolute = json.loads(json.dumps(entry))
    absolute["outputs"][0]["path"] = str(victim)
    records = [
        {"op": "set", "id": "evil", "entry": bad},
        {"op": "set", "id": "evil2", "entry": absolute},
        {"op": "set", "id": "evil3", "entry": {"outputs": "nonsense"}},
        {"op": "explode", "id": "x"},
    ]
    journal = project / ".pixelbuild/journal.jsonl"
    journal.write_text("".join(json.dumps(record) + "\n" for record in records))
    result = cli("build", "-C", project)
    assert result.code == 0, result
    assert result.err.count("warning") == 1 and "damaged record" in result.err
    assert victim.read_bytes() == b"precious"
    assert "evil" not in (project / "pixelbuild.lock").read_text()


def test_crafted_cache_record_is_never_acted_on(
    cli: Callable[..., Result], make_project: Callable[..., Path], victim: Path
) -> None:
    project = make_project()
    build_json(cli, project)
    records = list((project / ".pixelbuild/cache/actions/post").glob("*/*.json"))
    assert records
    for record in records:
        data = json.loads(record.read_text())
        data["images"][0]["blob"] = "../../../../../outside/victim.txt"
        record.write_text(json.dumps(data))
    (project / "assets/hero.png").unlink()
    result = cli("build", "-C", project)
    assert result.code == 0, result
    assert result.err.count("pixelbuild: warning:") == 1 and "damaged cache entries" in result.err
    assert victim.read_bytes() == b"precious"
    assert (project / "assets/hero.png").read_bytes() != b"precious"
    assert cli("check", "-C", project).code == 0


# ------------------------------------------------------------------------------------- symlinks


LINKED = """\
version: 1
defaults: {size: 32, post: [{resize: {size: 8}}]}
sprites:
  - {id: knight, prompt: blue knight, output: characters/knight.png}
  - {id: coin, prompt: gold coin}
"""


def test_symlinked_folder_in_the_output_root_is_never_written_through(
    cli: Callable[..., Result], make_project: Callable[..., Path], tmp_path: Path
) -> None:
    project = make_project(LINKED)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "knight.png").write_bytes(b"precious")
    (project / "assets").mkdir()
    (project / "assets/characters").symlink_to(outside)
    plan = cli("plan", "-C", project)
    assert "cannot write assets/characters/knight.png: characters is a symbolic link" in plan.out
    result = cli("build", "-C", project)
    assert result.code == 1 and "FAILED knight" in failed_lines(result) and "symbolic link" in failed_lines(result)
    assert (outside / "knight.png").read_bytes() == b"precious"
    assert sorted(p.name for p in outside.iterdir()) == ["knight.png"]
    forced = cli("build", "-C", project, "--force")  # --force replaces files, never writes through links
    assert forced.code == 1 and (outside / "knight.png").read_bytes() == b"precious"
    check = cli("check", "-C", project)
    assert check.code == 1 and "symbolic link" in check.out


def test_symlinked_folder_in_the_output_root_is_never_deleted_through(
    cli: Callable[..., Result], make_project: Callable[..., Path], tmp_path: Path
) -> None:
    project = make_project(LINKED)
    build_json(cli, project)
    outside = tmp_path / "outside"
    (project / "assets/characters").rename(outside)
    (project / "assets/characters").symlink_to(outside)
    check = cli("check", "-C", project)
    assert check.code == 1 and "unsafe" in check.out and "characters is a symbolic link" in check.out
    (project / "pixelbuild.yaml").write_text(
        LINKED.replace("  - {id: knight, prompt: blue knight, output: characters/knight.png}\n", "")
    )
    result = cli("build", "-C", project)
    assert result.code == 0, result
    assert "kept assets/characters/knight.png" in result.err and "symbolic link" in result.err
    assert (outside / "knight.png").exists()


def test_linked_folder_that_keep_covers_is_not_a_problem(
    cli: Callable[..., Result], make_project: Callable[..., Path], tmp_path: Path
) -> None:
    project = make_project(BASIC_MANIFEST.replace("output: assets", "output: assets\n  keep: ['ui/**']"))
    build_json(cli, project)
    (tmp_path / "shared").mkdir()
    (project / "assets/ui").symlink_to(tmp_path / "shared")
    assert cli("check", "-C", project).code == 0
    (project / "assets/other").symlink_to(tmp_path / "shared")
    check = cli("check", "-C", project)
    assert check.code == 1 and "assets/other: is in the output root but it is a symbolic link" in check.out


def test_output_root_that_is_a_symlink_is_refused_unless_allowed(
    cli: Callable[..., Result], make_project: Callable[..., Path], tmp_path: Path
) -> None:
    project = make_project()
    outside = tmp_path / "outside"
    outside.mkdir()
    (project / "assets").symlink_to(outside)
    for command in ("build", "plan"):
        result = cli(command, "-C", project)
        assert result.code == 2, result
        assert "assets is a symbolic link" in result.err and "follow_output_symlink" in result.err
    assert list(outside.iterdir()) == []
    check = cli("check", "-C", project)
    assert check.code == 1 and re.search(r"^unsafe +assets: ", check.out, re.M), check.out
    manifest = project / "pixelbuild.yaml"
    manifest.write_text(manifest.read_text().replace("output: assets", "output: assets\n  follow_output_symlink: true"))
    build_json(cli, project)
    assert (outside / "hero.png").exists()
    assert cli("check", "-C", project).code == 0


def test_output_root_under_a_symlinked_folder_is_refused(
    cli: Callable[..., Result], make_project: Callable[..., Path], tmp_path: Path
) -> None:
    project = make_project(BASIC_MANIFEST.replace("output: assets", "output: build/assets"))
    outside = tmp_path / "outside"
    outside.mkdir()
    (project / "build").symlink_to(outside)
    result = cli("build", "-C", project)
    assert result.code == 2 and "build is a symbolic link" in result.err
    assert list(outside.iterdir()) == []


def test_a_project_folder_reached_through_a_link_builds_and_checks(
    cli: Callable[..., Result], make_project: Callable[..., Path]
) -> None:
    # A link above the project (a linked home or checkout) is not a link inside the output tree.
    project = make_project()
    linked = project.parent / "linked"
    linked.symlink_to(project, target_is_directory=True)
    assert cli("build", "-C", linked).code == 0
    assert (project / "assets/hero.png").is_file()
    assert cli("check", "-C", linked).code == 0
    assert "0 generated" in cli("build", "-C", linked).out
    assert cli("check", "-C", project).code == 0


def test_a_link_at_the_output_itself_is_replaced_only_with_force(
    cli: Callable[..., Result], make_project: Callable[..., Path], victim: Path
) -> None:
    project = make_project()
    (project / "assets").mkdir()
    (project / "assets/hero.png").symlink_to(victim)
    result = cli("build", "-C", project)
    assert result.code == 1 and "which is a symbolic link (use --force)" in failed_lines(result)
    build_json(cli, project, "--force")
    assert not (project / "assets/hero.png").is_symlink()
    assert victim.read_bytes() == b"precious"


def test_links_planted_in_local_state_are_never_written_through(
    cli: Callable[..., Result], make_project: Callable[..., Path], victim: Path
) -> None:
    project = make_project()
    state = project / ".pixelbuild"
    (state / "state").mkdir(parents=True)
    for name in ("build.lock", "journal.jsonl", "state/noop.json", "state/files.json"):
        (state / name).symlink_to(victim)
    build_json(cli, project)
    assert victim.read_bytes() == b"precious"
    assert cli("build", "-C", project).code == 0 and victim.read_bytes() == b"precious"


# ---------------------------------------------------------------------------------- ownership


def test_untracked_file_is_not_overwritten_without_force(
    cli: Callable[..., Result], make_project: Callable[..., Path]
) -> None:
    project = make_project(LINKED)
    hand_made = project / "assets/characters/knight.png"
    hand_made.parent.mkdir(parents=True)
    hand_made.write_bytes(b"drawn by hand")
    plan = cli("plan", "-C", project).out
    assert "would overwrite assets/characters/knight.png, which pixelbuild did not write (use --force)" in plan
    result = cli("build", "-C", project)
    assert result.code == 1 and "FAILED knight: would overwrite" in failed_lines(result)
    assert hand_made.read_bytes() == b"drawn by hand"
    assert "knight" not in (project / "pixelbuild.lock").read_text()
    assert (project / "assets/coin.png").exists()  # the other sprites are built
    report = build_json(cli, project, "--force")
    assert report["ok"] and hand_made.read_bytes() != b"drawn by hand"
    assert cli("check", "-C", project).code == 0


def test_output_matching_keep_is_a_manifest_error(
    cli: Callable[..., Result], make_project: Callable[..., Path]
) -> None:
    project = make_project(LINKED.replace("version: 1\n", "version: 1\nproject: {keep: ['characters/**']}\n"))
    hand_made = project / "assets/characters/knight.png"
    hand_made.parent.mkdir(parents=True)
    hand_made.write_bytes(b"drawn by hand")
    for command in ("validate", "plan", "build"):
        result = cli(command, "-C", project)
        assert result.code == 2, result
        assert "pixelbuild.yaml:5:" in result.err and "keep: characters/**" in result.err
    assert cli("build", "-C", project, "--force").code == 2
    assert hand_made.read_bytes() == b"drawn by hand"


def test_atlas_output_matching_keep_is_a_manifest_error(
    cli: Callable[..., Result], make_project: Callable[..., Path]
) -> None:
    manifest = ATLAS_MANIFEST.replace("output: assets", "output: assets\n  keep: ['atlases/*.json']")
    result = cli("validate", "-C", make_project(manifest))
    assert result.code == 2 and "atlas 'all'" in result.err and "keep: atlases/*.json" in result.err


def test_keep_wins_over_a_lock_entry_when_removing(
    cli: Callable[..., Result], make_project: Callable[..., Path]
) -> None:
    project = make_project()
    build_json(cli, project)
    manifest = project / "pixelbuild.yaml"
    # slime leaves the manifest and its output becomes a kept file: it must stay
    manifest.write_text(
        BASIC_MANIFEST.replace("  - id: slime\n    prompt: green slime\n    seed: 7\n", "").replace(
            "output: assets", "output: assets\n  keep: [slime.png]"
        )
    )
    result = cli("build", "-C", project)
    assert result.code == 0 and "kept assets/slime.png" in result.err
    assert (project / "assets/slime.png").exists()


def test_hand_edited_output_is_kept_when_its_sprite_leaves(
    cli: Callable[..., Result], make_project: Callable[..., Path]
) -> None:
    project = make_project()
    build_json(cli, project)
    (project / "assets/slime.png").write_bytes(b"my own slime")
    (project / "pixelbuild.yaml").write_text(
        BASIC_MANIFEST.replace("  - id: slime\n    prompt: green slime\n    seed: 7\n", "")
    )
    result = cli("build", "-C", project)
    assert result.code == 0, result
    assert "kept assets/slime.png: its content changed since pixelbuild wrote it" in result.err
    assert (project / "assets/slime.png").read_bytes() == b"my own slime"
    assert "slime" not in (project / "pixelbuild.lock").read_text()
    check = cli("check", "-C", project)
    assert check.code == 1 and "assets/slime.png" in check.out


def test_hand_edited_old_output_is_kept_when_its_sprite_moves(
    cli: Callable[..., Result], make_project: Callable[..., Path]
) -> None:
    project = make_project()
    build_json(cli, project)
    (project / "assets/slime.png").write_bytes(b"my own slime")
    manifest = project / "pixelbuild.yaml"
    manifest.write_text(manifest.read_text().replace("seed: 7\n", "seed: 7\n    output: monsters/slime.png\n"))
    result = cli("build", "-C", project)
    assert result.code == 0 and "kept assets/slime.png" in result.err
    assert (project / "assets/slime.png").read_bytes() == b"my own slime"
    assert (project / "assets/monsters/slime.png").exists()


def test_unedited_output_of_a_removed_sprite_is_deleted(
    cli: Callable[..., Result], make_project: Callable[..., Path]
) -> None:
    project = make_project()
    build_json(cli, project)
    (project / "pixelbuild.yaml").write_text(BASIC_MANIFEST.replace("  - id: items/coin\n    prompt: gold coin\n", ""))
    assert build_json(cli, project)["removed"] == 1
    assert not (project / "assets/items").exists()  # the folder it leaves empty goes too


# ---------------------------------------------------------------------------------- spec cache


def _resolved_entries(project: Path) -> list[Path]:
    entries = sorted((project / ".pixelbuild/state/resolved").iterdir())
    assert entries and all(entry.suffix == ".json" for entry in entries)
    return entries


class _Boom:
    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.system, ("touch PWNED",))


def test_pickle_in_the_spec_cache_is_never_executed(
    cli: Callable[..., Result], make_project: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    project = make_project()
    build_json(cli, project)
    monkeypatch.chdir(project)
    payload = pickle.dumps(_Boom())
    for entry in _resolved_entries(project):
        entry.write_bytes(payload)
        entry.with_suffix(".pickle").write_bytes(payload)  # the old name, too
    result = cli("check", "-C", project)
    assert result.code == 0, result
    assert not (project / "PWNED").exists()
    assert result.err.count("pixelbuild: warning:") == 1
    assert cli("check", "-C", project).code == 0


@pytest.mark.parametrize(
    "damage",
    [
        lambda text: text[: len(text) // 2],
        lambda text: "[1, 2, 3]",
        lambda text: text.replace('"hero.png"', '"../../outside/victim.png"'),
        lambda text: text.replace('"hero.png"', json.dumps("/tmp/victim.png")),
        lambda text: text.replace('"builtin:txt2img_sdxl.json"', '"../../../etc/passwd"'),
        lambda text: re.sub(r'"post":"[0-9a-f]{32}"', '"post":"../../../../x"', text, count=1),
    ],
    ids=["torn", "foreign", "escaping-output", "absolute-output", "escaping-file", "bad-key"],
)
def test_damaged_or_crafted_spec_cache_entry_is_ignored(
    cli: Callable[..., Result], make_project: Callable[..., Path], damage: Callable[[str], str]
) -> None:
    project = make_project()
    build_json(cli, project)
    (entry,) = _resolved_entries(project)
    text = entry.read_text()
    changed = damage(text)
    assert changed != text
    entry.write_text(changed)
    (project / "assets/hero.png").unlink()  # a build must resolve and write again
    result = cli("build", "-C", project)
    assert result.code == 0, result
    assert result.err.count("pixelbuild: warning:") == 1 and "resolution cache" in result.err
    assert (project / "assets/hero.png").exists()
    assert not (project.parent / "outside").exists()
    assert (entry.read_text() == text) or not entry.exists() or "victim" not in entry.read_text()


def test_spec_cache_names_the_manifest_as_this_run_shows_it(
    cli: Callable[..., Result], make_project: Callable[..., Path]
) -> None:
    from pixelbuild.local.layout import ProjectPaths
    from pixelbuild.project import open_session

    project = make_project()
    build_json(cli, project)
    (entry,) = _resolved_entries(project)
    # Sealed again with this user's key: as if this user's own pixelbuild had written it from elsewhere.
    from pixelbuild.local.seal import seal, unseal

    payload = unseal("spec", entry.name, entry.read_bytes())
    assert payload is not None
    entry.write_bytes(seal("spec", entry.name, re.sub(rb'"file":"[^"]*"', b'"file":"/etc/shadow"', payload)))
    session = open_session(ProjectPaths.for_manifest(project / "pixelbuild.yaml"))
    assert session.keys and {sprite.source.file for sprite in session.resolved.sprites} == {
        session.manifest.root.display
    }
    assert not notices._said  # the entry was used, not thrown away as damaged


def test_no_pickle_or_marshal_in_pixelbuild() -> None:
    source = Path(__file__).resolve().parent.parent / "pixelbuild"
    for path in source.rglob("*.py"):
        text = path.read_text()
        assert not re.search(r"^\s*(import|from)\s+(pickle|marshal|shelve)\b", text, re.M), path
        assert not re.search(r"(?<![\w.])(eval|exec)\(", text), path


# ------------------------------------------------------------------------------- the guard alone


@pytest.fixture(params=["dir_fd", "lstat"])
def walk(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Both walks of the guard: openat with O_NOFOLLOW, and the portable lstat one (for Windows)."""
    if request.param == "dir_fd" and not fsguard._HAVE_DIR_FD:
        pytest.skip("this system has no dir_fd support")
    monkeypatch.setattr(fsguard, "_HAVE_DIR_FD", request.param == "dir_fd")
    return str(request.param)


def test_an_output_name_at_the_file_name_limit_builds(
    cli: Callable[..., Result], make_project: Callable[..., Path]
) -> None:
    name = "k" * (MAX_NAME_BYTES - 4) + ".png"
    project = make_project(
        f"version: 1\ndefaults: {{size: 16}}\nsprites:\n  - {{id: knight, prompt: x, output: {name}}}\n"
    )
    build_json(cli, project)
    assert (project / "assets" / name).is_file()
    assert cli("check", "-C", project).code == 0


def test_guard_writes_long_names_through_a_short_temporary_name(tmp_path: Path, walk: str) -> None:
    guard = OutputGuard(str(tmp_path / "root"))
    name = "x" * (MAX_NAME_BYTES - 4) + ".png"
    guard.write_bytes(f"deep/{name}", b"data")
    assert (tmp_path / "root/deep" / name).read_bytes() == b"data"
    assert not [p for p in (tmp_path / "root/deep").iterdir() if p.name.startswith(TEMP_PREFIX)]


def test_guard_refuses_links_and_bad_paths(tmp_path: Path, victim: Path, walk: str) -> None:
    root = tmp_path / "root"
    root.mkdir()
    (root / "link").symlink_to(victim.parent)
    (root / "file.png").symlink_to(victim)
    guard = OutputGuard(str(root))
    for bad in ("link/victim.txt", "../outside/victim.txt", str(victim), "a/./b", "a\x00"):
        with pytest.raises(UnsafePathError):
            guard.write_bytes(bad, b"evil")
        with pytest.raises(UnsafePathError):
            guard.read_bytes(bad)
        assert guard.remove(bad, lambda data: True)[0] is Removal.KEPT
    assert guard.remove("file.png", lambda data: True)[0] is Removal.KEPT
    assert victim.read_bytes() == b"precious"
    assert (root / "file.png").is_symlink()
    linked_root = OutputGuard(str(tmp_path / "rootlink"))
    (tmp_path / "rootlink").symlink_to(victim.parent)
    with pytest.raises(UnsafePathError):
        linked_root.write_bytes("victim.txt", b"evil")
    assert victim.read_bytes() == b"precious"
    OutputGuard(str(tmp_path / "rootlink"), follow_root=True).write_bytes("new.txt", b"ok")
    assert (victim.parent / "new.txt").read_bytes() == b"ok"


def test_guard_walks_from_the_project_so_no_folder_above_the_root_is_a_link(
    tmp_path: Path, victim: Path, walk: str
) -> None:
    project = tmp_path / "project"
    project.mkdir()
    (project / "build").symlink_to(victim.parent)
    guard = OutputGuard(str(project / "build/assets"), base=str(project))
    with pytest.raises(UnsafePathError, match="symbolic link"):
        guard.write_bytes("x.png", b"evil")
    assert not (victim.parent / "assets").exists()
    assert guard.remove("x.png", lambda data: True)[0] is not Removal.REMOVED
    followed = OutputGuard(str(project / "build/assets"), follow_root=True, base=str(project))
    followed.write_bytes("x.png", b"ok")
    assert (victim.parent / "assets/x.png").read_bytes() == b"ok"
    assert followed.remove("x.png", lambda data: True)[0] is Removal.REMOVED
    assert (victim.parent / "assets").is_dir()  # the root itself is never removed


def test_guard_removes_only_what_is_still_ours(tmp_path: Path, walk: str) -> None:
    guard = OutputGuard(str(tmp_path), keep=("kept/*",))
    guard.write_bytes("a/b/c.png", b"ours")
    assert guard.remove("a/b/c.png", lambda data: data == b"theirs")[0] is Removal.KEPT
    assert guard.remove("a/b/c.png", lambda data: data == b"ours")[0] is Removal.REMOVED
    assert not (tmp_path / "a").exists() and tmp_path.exists()
    assert guard.remove("a/b/c.png", lambda data: True)[0] is Removal.MISSING
    (tmp_path / "kept").mkdir()
    (tmp_path / "kept/x.png").write_bytes(b"mine")
    assert guard.remove("kept/x.png", lambda data: True)[0] is Removal.KEPT
    with pytest.raises(UnsafePathError):
        guard.write_bytes("kept/x.png", b"no")


def test_unsafe_check_document_matches_its_schema(
    cli: Callable[..., Result], make_project: Callable[..., Path], tmp_path: Path
) -> None:
    from tests.test_json_schemas import _valid

    project = make_project()
    (tmp_path / "outside").mkdir()
    (project / "assets").symlink_to(tmp_path / "outside")
    result = cli("check", "-C", project, "--json")
    assert result.code == 1
    assert "unsafe" in {problem["kind"] for problem in _valid("check", result)["problems"]}


def test_batched_path_check_agrees_with_the_single_one() -> None:
    good = [f"set{i % 7}/sprite_{i}.png" for i in range(5000)]
    assert fsguard.all_confined(good) and fsguard.all_confined([])
    long_path = "/".join(["a" * 60] * 20)  # every name short, the whole over the limit
    for bad in ("../x.png", "a/..", "a\nb.png", "", "/abs.png", long_path, "x" * 256):
        assert fsguard.confined_path_problem(bad) is not None
        for where in (0, 2500, 5000):
            assert not fsguard.all_confined([*good[:where], bad, *good[where:]]), (bad, where)


# ----------------------------------------------------------------------------- non-finite numbers


@pytest.mark.parametrize("token", ["NaN", "Infinity", "-Infinity", "1e999"])
def test_lock_with_a_non_finite_number_is_refused_naming_its_line(
    cli: Callable[..., Result], make_project: Callable[..., Path], token: str
) -> None:
    project = make_project()
    build_json(cli, project)
    lock = project / "pixelbuild.lock"
    text = lock.read_text()
    assert '"height": 16' in text
    lock.write_text(text.replace('"height": 16', f'"height": {token}', 1))
    line = _line_of(lock.read_text(), f'"height": {token}')
    for command in ("build", "plan", "check"):
        result = cli(command, "-C", project)
        assert result.code == 2, (command, result)
        assert f"pixelbuild.lock:{line}:" in result.err and "not a finite number" in result.err, result.err
        assert "Traceback" not in result.err and result.err.count("\n") == 1


@pytest.mark.parametrize("token", ["NaN", "-Infinity", "1e999"])
def test_journal_record_with_a_non_finite_number_is_damage(
    cli: Callable[..., Result], make_project: Callable[..., Path], token: str
) -> None:
    project = make_project()
    build_json(cli, project)
    entry = json.loads((project / "pixelbuild.lock").read_text())["sprites"]["hero"]
    # In a field pixelbuild does not read: the record is still not one pixelbuild wrote.
    record = json.dumps({"op": "set", "id": "hero", "entry": entry, "note": 0}).replace('"note": 0', f'"note": {token}')
    assert token in record
    # Not the last line: a torn last line is a crash's, ignored silently.
    (project / ".pixelbuild/journal.jsonl").write_text(record + "\n" + '{"op": "remove", "id": "ghost"}\n')
    result = cli("build", "-C", project)
    assert result.code == 0 and "damaged record" in result.err, result
    assert token not in (project / "pixelbuild.lock").read_text()
    assert cli("check", "-C", project).code == 0


# ------------------------------------------------------------------------------- decompression bombs


def _png_claiming(width: int, height: int) -> bytes:
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = zlib.compress(b"\0" * (1 + (width + 7) // 8) * height, 9)
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", rows) + chunk(b"IEND", b"")


@pytest.mark.parametrize("side", [20000, 12000])
def test_a_png_bomb_in_the_output_root_is_never_inflated(
    cli: Callable[..., Result], make_project: Callable[..., Path], side: int
) -> None:
    # A few kB claiming 144 or 400 million pixels where an output was: check and build must see a
    # modified file, not decode it (Pillow's guard stops only the larger one, and that as a crash).
    project = make_project()
    build_json(cli, project)
    bomb = _png_claiming(side, side)
    assert len(bomb) < 100_000
    (project / "assets/hero.png").write_bytes(bomb)
    check = cli("check", "-C", project)
    assert check.code == 1 and "assets/hero.png is modified" in check.out, check
    assert "internal error" not in check.err and "Traceback" not in check.err
    result = cli("build", "-C", project)
    assert result.code == 1 and "would overwrite assets/hero.png" in result.out + result.err, result
    assert (project / "assets/hero.png").read_bytes() == bomb


# ------------------------------------------------------------------------- linked local-state folders


@pytest.mark.parametrize(
    "link",
    [".pixelbuild", ".pixelbuild/cache", ".pixelbuild/cache/blobs", ".pixelbuild/state", ".pixelbuild/cache/actions"],
)
def test_linked_state_folders_are_refused_and_nothing_outside_is_touched(
    cli: Callable[..., Result], make_project: Callable[..., Path], tmp_path: Path, link: str
) -> None:
    project = make_project()
    build_json(cli, project)
    # Outside: a copy of what the link replaces (what an archive pointing it at a real folder would find).
    outside = tmp_path / "outside-state"
    (project / link).rename(outside)
    (project / link).symlink_to(outside)
    before = {path: path.read_bytes() for path in outside.rglob("*") if path.is_file()}
    assert before
    # (An unchanged project's no-op build reads the stamp and writes nothing: it may still say up to date.)
    (project / "pixelbuild.yaml").write_text(BASIC_MANIFEST.replace("blue knight", "red knight"))
    for command in ("build", "check", "plan", "gc"):
        result = cli(command, "-C", project)
        assert result.code == 2, (command, result)
        assert "is a symbolic link" in result.err and result.err.count("\n") == 1, result.err
    assert cli("gc", "-C", project, "--keep-days", "0").code == 2
    after = {path: path.read_bytes() for path in outside.rglob("*") if path.is_file()}
    assert after == before  # nothing written, nothing deleted through the link
    (project / link).unlink()
    assert cli("build", "-C", project).code == 0


def test_gc_never_follows_a_linked_shard_or_blob(
    cli: Callable[..., Result], make_project: Callable[..., Path], tmp_path: Path
) -> None:
    project = make_project()
    build_json(cli, project)
    outside = tmp_path / "outside-shard"
    outside.mkdir()
    precious = outside / ("ab" * 16)
    precious.write_bytes(b"precious")
    blobs = project / ".pixelbuild/cache/blobs"
    (blobs / "ee").symlink_to(outside)  # a shard that is a link
    (blobs / "ff").mkdir(exist_ok=True)
    (blobs / "ff" / ("ff" * 16)).symlink_to(precious)  # a blob that is a link
    (project / "pixelbuild.yaml").write_text("version: 1\nsprites: []\n")  # everything becomes garbage
    assert cli("build", "-C", project).code == 0
    result = cli("gc", "-C", project, "--keep-days", "0")
    assert result.code == 0, result
    assert precious.read_bytes() == b"precious" and sorted(outside.iterdir()) == [precious]
    assert not [path for path in blobs.rglob("*") if path.is_file() and not path.is_symlink()]


def test_a_linked_ledger_folder_is_refused(
    cli: Callable[..., Result], make_project: Callable[..., Path], tmp_path: Path
) -> None:
    project = make_project()
    outside = tmp_path / "outside-ledger"
    outside.mkdir()
    (project / ".pixelbuild").mkdir()
    (project / ".pixelbuild/comfyui").symlink_to(outside)
    result = cli("build", "-C", project)
    assert result.code == 2 and ".pixelbuild/comfyui is a symbolic link" in result.err, result
    assert list(outside.iterdir()) == []


# ------------------------------------------------------------------ FIFOs and deep nesting in local state


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="FIFOs are POSIX")
@pytest.mark.parametrize(
    "name", [".pixelbuild/state/noop.json", ".pixelbuild/journal.jsonl", ".pixelbuild/state/files.json"]
)
@pytest.mark.timeout(30)
def test_a_fifo_in_place_of_a_state_file_never_hangs_a_command(
    cli: Callable[..., Result], make_project: Callable[..., Path], name: str
) -> None:
    # An archive can carry a FIFO: opening it to read blocks until someone writes, i.e. forever.
    project = make_project()
    build_json(cli, project)
    path = project / name
    path.unlink(missing_ok=True)
    os.mkfifo(path)
    for command in ("check", "plan"):
        assert cli(command, "-C", project).code == 0, command
    (project / "pixelbuild.yaml").write_text(BASIC_MANIFEST.replace("blue knight", "red knight"))
    assert cli("build", "-C", project).code == 0
    assert cli("check", "-C", project).code == 0


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="FIFOs are POSIX")
@pytest.mark.timeout(30)
def test_a_fifo_in_place_of_the_lock_or_manifest_is_a_clear_error(
    cli: Callable[..., Result], make_project: Callable[..., Path]
) -> None:
    project = make_project()
    build_json(cli, project)
    (project / "pixelbuild.lock").unlink()
    os.mkfifo(project / "pixelbuild.lock")
    result = cli("check", "-C", project)
    assert result.code == 2 and "pixelbuild.lock" in result.err and "not a regular file" in result.err, result
    (project / "pixelbuild.lock").unlink()
    (project / "pixelbuild.yaml").unlink()
    os.mkfifo(project / "pixelbuild.yaml")
    result = cli("validate", "-C", project)
    assert result.code == 2 and "not a regular file" in result.err, result


def test_a_deeply_nested_lock_is_a_located_error(cli: Callable[..., Result], make_project: Callable[..., Path]) -> None:
    project = make_project()
    (project / "pixelbuild.lock").write_text("[" * 100_000 + "]" * 100_000)
    for command in ("build", "plan", "check"):
        result = cli(command, "-C", project)
        assert result.code == 2 and "pixelbuild.lock:1:" in result.err and "nests deeper" in result.err, result
    journal = project / ".pixelbuild/journal.jsonl"
    journal.parent.mkdir(exist_ok=True)
    journal.write_text("[" * 100_000 + "]" * 100_000 + '\n{"op": "remove", "id": "ghost"}\n')
    (project / "pixelbuild.lock").unlink()
    result = cli("build", "-C", project)
    assert result.code == 0 and "damaged record" in result.err, result


@pytest.mark.parametrize("command", ["gallery", "explore"])
def test_a_linked_review_folder_is_refused(
    cli: Callable[..., Result], make_project: Callable[..., Path], tmp_path: Path, command: str
) -> None:
    project = make_project()
    build_json(cli, project)
    outside = tmp_path / "outside-pages"
    outside.mkdir()
    (outside / "index.html").write_text("precious")
    (project / ".pixelbuild" / command).symlink_to(outside)
    args = ("explore", "hero", "--seeds", "1") if command == "explore" else (command,)
    result = cli(*args, "-C", project)
    assert result.code == 2 and f".pixelbuild/{command} is a symbolic link" in result.err, result
    assert sorted(path.name for path in outside.iterdir()) == ["index.html"]
    assert (outside / "index.html").read_text() == "precious"
