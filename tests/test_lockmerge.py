"""The lock's git merge driver, through real ``git merge`` in temporary repositories.

The driver is enabled exactly as the README says: the ``.gitattributes`` line and the ``git config`` line,
with ``pixelbuild`` found on PATH (this environment's script), so what is tested is what users run.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from pixelbuild.lock import AtlasEntry, Lock, LockEntry, OutputRecord, parse_lock, render_lock
from pixelbuild.lockmerge import merge_locks
from tests.conftest import Result

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="git is needed for merges")

BIN = Path(sys.executable).parent
GITATTRIBUTES = "pixelbuild.lock merge=pixelbuild\n"
DRIVER = "pixelbuild merge-lock %O %A %B"

# One field per line with an unchanged line between prompt and seed, so that git merges manifest edits
# of one sprite's prompt on one branch and its seed on the other without a conflict.
MANIFEST = """\
version: 1
project:
  output: assets
defaults:
  size: 32
  post:
    - resize: {size: 8, filter: box}
sprites:
  - id: hero
    prompt: blue knight
    negative_prompt: blurry
    seed: 1
  - id: items/coin
    prompt: gold coin
    negative_prompt: blurry
    seed: 2
  - id: slime
    prompt: green slime
    negative_prompt: blurry
    seed: 3
"""
ATLAS = """\
atlases:
  - id: sprites
    sprites: [hero, slime]
    formats: [texturepacker-hash]
