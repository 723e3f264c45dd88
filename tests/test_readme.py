"""The README's first screen and its example session stay true."""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable
from pathlib import Path

from tests.conftest import REPO, Result

README = (REPO / "README.md").read_text()


def test_first_screen_has_the_two_setup_commands() -> None:
    first_screen = "\n".join(README.splitlines()[:30])
    assert "pip install -e . && .venv/bin/pixelbuild build -C examples/quickstart" in first_screen
    test_command = ".venv/bin/pip install -e '.[test]' && .venv/bin/python -m pytest -q"
    assert test_command in first_screen
    ci = (REPO / ".ci/run").read_text()
    assert "pip install --quiet -e '.[test]'" in ci and "-m pytest -q\n" in ci


def test_example_session_matches_the_cli(cli: Callable[..., Result], tmp_path: Path) -> None:
    project = tmp_path / "quickstart"
    shutil.copytree(
        REPO / "examples/quickstart", project, ignore=shutil.ignore_patterns(".pixelbuild", "assets", "*.lock")
    )
    shown = re.findall(r"^(\d+ generated, .*?) \(\d", README, flags=re.MULTILINE)
    outputs = []
    outputs.append(cli("build", "-C", project).out)
    outputs.append(cli("build", "-C", project).out)
    manifest = project / "pixelbuild.yaml"
    manifest.write_text(manifest.read_text().replace("green slime", "orange slime"))
    plan = cli("plan", "-C", project).out
    outputs.append(cli("build", "-C", project).out)
    actual = [re.sub(r" \(\d+\.\d+s\)\n$", "", out) for out in outputs]
    assert actual == shown
    assert plan == (
        "generate    monsters/slime  prompt changed\n"
        "pack        atlas sprites   member monsters/slime changed\n"
        "1 to generate, 1 to pack, 4 up to date\n"
    )
    assert plan.strip() in README
    assert cli("check", "-C", project).out.strip() in README
    manifest.write_text(manifest.read_text().replace("orange slime", "green slime"))
    assert "0 generated, 2 restored, 4 up to date" in cli("build", "-C", project).out
    assert "`0 generated, 2 restored, 4 up to date`" in README
