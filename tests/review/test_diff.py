"""``pixelbuild diff``: real git repositories, the old side read from git, hostile old revisions."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator
from PIL import Image
from referencing import Registry, Resource

from tests.conftest import REPO, Result
from tests.review.helpers import built, commit_all, edit, git, git_project

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")


@pytest.fixture(scope="module")
def base_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One built and committed project, copied by each test (building it costs a second)."""
    return git_project(tmp_path_factory.mktemp("diffbase") / "repo")


@pytest.fixture
def repo(base_repo: Path, tmp_path: Path) -> Path:
    """A private copy of the base repository (history, assets and cache included)."""
    target = tmp_path / "repo"
    shutil.copytree(base_repo, target, symlinks=True)
    # The no-op stamp names the original's absolute paths: a copy must not trust it.
    (target / ".pixelbuild/state/noop.json").unlink()
    return target


def _schema() -> Draft202012Validator:
    resources = []
    for path in (REPO / "schemas").glob("*.schema.json"):
        schema = json.loads(path.read_text())
        resources.append((schema["$id"], Resource.from_contents(schema)))
    diff_schema = json.loads((REPO / "schemas/diff.schema.json").read_text())
    Draft202012Validator.check_schema(diff_schema)
    return Draft202012Validator(diff_schema, registry=Registry().with_resources(resources))


SCHEMA = _schema()


def diff(cli: Callable[..., Result], repo: Path, *args: str) -> tuple[Result, dict]:
    """``pixelbuild diff --json``: its document, which schemas/diff.schema.json must accept."""
    result = cli("diff", "-C", repo, "--json", *args)
    assert result.code in (0, 1), result.err
    document = json.loads(result.out)
    assert [error.message for error in SCHEMA.iter_errors(document)] == []
    assert document["changed"] == bool(document["sprites"] or document["atlases"])
    return result, document


def by_id(document: dict) -> dict[str, dict]:
    return {entry["id"]: entry for entry in document["sprites"]}


def test_no_changes_exits_0_even_with_exit_code(cli: Callable[..., Result], repo: Path) -> None:
    result, document = diff(cli, repo, "--exit-code")
    assert result.code == 0
    assert document["changed"] is False and document["sprites"] == [] and document["atlases"] == []
    assert Path(document["index"]).is_file() and Path(document["contact_sheet"]).is_file()
    text = cli("diff", "-C", repo)
    assert text.code == 0 and "no changes since HEAD" in text.out


def test_reprompt_shows_old_and_new_values_and_exit_code(cli: Callable[..., Result], repo: Path) -> None:
    edit(repo, "prompt: green slime", "prompt: red slime")
    built(repo)
    result, document = diff(cli, repo)
    assert result.code == 0  # changes, but no --exit-code
    slime = by_id(document)["monsters/slime"]
    assert slime["change"] == "changed"
    assert [(f["name"], f["old"], f["new"]) for f in slime["fields"]] == [("prompt", "green slime", "red slime")]
    before, after = Image.open(slime["before"]), Image.open(slime["after"])
    assert before.size == after.size and before.tobytes() != after.tobytes()
    assert set(by_id(document)) == {"monsters/slime"}
    atlas = document["atlases"][0]
    assert atlas["id"] == "sprites" and atlas["change"] == "changed" and atlas["moved"] == []
    assert atlas["redrawn"] == ["monsters/slime"]
    assert cli("diff", "-C", repo, "--exit-code").code == 1
    page = Path(document["index"]).read_text()
    assert "green slime" in page and "red slime" in page


def test_post_only_change_names_the_post_chain(cli: Callable[..., Result], repo: Path) -> None:
    edit(repo, "    - remove_background: {mode: flood, tolerance: 40}\n", "")
    built(repo)
    _result, document = diff(cli, repo)
    changes = by_id(document)
    assert set(changes) == {"characters/hero", "monsters/slime", "items/coin", "monsters/bat"}
    for change in changes.values():
        assert [f["name"] for f in change["fields"]] == ["post"]
        assert "remove_background" in change["fields"][0]["old"]
        assert "remove_background" not in change["fields"][0]["new"]


def test_added_and_removed_sprites(cli: Callable[..., Result], repo: Path) -> None:
    edit(repo, "  - id: items/coin\n    prompt: gold coin\n", "  - id: items/gem\n    prompt: red gem\n")
    built(repo)
    _result, document = diff(cli, repo)
    changes = by_id(document)
    assert changes["items/coin"]["change"] == "removed"
    assert changes["items/coin"]["before"] is not None and changes["items/coin"]["after"] is None
    assert changes["items/gem"]["change"] == "added"
    assert changes["items/gem"]["before"] is None and changes["items/gem"]["after"] is not None
    atlas = document["atlases"][0]
    assert atlas["added"] == ["items/gem"] and atlas["removed"] == ["items/coin"]


