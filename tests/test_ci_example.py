"""examples/ci/pixelbuild.yml: a valid GitHub Actions workflow whose pixelbuild steps, run as written,
pass on a committed, up-to-date game repository and fail (generating nothing) on a stale one."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import REPO, Result, build_json, copy_committed, snapshot

WORKFLOW = REPO / "examples/ci/pixelbuild.yml"


def _job() -> dict[str, Any]:
    workflow = yaml.safe_load(WORKFLOW.read_text())
    assert set(workflow[True]) == {"push", "pull_request"}  # YAML 1.1 reads the key `on` as true
    (job,) = workflow["jobs"].values()
    assert isinstance(job, dict)
    return job


def _pixelbuild_steps() -> list[list[str]]:
    """The workflow's pixelbuild commands, with the job's environment expanded as the runner's shell would."""
    job = _job()
    commands = []
    for step in job["steps"]:
        command = step.get("run", "")
        if command.startswith("pixelbuild "):
            expanded = re.sub(r'"?\$(\w+)"?', lambda m: shlex.quote(str(job["env"][m.group(1)])), command)
            commands.append(shlex.split(expanded))
    return commands


def test_workflow_runs_check_then_frozen_build_without_a_gpu() -> None:
    job = _job()
    assert [argv[:3] for argv in _pixelbuild_steps()] == [
        ["pixelbuild", "check", "-C"],
        ["pixelbuild", "build", "--frozen"],
    ]
    assert not re.search(r"gpu|cuda|self-hosted", str(job["runs-on"]), re.IGNORECASE)
    text = WORKFLOW.read_text()
    assert "PIXELBUILD_COMFYUI_URL" not in text and "--server" not in text
    install = next(step["run"] for step in job["steps"] if "pip install" in step.get("run", ""))
    assert install == 'python -m pip install "$PIXELBUILD"'
    assert re.fullmatch(r"pixelbuild(==\d+(\.\d+)*| @ git\+\S+@\S+)", job["env"]["PIXELBUILD"])  # pinned
    assert any(str(step.get("uses", "")).startswith("actions/checkout@v") for step in job["steps"])


def test_workflow_follows_github_actions_schema() -> None:
    command = [sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.github-workflows", str(WORKFLOW)]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.fixture
def clone(cli: Callable[..., Result], make_project: Callable[..., Path], tmp_path: Path) -> Path:
    """A fresh clone of a built game repository (no local cache), where CI starts."""
    project = make_project()
    build_json(cli, project)
    target = tmp_path / "clone"
    copy_committed(project, target)
    return target


def _run_steps(cli: Callable[..., Result], clone: Path, monkeypatch: pytest.MonkeyPatch) -> list[Result]:
    monkeypatch.chdir(clone)  # the checkout is the runner's working directory
    return [cli(*argv[1:]) for argv in _pixelbuild_steps()]


def test_workflow_steps_pass_on_an_up_to_date_clone(
    cli: Callable[..., Result], clone: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = snapshot(clone)
    check, frozen = _run_steps(cli, clone, monkeypatch)
    assert check.code == 0, check.out + check.err
    assert frozen.code == 0, frozen.out + frozen.err
    assert snapshot(clone) == before


def test_workflow_steps_fail_on_a_stale_clone_without_generating(
    cli: Callable[..., Result], clone: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    manifest = clone / "pixelbuild.yaml"
    manifest.write_text(manifest.read_text().replace("blue knight", "red knight"))
    before = snapshot(clone)
    check, frozen = _run_steps(cli, clone, monkeypatch)
    assert check.code == 1 and "stale" in check.out and "hero" in check.out
    assert frozen.code == 1, frozen.out + frozen.err
    assert snapshot(clone) == before
    assert os.listdir(clone / "assets")  # the committed assets are still there
