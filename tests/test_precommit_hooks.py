""".pre-commit-hooks.yaml, run by the real pre-commit in a game repository that uses this repository as
its hook source: pre-commit clones it, pip-installs it into its own environment and runs the hooks.

The environment is installed once for the module (PRE_COMMIT_HOME in a temporary folder); every test
after the first reuses it.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from pixelbuild.cli import main as pixelbuild_main
from tests.conftest import REPO

# The first test pays for pre-commit's environment (a pip install with dependencies): on a loaded machine
# that can take more than the default per-test timeout.
pytestmark = pytest.mark.timeout(300)

HOOKS = yaml.safe_load((REPO / ".pre-commit-hooks.yaml").read_text())

GAME_MANIFEST = """\
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
  - id: items/coin
    prompt: gold coin
"""

_GIT_ENV = {
    "GIT_AUTHOR_NAME": "Pixel Artist",
    "GIT_AUTHOR_EMAIL": "artist@example.invalid",
    "GIT_COMMITTER_NAME": "Pixel Artist",
    "GIT_COMMITTER_EMAIL": "artist@example.invalid",
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_CONFIG_GLOBAL": os.devnull,  # a developer's signing or hooksPath settings must not apply
    "PRE_COMMIT_COLOR": "never",
}


def test_hooks_file_declares_both_hooks() -> None:
    by_id = {hook["id"]: hook for hook in HOOKS}
    assert set(by_id) == {"pixelbuild-check", "pixelbuild-validate"}
    for hook_id, hook in by_id.items():
        assert hook["language"] == "python" and hook["pass_filenames"] is False
        assert hook["entry"] == "pixelbuild " + hook_id.removeprefix("pixelbuild-")


def test_pre_commit_accepts_the_hooks_file() -> None:
    hooks = str(REPO / ".pre-commit-hooks.yaml")
    result = subprocess.run([sys.executable, "-m", "pre_commit", "validate-manifest", hooks], capture_output=True)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("path", "validate", "check"),
    [
        ("pixelbuild.yaml", True, True),
        ("art/pixelbuild.yaml", True, True),
        ("sprites/monsters.yaml", True, True),
        ("workflows/my_sampler.json", True, True),
        ("pixelbuild.lock", False, True),
        ("assets/characters/hero.png", False, True),
        ("assets/atlases/sprites.tres", False, True),
        ("palettes/endesga-32.hex", False, True),
        ("src/game.py", False, False),
        ("README.md", False, False),
        ("pixelbuild.yaml.orig", False, False),
    ],
)
def test_hooks_run_for_the_files_they_read(path: str, validate: bool, check: bool) -> None:
    patterns = {hook["id"]: re.compile(hook["files"]) for hook in HOOKS}
    # pre-commit matches `files` with re.search against the repository-relative path.
    assert bool(patterns["pixelbuild-validate"].search(path)) is validate
    assert bool(patterns["pixelbuild-check"].search(path)) is check


def _run(args: list[str], cwd: Path, env: dict[str, str], check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, check=False, timeout=300)
    if check and result.returncode != 0:
        raise AssertionError(f"{args} exited {result.returncode}:\n{result.stdout}{result.stderr}")
    return result


def _copy_working_tree(target: Path) -> None:
    """The repository as it stands (committed or not, ignored files left out), as pre-commit would clone it."""
    if (REPO / ".git").exists() and shutil.which("git"):
        listed = subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            cwd=REPO,
            capture_output=True,
            check=True,
        ).stdout.decode()
        for name in filter(None, listed.split("\0")):
            source = REPO / name
            if source.is_file():  # a tracked file deleted in the working tree is left out
                (target / name).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(source, target / name)
    else:  # an unpacked sdist: no git metadata, the same files
        ignored = shutil.ignore_patterns(".venv", ".pixelbuild", "__pycache__", "*.egg-info", ".*_cache")
        shutil.copytree(REPO, target, ignore=ignored, dirs_exist_ok=True)


@pytest.fixture(scope="module")
def hook_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A committed copy of this repository to use as the hook source, and an environment for pre-commit."""
    if shutil.which("git") is None:
        pytest.fail("git is needed to test the pre-commit hooks")
    root = tmp_path_factory.mktemp("precommit")
    env = {**os.environ, **_GIT_ENV, "PRE_COMMIT_HOME": str(root / "home")}
    env.pop("GIT_DIR", None)
    env.pop("GIT_WORK_TREE", None)
    source = root / "pixelbuild-src"
    source.mkdir()
    _copy_working_tree(source)
    _run(["git", "init", "-q"], source, env)
    _run(["git", "add", "-A"], source, env)
    _run(["git", "commit", "-q", "-m", "hook source"], source, env)
    rev = _run(["git", "rev-parse", "HEAD"], source, env).stdout.strip()
    yield {"env": env, "source": source, "rev": rev}


