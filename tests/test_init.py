"""``pixelbuild init`` in a game repository: a starter that builds, and nothing present is touched."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import jsonschema
import pytest
import yaml

from pixelbuild.local.layout import ProjectPaths
from pixelbuild.scaffold import SCHEMA_FILES
from tests.conftest import REPO, Result

needs_git = pytest.mark.skipif(shutil.which("git") is None, reason="git is needed")
GIT_ENV = {**os.environ, "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1"}


def git(repo: Path, *args: str) -> str:
    result = subprocess.run(["git", *args], cwd=repo, env=GIT_ENV, capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.fixture
def game(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty git repository (git configuration isolated from the user's)."""
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", os.devnull)
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    root = tmp_path / "game"
    root.mkdir()
    if shutil.which("git"):
        git(root, "init", "-q")
    return root


def files(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and ".git" not in p.relative_to(root).parts
    }


@needs_git
def test_init_in_an_empty_repository_then_build_then_check(cli: Callable[..., Result], game: Path) -> None:
    result = cli("init", "-C", game)
    assert result.code == 0, result.err
    assert 'git config merge.pixelbuild.driver "pixelbuild merge-lock %O %A %B"' in result.out
    assert (game / ".gitignore").read_text() == ".pixelbuild/\n"
    assert (game / ".gitattributes").read_text() == "pixelbuild.lock merge=pixelbuild\n"
    assert cli("validate", "-C", game).code == 0
    build = cli("build", "-C", game, "--json")
    assert build.code == 0, build.err
    assert build.json["generated"] == 2 and build.json["packed"] == 1
    check = cli("check", "-C", game)
    assert check.code == 0, check.out
    # What a game repository commits after init + build: nothing from the local state.
    git(game, "add", "-A")
    committed = git(game, "diff", "--cached", "--name-only").split()
    assert not [name for name in committed if name.startswith(".pixelbuild/")]
    assert {"pixelbuild.yaml", "pixelbuild.lock", ".gitattributes", ".pixelbuild-schema/manifest.schema.json"} <= set(
        committed
    )


def test_the_schema_line_points_at_the_written_schemas(cli: Callable[..., Result], game: Path) -> None:
    assert cli("init", "-C", game).code == 0
    text = (game / "pixelbuild.yaml").read_text()
    match = re.match(r"# yaml-language-server: \$schema=(\S+)\n", text)
    assert match, text.splitlines()[0]
    schema_path = game / match.group(1)  # relative to the manifest, as editors resolve it
    for name in SCHEMA_FILES:
        assert (schema_path.parent / name).read_bytes() == (REPO / "schemas" / name).read_bytes()
    # The manifest and the schema its line names agree (post-ops resolved from the same folder).
    from referencing import Registry, Resource

    schemas = [json.loads((schema_path.parent / name).read_text()) for name in SCHEMA_FILES]
    registry = Registry().with_resources((s["$id"], Resource.from_contents(s)) for s in schemas)
    validator = jsonschema.Draft202012Validator(schemas[0], registry=registry)
    assert list(validator.iter_errors(yaml.safe_load(text))) == []
    broken = yaml.safe_load(text)
    broken["sprites"][0]["promt"] = "typo"
    assert list(validator.iter_errors(broken))


@needs_git
def test_init_never_overwrites_and_reports_what_it_left(cli: Callable[..., Result], game: Path) -> None:
    (game / "pixelbuild.yaml").write_text("version: 1\nsprites: []\n")
    (game / ".gitignore").write_text("node_modules/\n/.pixelbuild/")  # no final newline
    (game / ".gitattributes").write_text("*.png binary\n")
    (game / ".pixelbuild-schema").mkdir()
    (game / ".pixelbuild-schema/lock.schema.json").write_text("{}")
    before = files(game)
    result = cli("init", "-C", game, "--json")
    assert result.code == 0, result.err
    after = files(game)
    assert {name: after[name] for name in before} == {
        **before,
        ".gitattributes": b"*.png binary\npixelbuild.lock merge=pixelbuild\n",
    }
    kept = "\n".join(result.json["kept"])
    assert "pixelbuild.yaml: already present" in kept
    assert ".gitignore: already has '.pixelbuild/'" in kept
    assert ".pixelbuild-schema/lock.schema.json: already present (differs" in kept
    assert sorted(set(after) - set(before)) == [
        ".pixelbuild-schema/manifest.schema.json",
        ".pixelbuild-schema/post-ops.schema.json",
    ]
    # A second run creates nothing at all.
    again = cli("init", "-C", game, "--json").json
    assert again["created"] == []
    assert files(game) == after


