"""Shared fixtures: temporary projects and an in-process ``pixelbuild`` command line."""

from __future__ import annotations

import json
import shutil
import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from pixelbuild.backends.base import BackendFactory
from pixelbuild.cli import main

REPO = Path(__file__).resolve().parent.parent

BASIC_MANIFEST = """\
version: 1
project:
  output: assets
defaults:
  size: 64
  post:
    - resize: {size: 16, filter: box}
sprites:
  - id: hero
    prompt: blue knight
  - id: slime
    prompt: green slime
    seed: 7
  - id: items/coin
    prompt: gold coin
"""


@dataclass
class Result:
    """What one command printed and returned."""

    code: int
    out: str
    err: str

    @property
    def json(self) -> Any:
        return json.loads(self.out)


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> Callable[..., Result]:
    """Run ``pixelbuild ARGS`` in-process; returns code, stdout and stderr. ``backend_factory`` replaces the
    manifest's backend (see ``tests/flaky_backend.py``)."""

    def run(*args: str | Path, backend_factory: BackendFactory | None = None) -> Result:
        capsys.readouterr()
        code = main([str(arg) for arg in args], backend_factory=backend_factory)
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    return run


@pytest.fixture
def make_project(tmp_path: Path) -> Callable[..., Path]:
    """Write a project (manifest + extra files) into a fresh folder and return the folder."""
    counter = iter(range(1000))

    def make(manifest: str = BASIC_MANIFEST, files: dict[str, str | bytes] | None = None) -> Path:
        root = tmp_path / f"project{next(counter)}"
        root.mkdir()
        (root / "pixelbuild.yaml").write_text(textwrap.dedent(manifest))
        for name, content in (files or {}).items():
            path = root / name
            path.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(content, bytes):
                path.write_bytes(content)
            else:
                path.write_text(textwrap.dedent(content))
        return root

    return make


def failed_lines(result: Result) -> str:
    """The FAILED lines a command printed, once each (by the progress display, else by the summary), with
    their padding collapsed: ``FAILED hero: message``."""
    lines = (result.out + result.err).splitlines()
    return "\n".join(" ".join(line.split()) for line in lines if line.startswith("FAILED"))


def build_json(cli: Callable[..., Result], project: Path, *extra: str) -> dict[str, Any]:
    """Run ``build --json`` and return its document (asserting it succeeded)."""
    result = cli("build", "-C", project, "--json", *extra)
    assert result.code == 0, result.out + result.err
    document: dict[str, Any] = result.json
    return document


def snapshot(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` (outside .pixelbuild) by relative path."""
    return {
        path.relative_to(root).as_posix(): path.read_bytes()
        for path in sorted(root.rglob("*"))
        if path.is_file() and ".pixelbuild" not in path.relative_to(root).parts
    }


def copy_committed(source: Path, target: Path) -> None:
    """Copy what a repository would hold (manifest, lock, assets, inputs), not the local state."""
    shutil.copytree(source, target, ignore=shutil.ignore_patterns(".pixelbuild"))


def pytest_addoption(parser: pytest.Parser) -> None:
    """``--fuzz-count N`` / ``--fuzz-seed S``: how many random manifest mutations tests/test_fuzz_manifest.py runs;
    ``--kill-points N`` / ``--kill-seed S``: how many SIGKILLs tests/test_kill_campaign.py deals."""
    parser.addoption("--fuzz-count", type=int, default=100, help="manifest mutations to try (default 100)")
    parser.addoption("--fuzz-seed", type=int, default=20261130, help="seed of the manifest mutations")
    parser.addoption("--kill-points", type=int, default=4, help="SIGKILLs to deal (default 4)")
    parser.addoption("--kill-seed", type=int, default=20261130, help="seed of the kill times")
