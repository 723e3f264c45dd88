"""Projects and real git repositories for the review tests."""

from __future__ import annotations

import subprocess
import textwrap
from pathlib import Path

from pixelbuild.builder import build

MANIFEST = """\
version: 1
project:
  output: assets
defaults:
  size: 64
  post:
    - resize: {size: 16, filter: nearest}
    - remove_background: {mode: flood, tolerance: 40}
sprites:
  - id: characters/hero   # the hero
    prompt: blue knight
  - id: monsters/slime
    prompt: green slime
    seed: 7
  - id: items/coin
    prompt: gold coin
  - id: monsters/bat
    prompt: purple bat
    frames: 3
atlases:
  - id: sprites
    sprites: ["characters/*", "monsters/*", "items/*"]
    formats: [texturepacker-hash]
    fps: 12
"""


def write_project(root: Path, manifest: str = MANIFEST) -> Path:
    """Write ``manifest`` into ``root`` (created) and return ``root``."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "pixelbuild.yaml").write_text(textwrap.dedent(manifest))
    return root


def built(root: Path) -> None:
    """Build the project at ``root``; fail the test if anything failed."""
    report = build(root / "pixelbuild.yaml")
    assert report.ok, report.failures


def git(root: Path, *args: str) -> str:
    """Run git in ``root`` (identity and settings fixed, no user config); return its stdout."""
    env = {
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.com",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.com",
        "GIT_CONFIG_GLOBAL": "/dev/null",
        "GIT_CONFIG_NOSYSTEM": "1",
        "PATH": "/usr/bin:/bin:/usr/local/bin",
        "HOME": str(root),
    }
    done = subprocess.run(["git", *args], cwd=root, env=env, capture_output=True, text=True, check=True)
    return done.stdout


def commit_all(root: Path, message: str = "commit") -> None:
    """Stage everything (the state folder ignores itself) and commit."""
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", message)


def git_project(root: Path, manifest: str = MANIFEST) -> Path:
    """A built project committed as the first commit of a new repository at ``root``."""
    write_project(root, manifest)
    git(root, "init", "-q", "-b", "main")
    built(root)
    commit_all(root, "base")
    return root


def edit(root: Path, old: str, new: str) -> None:
    """Replace ``old`` (which must occur) by ``new`` in the project's manifest."""
    path = root / "pixelbuild.yaml"
    text = path.read_text()
    assert old in text, old
    path.write_text(text.replace(old, new, 1))