@needs_git
def test_gitignore_without_a_final_newline_gets_the_line_on_its_own(cli: Callable[..., Result], game: Path) -> None:
    (game / ".gitignore").write_text("node_modules/")
    assert cli("init", "-C", game).code == 0
    assert (game / ".gitignore").read_text() == "node_modules/\n.pixelbuild/\n"


@needs_git
def test_git_config_is_applied_once_and_never_replaced(cli: Callable[..., Result], game: Path) -> None:
    result = cli("init", "-C", game, "--git-config", "--json")
    assert result.code == 0, result.err
    assert result.json["git_config_applied"] is True and result.json["git_config"] == []
    assert git(game, "config", "--get", "merge.pixelbuild.driver") == "pixelbuild merge-lock %O %A %B\n"
    assert git(game, "config", "--get", "merge.pixelbuild.name") == "pixelbuild lock merge\n"
    git(game, "config", "merge.pixelbuild.driver", "/opt/bin/pixelbuild merge-lock %O %A %B")
    again = cli("init", "-C", game, "--git-config", "--json").json
    assert any("left as '/opt/bin/pixelbuild merge-lock %O %A %B'" in item for item in again["kept"])
    assert git(game, "config", "--get", "merge.pixelbuild.driver") == "/opt/bin/pixelbuild merge-lock %O %A %B\n"


def test_git_config_outside_a_repository_is_an_error_that_writes_nothing(
    cli: Callable[..., Result], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))
    folder = tmp_path / "plain"
    folder.mkdir()
    result = cli("init", "-C", folder, "--git-config")
    assert result.code == 2
    assert "not in a git repository" in result.err
    assert list(folder.iterdir()) == []


def test_another_manifest_gets_its_own_lock_routed_to_the_driver(cli: Callable[..., Result], game: Path) -> None:
    assert cli("init", "-C", game, "--manifest", "tiles.yaml").code == 0
    lock_name = ProjectPaths.for_manifest(game / "tiles.yaml").lock.name
    assert f"{lock_name} merge=pixelbuild\n" in (game / ".gitattributes").read_text()
    assert cli("validate", "-C", game, "--manifest", "tiles.yaml").code == 0


def test_server_with_placeholder_is_a_usage_error(cli: Callable[..., Result], game: Path) -> None:
    result = cli("init", "-C", game, "--backend", "placeholder", "--server", "http://127.0.0.1:1")
    assert result.code == 2
    assert not (game / "pixelbuild.yaml").exists()


def test_a_merge_setting_of_its_own_for_the_lock_is_left(cli: Callable[..., Result], game: Path) -> None:
    (game / ".gitattributes").write_text("pixelbuild.lock -merge\n")
    result = cli("init", "-C", game, "--json")
    assert result.code == 0
    assert (game / ".gitattributes").read_text() == "pixelbuild.lock -merge\n"
    assert any("has its own merge setting for the lock ('pixelbuild.lock -merge')" in k for k in result.json["kept"])


def test_a_symlinked_schema_folder_is_not_written_through(
    cli: Callable[..., Result], game: Path, tmp_path: Path
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (game / ".pixelbuild-schema").symlink_to(elsewhere, target_is_directory=True)
    result = cli("init", "-C", game, "--json")
    assert result.code == 0
    assert list(elsewhere.iterdir()) == []
    assert any(".pixelbuild-schema: not a plain folder" in item for item in result.json["kept"])


def test_the_readme_shows_what_init_prints(cli: Callable[..., Result], game: Path) -> None:
    readme = (REPO / "README.md").read_text()
    shown = readme.split("$ cd my-game && pixelbuild init\n", 1)[1].split("$ pixelbuild build", 1)[0]
    assert cli("init", "-C", game).out == shown