def test_renamed_output(cli: Callable[..., Result], repo: Path) -> None:
    edit(repo, "    prompt: gold coin\n", "    prompt: gold coin\n    output: loot/coin.png\n")
    built(repo)
    _result, document = diff(cli, repo)
    coin = by_id(document)["items/coin"]
    assert coin["output"] == {"old": "items/coin.png", "new": "loot/coin.png"}
    assert any("output moved" in note for note in coin["notes"])
    assert "pixels unchanged" in coin["notes"]
    assert Image.open(coin["before"]).tobytes() == Image.open(coin["after"]).tobytes()


def test_atlas_repack_lists_members_that_moved(cli: Callable[..., Result], repo: Path) -> None:
    edit(repo, "    fps: 12\n", "    fps: 12\n    padding: 3\n")
    built(repo)
    _result, document = diff(cli, repo)
    assert document["sprites"] == []
    atlas = document["atlases"][0]
    assert atlas["change"] == "changed" and atlas["added"] == [] and atlas["removed"] == []
    old = json.loads(git(repo, "show", "HEAD:assets/atlases/sprites.json"))["frames"]
    new = json.loads((repo / "assets/atlases/sprites.json").read_text())["frames"]
    moved = sorted(
        {
            name.rsplit("/", 1)[0] if name.startswith("monsters/bat/") else name
            for name in old
            if old[name]["frame"] != new[name]["frame"]
        }
    )
    assert moved and atlas["moved"] == moved
    page = Path(document["index"]).read_text()
    assert page.count('class="moved"') or page.count("class=moved")


def test_old_side_comes_from_git_not_the_working_tree(cli: Callable[..., Result], repo: Path) -> None:
    committed = (repo / "assets/items/coin.png").read_bytes()
    edit(repo, "prompt: gold coin", "prompt: silver coin")
    built(repo)
    _result, document = diff(cli, repo)
    assert Path(by_id(document)["items/coin"]["before"]).read_bytes() == committed


def test_compares_with_any_revision(cli: Callable[..., Result], repo: Path) -> None:
    edit(repo, "prompt: gold coin", "prompt: silver coin")
    built(repo)
    commit_all(repo, "silver")
    assert diff(cli, repo)[1]["changed"] is False
    _result, document = diff(cli, repo, "HEAD~1")
    assert set(by_id(document)) == {"items/coin"}
    assert document["commit"] == git(repo, "rev-parse", "HEAD~1").strip()


def test_contact_sheet_is_a_small_png(cli: Callable[..., Result], repo: Path) -> None:
    edit(repo, "prompt: gold coin", "prompt: silver coin")
    built(repo)
    _result, document = diff(cli, repo)
    sheet = Image.open(document["contact_sheet"])
    assert sheet.format == "PNG" and sheet.width <= 1200
    assert Path(document["contact_sheet"]).stat().st_size < 100_000


def test_bad_revision_and_not_a_repository(cli: Callable[..., Result], repo: Path, tmp_path: Path) -> None:
    result = cli("diff", "-C", repo, "no-such-branch")
    assert result.code == 2 and "'no-such-branch' is not a commit" in result.err
    assert "Traceback" not in result.err
    result = cli("diff", "-C", repo, "--", "--output=x")  # never handed to git as an option
    assert result.code == 2 and "is not a git revision" in result.err
    outside = tmp_path / "plain"
    shutil.copytree(repo, outside)
    shutil.rmtree(outside / ".git")
    result = cli("diff", "-C", outside)
    assert result.code == 2 and "not inside a git repository" in result.err


def _commit_hostile_lock(repo: Path, lock: dict) -> None:
    (repo / "pixelbuild.lock").write_text(json.dumps(lock))
    commit_all(repo, "hostile")


def test_hostile_old_lock_paths_are_not_followed(cli: Callable[..., Result], repo: Path, tmp_path: Path) -> None:
    secret = tmp_path / "secret.png"
    secret.write_bytes((repo / "assets/items/coin.png").read_bytes())
    good = (repo / "pixelbuild.lock").read_bytes()
    lock = json.loads(good)
    lock["sprites"]["items/coin"]["outputs"][0]["path"] = "../../secret.png"
    lock["sprites"]["monsters/slime"]["outputs"][0]["path"] = str(secret)
    # A symlink committed where an asset should be: git stores the link text, never its target.
    (repo / "assets/characters/hero.png").unlink()
    (repo / "assets/characters/hero.png").symlink_to(secret)
    _commit_hostile_lock(repo, lock)
    (repo / "assets/characters/hero.png").unlink()
    (repo / "pixelbuild.lock").write_bytes(good)
    built(repo)
    _result, document = diff(cli, repo)
    changes = by_id(document)
    # The crafted entries are dropped (so the sprites read as added), never read from outside.
    assert changes["items/coin"]["change"] == "added" and changes["items/coin"]["before"] is None
    assert changes["monsters/slime"]["change"] == "added"
    assert changes.get("characters/hero", {}).get("before") is None