@pytest.fixture
def game(hook_env: dict[str, Any], tmp_path: Path) -> Path:
    """A built and committed game repository whose .pre-commit-config.yaml uses both hooks."""
    repo = tmp_path / "game"
    repo.mkdir()
    env = hook_env["env"]
    _run(["git", "init", "-q"], repo, env)
    (repo / "pixelbuild.yaml").write_text(GAME_MANIFEST)
    (repo / ".gitignore").write_text(".pixelbuild/\n")
    (repo / "README.md").write_text("# A game\n")
    config = f"""\
        repos:
          - repo: {hook_env["source"]}
            rev: {hook_env["rev"]}
            hooks:
              - id: pixelbuild-validate
              - id: pixelbuild-check
        """
    (repo / ".pre-commit-config.yaml").write_text(textwrap.dedent(config))
    assert pixelbuild_main(["build", "-C", str(repo), "--progress", "none"]) == 0
    _run(["git", "add", "-A"], repo, env)
    _run(["git", "commit", "-q", "-m", "art"], repo, env)
    return repo


@pytest.fixture
def pre_commit(hook_env: dict[str, Any], game: Path) -> Callable[..., subprocess.CompletedProcess[str]]:
    """Run ``pre-commit ARGS`` in the game repository (exit code not checked)."""

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return _run([sys.executable, "-m", "pre_commit", *args], game, hook_env["env"], check=False)

    return run


def _status(output: str) -> dict[str, str]:
    """Hook name -> Passed / Failed / Skipped, from pre-commit's report."""
    return dict(re.findall(r"^(pixelbuild \w+)\.*(?:\(no files to check\))?(Passed|Failed|Skipped)$", output, re.M))


def test_both_hooks_pass_on_an_up_to_date_repository(pre_commit: Callable[..., Any]) -> None:
    result = pre_commit("run", "--all-files")
    assert result.returncode == 0, result.stdout + result.stderr
    assert _status(result.stdout) == {"pixelbuild validate": "Passed", "pixelbuild check": "Passed"}


def test_a_commit_with_a_stale_lock_is_refused(
    pre_commit: Callable[..., Any], game: Path, hook_env: dict[str, Any]
) -> None:
    env = hook_env["env"]
    assert pre_commit("install").returncode == 0
    head = _run(["git", "rev-parse", "HEAD"], game, env).stdout
    manifest = game / "pixelbuild.yaml"
    manifest.write_text(manifest.read_text().replace("blue knight", "red knight"))  # and no rebuild
    _run(["git", "add", "pixelbuild.yaml"], game, env)
    commit = _run(["git", "commit", "-m", "red knight"], game, env, check=False)
    assert commit.returncode != 0
    output = commit.stdout + commit.stderr
    assert _status(output) == {"pixelbuild validate": "Passed", "pixelbuild check": "Failed"}
    assert re.search(
        r"^stale\s+hero: the lock entry is out of date: prompt changed; run 'pixelbuild build'", output, re.M
    ), output
    assert _run(["git", "rev-parse", "HEAD"], game, env).stdout == head
    # Building, then committing the lock and the asset with it, is what makes the commit go through.
    assert pixelbuild_main(["build", "-C", str(game), "--progress", "none"]) == 0
    _run(["git", "add", "-A"], game, env)
    commit = _run(["git", "commit", "-m", "red knight"], game, env, check=False)
    assert commit.returncode == 0, commit.stdout + commit.stderr
    assert _status(commit.stdout + commit.stderr) == {"pixelbuild validate": "Passed", "pixelbuild check": "Passed"}


def test_validate_fails_on_a_bad_manifest_with_one_paragraph(
    pre_commit: Callable[..., Any], game: Path, hook_env: dict[str, Any]
) -> None:
    manifest = game / "pixelbuild.yaml"
    manifest.write_text(manifest.read_text().replace("prompt: gold coin", "promt: gold coin"))
    _run(["git", "add", "pixelbuild.yaml"], game, hook_env["env"])
    result = pre_commit("run")
    assert result.returncode == 1
    assert _status(result.stdout) == {"pixelbuild validate": "Failed", "pixelbuild check": "Failed"}
    errors = [line for line in result.stdout.splitlines() if line.startswith("pixelbuild: error:")]
    assert len(errors) == 2 and "sprite 'items/coin'" in errors[0] and "'promt'" in errors[0]
    assert "Traceback" not in result.stdout


def test_hooks_skip_a_commit_that_touches_no_art(
    pre_commit: Callable[..., Any], game: Path, hook_env: dict[str, Any]
) -> None:
    (game / "README.md").write_text("# A game\n\nNow with a README.\n")
    _run(["git", "add", "README.md"], game, hook_env["env"])
    result = pre_commit("run")
    assert result.returncode == 0, result.stdout + result.stderr
    assert _status(result.stdout) == {"pixelbuild validate": "Skipped", "pixelbuild check": "Skipped"}