"""


def git(repo: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "GIT_CONFIG_GLOBAL": os.devnull,
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.com",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.com",
    }
    result = subprocess.run(["git", *args], cwd=repo, env=env, capture_output=True, text=True, timeout=60)
    if check and result.returncode != 0:
        raise AssertionError(f"git {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result


def edit(repo: Path, old: str, new: str) -> None:
    manifest = repo / "pixelbuild.yaml"
    text = manifest.read_text()
    assert old in text
    manifest.write_text(text.replace(old, new, 1))


def commit_build(cli: Callable[..., Result], repo: Path, message: str) -> None:
    result = cli("build", "-C", repo)
    assert result.code == 0, result.out + result.err
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", message)


def problems(cli: Callable[..., Result], repo: Path) -> list[tuple[str, str]]:
    result = cli("check", "-C", repo, "--json")
    return [(p["kind"], p["subject"]) for p in result.json["problems"]]


def unmerged(repo: Path) -> list[str]:
    return sorted(git(repo, "diff", "--name-only", "--diff-filter=U").stdout.split())


@pytest.fixture
def repo(tmp_path: Path, cli: Callable[..., Result]) -> Callable[..., Path]:
    """A git repository with a built project on ``main`` and the merge driver enabled (or not)."""

    def make(manifest: str = MANIFEST, *, driver: bool = True) -> Path:
        root = tmp_path / "game"
        root.mkdir()
        git(root, "init", "-q", "-b", "main")
        (root / "pixelbuild.yaml").write_text(manifest)
        if driver:  # as a team sets it up: init writes the attribute line and, asked to, the git config
            assert (BIN / "pixelbuild").exists(), "the pixelbuild script must be installed beside this python"
            assert cli("init", "-C", root, "--git-config").code == 0
            assert (root / ".gitattributes").read_text() == GITATTRIBUTES
            assert git(root, "config", "--get", "merge.pixelbuild.driver").stdout == DRIVER + "\n"
        commit_build(cli, root, "art")
        return root

    return make


def merge(repo: Path, branch: str) -> subprocess.CompletedProcess[str]:
    return git(repo, "merge", "--no-edit", branch, check=False)


def test_branches_changing_different_sprites_merge_cleanly(
    repo: Callable[..., Path], cli: Callable[..., Result]
) -> None:
    root = repo()
    git(root, "checkout", "-q", "-b", "other")
    edit(root, "green slime", "red slime")
    commit_build(cli, root, "slime")
    git(root, "checkout", "-q", "main")
    edit(root, "blue knight", "gold knight")
    commit_build(cli, root, "hero")

    result = merge(root, "other")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no conflict" in result.stdout + result.stderr
    assert problems(cli, root) == []
    assert cli("plan", "-C", root).out.startswith("nothing to do")


def test_a_sprite_changed_on_both_branches_is_stale_then_rebuilt_without_force(
    repo: Callable[..., Path], cli: Callable[..., Result]
) -> None:
    root = repo()
    git(root, "checkout", "-q", "-b", "other")
    edit(root, "seed: 1", "seed: 11")
    commit_build(cli, root, "hero seed")
    git(root, "checkout", "-q", "main")
    edit(root, "blue knight", "gold knight")
    edit(root, "green slime", "red slime")
    commit_build(cli, root, "hero prompt, slime")

    result = merge(root, "other")
    # The lock merged by itself; only the image, changed on both sides, waits for a hand.
    assert unmerged(root) == ["assets/hero.png"]
    assert "1 entry changed on both branches: hero (kept as the image" in result.stdout + result.stderr
    lock = parse_lock((root / "pixelbuild.lock").read_bytes(), "pixelbuild.lock")
    assert sorted(lock.sprites) == ["hero", "items/coin", "slime"]
    git(root, "checkout", "--ours", "assets/hero.png")
    git(root, "add", "assets/hero.png")
    git(root, "commit", "-q", "--no-edit")

    assert problems(cli, root) == [("stale", "hero")]
    build = cli("build", "-C", root, "--json").json
    assert (build["generated"], build["up_to_date"]) == (1, 2)
    assert problems(cli, root) == []
    assert "gold knight" in (root / "pixelbuild.yaml").read_text()
    assert "seed: 11" in (root / "pixelbuild.yaml").read_text()


def test_without_the_driver_the_same_merge_conflicts_in_the_lock(
    repo: Callable[..., Path], cli: Callable[..., Result]
) -> None:
    root = repo(driver=False)
    git(root, "checkout", "-q", "-b", "other")
    edit(root, "seed: 1", "seed: 11")
    commit_build(cli, root, "hero seed")
    git(root, "checkout", "-q", "main")
    edit(root, "blue knight", "gold knight")
    commit_build(cli, root, "hero prompt")
    merge(root, "other")
    assert "pixelbuild.lock" in unmerged(root)


def test_one_side_deleting_a_sprite(repo: Callable[..., Path], cli: Callable[..., Result]) -> None:
    root = repo()
    git(root, "checkout", "-q", "-b", "other")
    edit(root, "blue knight", "gold knight")
    commit_build(cli, root, "hero")
    git(root, "checkout", "-q", "main")
    edit(root, "  - id: items/coin\n    prompt: gold coin\n    negative_prompt: blurry\n    seed: 2\n", "")
    commit_build(cli, root, "no coin")

    result = merge(root, "other")
    assert result.returncode == 0, result.stdout + result.stderr
    lock = json.loads((root / "pixelbuild.lock").read_text())
    assert sorted(lock["sprites"]) == ["hero", "slime"]
    assert not (root / "assets/items/coin.png").exists()
    assert problems(cli, root) == []


def test_deleted_on_one_side_and_changed_on_the_other_keeps_the_changed_entry(
    repo: Callable[..., Path], cli: Callable[..., Result]
) -> None:
    root = repo()
    git(root, "checkout", "-q", "-b", "other")
    edit(root, "gold coin", "silver coin")
    commit_build(cli, root, "silver coin")
    git(root, "checkout", "-q", "main")
    edit(root, "  - id: items/coin\n    prompt: gold coin\n    negative_prompt: blurry\n    seed: 2\n", "")
    commit_build(cli, root, "no coin")

    result = merge(root, "other")
    assert "1 entry changed on both branches: items/coin (kept" in result.stdout + result.stderr
    assert "pixelbuild.lock" not in unmerged(root)
    # The team keeps the silver coin: the manifest and image from the other branch.
    git(root, "checkout", "--theirs", "pixelbuild.yaml")
    git(root, "checkout", "--theirs", "assets/items/coin.png")
    git(root, "add", "-A")
    git(root, "commit", "-q", "--no-edit")
    # The lock kept the entry of the image git left (the silver coin): all three agree, nothing to redo.
    assert problems(cli, root) == []
    assert cli("plan", "-C", root).out.startswith("nothing to do")


def test_an_atlas_repacked_on_both_branches_is_stale_then_repacked(
    repo: Callable[..., Path], cli: Callable[..., Result]
) -> None:
    root = repo(MANIFEST + ATLAS)
    git(root, "checkout", "-q", "-b", "other")
    edit(root, "green slime", "red slime")
    commit_build(cli, root, "slime")
    git(root, "checkout", "-q", "main")
    edit(root, "blue knight", "gold knight")
    commit_build(cli, root, "hero")

    result = merge(root, "other")
    assert "1 entry changed on both branches: atlas sprites (kept" in result.stdout + result.stderr
    assert "pixelbuild.lock" not in unmerged(root)
    for name in unmerged(root):
        git(root, "checkout", "--ours", name)
    git(root, "add", "-A")
    git(root, "commit", "-q", "--no-edit")
    assert problems(cli, root) == [("stale", "atlas sprites")]
    build = cli("build", "-C", root, "--json").json
    assert (build["generated"], build["packed"]) == (0, 1)
    assert problems(cli, root) == []


def test_a_malformed_lock_on_a_branch_is_a_conflict_not_a_crash(
    repo: Callable[..., Path], cli: Callable[..., Result]
) -> None:
    root = repo()
    ours = (root / "pixelbuild.lock").read_bytes()
    git(root, "checkout", "-q", "-b", "other")
    (root / "pixelbuild.lock").write_text('{"version": 1, "sprites": {"hero": {"post_key": 5}}}\n')
    git(root, "commit", "-q", "-am", "broken lock")
    git(root, "checkout", "-q", "main")
    edit(root, "blue knight", "gold knight")
    commit_build(cli, root, "hero")
    ours = (root / "pixelbuild.lock").read_bytes()

    result = merge(root, "other")
    assert result.returncode != 0
    assert unmerged(root) == ["pixelbuild.lock"]
    assert "the branch being merged" in result.stdout + result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    assert (root / "pixelbuild.lock").read_bytes() == ours


# --- the driver on its own: hostile inputs ------------------------------------------------------------


def _h(text: str, digits: int = 32) -> str:
    """A well-formed digest (the lock parser checks their shape) that stands for ``text``."""
    return hashlib.sha256(text.encode()).hexdigest()[:digits]


def _lock_bytes(**prompts: str) -> bytes:
    sprites = {
        sprite_id: LockEntry(
            generations=((_h(f"g-{prompt}"), 1),),
            post_key=_h(f"p-{prompt}"),
            backend={"name": "placeholder"},
            fields={"prompt": _h(prompt, 16)},
            outputs=(OutputRecord(f"{sprite_id}.png", _h(f"f-{prompt}"), _h(f"x-{prompt}"), 8, 8),),
        )
        for sprite_id, prompt in prompts.items()
    }
    return render_lock(Lock(sprites))


GOOD = _lock_bytes(hero="a")
HOSTILE = {
    "not json": b"{ nope",
    "conflict markers": b"<<<<<<< HEAD\n" + GOOD + b"=======\n" + GOOD + b">>>>>>> other\n",
    "a list": b"[]",
    "another version": b'{"version": 2, "sprites": {}}',
    "sprites as a list": b'{"version": 1, "sprites": []}',
    "entry not an object": b'{"version": 1, "sprites": {"hero": 3}}',
    "missing fields": b'{"version": 1, "sprites": {"hero": {"post_key": "x"}}}',
    "bad seed": GOOD.replace(b'"seed": 1', b'"seed": "one"'),
    "outputs not a list": GOOD.replace(b'"outputs": [', b'"outputs": {"a": [').replace(b"}]\n", b"}]}\n", 1),
    "binary": bytes(range(256)) * 4,
    "deeply nested": b'{"version": 1, "sprites": {"hero": ' + b"[" * 200_000 + b"]" * 200_000 + b"}}",
    "empty": b"",
}


# An empty base is valid: git hands one when the common ancestor had no lock.
@pytest.mark.parametrize(
    ("side", "name"),
    [
        (side, name)
        for side in ("ours", "theirs", "base")
        for name in sorted(HOSTILE)
        if (side, name) != ("base", "empty")
    ],
)
def test_hostile_input_is_a_clear_error_and_leaves_ours_untouched(
    tmp_path: Path, cli: Callable[..., Result], side: str, name: str
) -> None:
    files = {"base": GOOD, "ours": _lock_bytes(hero="b"), "theirs": _lock_bytes(hero="a", slime="c")}
    files[side] = HOSTILE[name]
    paths = {}
    for role, raw in files.items():
        paths[role] = tmp_path / role
        paths[role].write_bytes(raw)
    result = cli("merge-lock", paths["base"], paths["ours"], paths["theirs"])
    assert result.code == 2, result.out + result.err
    assert result.err.startswith("pixelbuild: error: ") and result.err.count("\n") == 1
    assert str(paths[side]) in result.err
    assert "Traceback" not in result.err and "internal error" not in result.err
    assert paths["ours"].read_bytes() == files["ours"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["base", "ours", "theirs"]


def test_an_empty_base_merges_two_added_locks(tmp_path: Path, cli: Callable[..., Result]) -> None:
    (tmp_path / "base").write_bytes(b"")
    (tmp_path / "ours").write_bytes(_lock_bytes(hero="a", coin="c"))
    (tmp_path / "theirs").write_bytes(_lock_bytes(hero="b", slime="s"))
    result = cli("merge-lock", tmp_path / "base", tmp_path / "ours", tmp_path / "theirs", "--json")
    assert result.code == 0, result.err
    assert (result.json["conflicting"], result.json["dropped"]) == (["hero"], [])
    merged = parse_lock((tmp_path / "ours").read_bytes(), "merged")
    assert sorted(merged.sprites) == ["coin", "hero", "slime"]
    assert merged.sprites["hero"] == parse_lock(_lock_bytes(hero="a"), "ours").sprites["hero"]


def _entry(tag: str, path: str | None = None) -> LockEntry:
    return LockEntry(((_h(f"g{tag}"), 1),), _h(f"p{tag}"), {}, {}, (OutputRecord(path or f"{tag}.png", _h(tag)),))


def test_merge_table() -> None:
    a, b, c = _entry("a", "x.png"), _entry("b", "x.png"), _entry("c", "x.png")
    cases = [
        # base, ours, theirs -> merged (None: absent), conflicting
        (a, a, a, a, False),
        (a, b, a, b, False),
        (a, a, b, b, False),
        (a, b, b, b, False),
        (a, b, c, b, True),
        (a, None, a, None, False),
        (a, a, None, None, False),
        (a, None, None, None, False),
        (a, None, b, b, True),
        (a, b, None, b, True),
        (None, a, None, a, False),
        (None, None, a, a, False),
        (None, a, a, a, False),
        (None, a, b, a, True),
    ]
    for base, ours, theirs, expected, conflicting in cases:
        sides = [Lock({"s": e} if e else {}) for e in (base, ours, theirs)]
        result = merge_locks(*sides)
        assert result.lock.sprites.get("s") == expected, (base, ours, theirs)
        assert result.conflicting_sprites == (("s",) if conflicting else ())
        assert result.dropped_sprites == ()


def test_entries_that_would_write_one_file_are_both_dropped() -> None:
    ours = Lock({"a": _entry("a", "same.png")})
    theirs = Lock({"b": _entry("b", "same.png")})
    atlas = AtlasEntry(_h("k"), ("a",), (OutputRecord("atlases/x.png", _h("f")),))
    result = merge_locks(Lock(atlases={"x": atlas}), Lock({**ours.sprites}, {"x": atlas}), theirs)
    assert result.lock.sprites == {}
    assert result.dropped == ("a", "b")
    assert result.lock.atlases == {}  # theirs deleted the atlas, ours kept it unchanged
    parse_lock(render_lock(result.lock), "merged")


def test_an_oversized_lock_is_refused_before_it_is_parsed(
    tmp_path: Path, cli: Callable[..., Result], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("pixelbuild.lockmerge.MAX_LOCK_BYTES", 1000)
    for role in ("base", "ours"):
        (tmp_path / role).write_bytes(GOOD)
    (tmp_path / "theirs").write_bytes(_lock_bytes(**{f"s{i}": "x" for i in range(20)}))
    result = cli("merge-lock", tmp_path / "base", tmp_path / "ours", tmp_path / "theirs")
    assert result.code == 2
    assert "larger than" in result.err
    assert (tmp_path / "ours").read_bytes() == GOOD


def test_a_second_manifests_lock_merges_through_its_own_attribute_line(
    tmp_path: Path, cli: Callable[..., Result]
) -> None:
    root = tmp_path / "game"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    (root / "tiles.yaml").write_text(MANIFEST)
    assert cli("init", "-C", root, "--manifest", "tiles.yaml", "--git-config").code == 0
    assert "tiles.lock merge=pixelbuild\n" in (root / ".gitattributes").read_text()

    def build_commit(message: str) -> None:
        assert cli("build", "-C", root, "--manifest", "tiles.yaml").code == 0
        git(root, "add", "-A")
        git(root, "commit", "-q", "-m", message)

    def tiles_edit(old: str, new: str) -> None:
        (root / "tiles.yaml").write_text((root / "tiles.yaml").read_text().replace(old, new, 1))

    build_commit("tiles")
    git(root, "checkout", "-q", "-b", "other")
    tiles_edit("seed: 3", "seed: 33")
    build_commit("slime seed")
    git(root, "checkout", "-q", "main")
    tiles_edit("green slime", "red slime")
    build_commit("slime prompt")
    result = merge(root, "other")
    assert "tiles.lock" not in unmerged(root)
    assert "1 entry changed on both branches: slime (kept" in result.stdout + result.stderr
    for name in unmerged(root):
        git(root, "checkout", "--ours", name)
    git(root, "add", "-A")
    git(root, "commit", "-q", "--no-edit")
    check = cli("check", "-C", root, "--manifest", "tiles.yaml", "--json").json
    assert [(p["kind"], p["subject"]) for p in check["problems"]] == [("stale", "slime")]