def test_damaged_old_lock_is_one_clear_error(cli: Callable[..., Result], repo: Path) -> None:
    (repo / "pixelbuild.lock").write_text("[" * 100_000)
    commit_all(repo, "damaged")
    git(repo, "checkout", "-q", "HEAD~1", "--", "pixelbuild.lock")
    result = cli("diff", "-C", repo)
    assert result.code == 2
    assert "HEAD:pixelbuild.lock" in result.err and "Traceback" not in result.err
    assert result.err.count("\n") == 1


def test_old_manifest_that_does_not_resolve_still_diffs(cli: Callable[..., Result], repo: Path) -> None:
    (repo / "pixelbuild.yaml").write_text((repo / "pixelbuild.yaml").read_text() + "bogus: [\n")
    commit_all(repo, "broken manifest")
    git(repo, "checkout", "-q", "HEAD~1", "--", "pixelbuild.yaml")
    edit(repo, "prompt: gold coin", "prompt: silver coin")
    built(repo)
    _result, document = diff(cli, repo)
    assert any("could not be resolved" in note for note in document["notes"])
    coin = by_id(document)["items/coin"]
    assert coin["fields"][0]["name"] == "prompt" and coin["fields"][0]["old"] == "?"


def test_old_manifest_alias_bomb_is_not_expanded(cli: Callable[..., Result], repo: Path) -> None:
    bomb = ['a0: &a0 ["x", "x", "x", "x", "x", "x", "x", "x", "x", "x"]']
    bomb += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 10)]
    good = (repo / "pixelbuild.yaml").read_text()
    (repo / "pixelbuild.yaml").write_text(
        good.replace("sprites:\n", "x-bomb:\n  " + "\n  ".join(bomb) + "\nsprites:\n", 1)
    )
    commit_all(repo, "bomb")
    (repo / "pixelbuild.yaml").write_text(good)
    built(repo)
    result, document = diff(cli, repo)
    assert result.code == 0
    assert any("YAML nodes" in note for note in document["notes"])


def test_asset_edited_by_hand_shows_although_the_lock_agrees(cli: Callable[..., Result], repo: Path) -> None:
    coin = repo / "assets/items/coin.png"
    image = Image.open(coin).convert("RGBA")
    image.putpixel((0, 0), (255, 0, 255, 255))
    image.save(coin)
    _result, document = diff(cli, repo)
    change = by_id(document)["items/coin"]
    assert change["change"] == "changed" and change["fields"] == []
    assert any("modified on disk" in note for note in change["notes"])
    assert Image.open(change["after"]).convert("RGBA").getpixel((0, 0)) == (255, 0, 255, 255)


def test_project_in_a_subfolder_against_a_revision_before_pixelbuild(
    cli: Callable[..., Result], tmp_path: Path
) -> None:
    from tests.review.helpers import MANIFEST, write_project

    repo = tmp_path / "game"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    (repo / "README").write_text("a game\n")
    commit_all(repo, "before pixelbuild")
    project = write_project(repo / "art" / "sprites", MANIFEST)
    built(project)
    commit_all(repo, "art")
    edit(project, "prompt: gold coin", "prompt: silver coin")
    built(project)
    _result, document = diff(cli, project)
    assert set(by_id(document)) == {"items/coin"}
    assert by_id(document)["items/coin"]["fields"][0]["old"] == "gold coin"
    _result, document = diff(cli, project, "HEAD~1")
    assert {change["change"] for change in document["sprites"]} == {"added"}
    assert any("no readable pixelbuild.lock" in note for note in document["notes"])


def test_diff_schema_rejects_what_the_command_never_prints(cli: Callable[..., Result], repo: Path) -> None:
    edit(repo, "prompt: gold coin", "prompt: silver coin")
    built(repo)
    _result, document = diff(cli, repo)
    bad = json.loads(json.dumps(document))
    bad["sprites"][0]["change"] = "renamed"
    assert list(SCHEMA.iter_errors(bad))
    bad = json.loads(json.dumps(document))
    del bad["sprites"][0]["fields"][0]["old"]
    assert list(SCHEMA.iter_errors(bad))
