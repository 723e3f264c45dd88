"""The ``$schema`` line that ``init`` writes works in a real editor's language server, offline.

tests/editors runs yaml-language-server (what VS Code's YAML extension, Neovim, Helix and Zed use) over
stdio as an editor does, with the schema store off, so the only schema it can use is the one the line
names. The post-op schema is reached through a relative ``$ref``: an error inside a post op proves that
it was found beside the manifest's schema, not fetched from the ``$id`` URL.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPO, Result

EDITORS = REPO / "tests/editors"
pytestmark = pytest.mark.skipif(
    shutil.which("node") is None or shutil.which("npm") is None, reason="node and npm run the YAML language server"
)


@pytest.fixture(scope="module")
def language_server() -> Callable[[Path], list[dict[str, Any]]]:
    subprocess.run(["bash", str(EDITORS / "install.sh")], check=True, timeout=300)

    def diagnose(path: Path) -> list[dict[str, Any]]:
        result = subprocess.run(
            ["node", str(EDITORS / "diagnose.cjs"), str(path)], capture_output=True, text=True, timeout=90
        )
        assert result.returncode == 0, result.stderr
        diagnostics: list[dict[str, Any]] = json.loads(result.stdout)
        return diagnostics

    return diagnose


def test_the_language_server_validates_the_starter_with_the_schemas_init_wrote(
    cli: Callable[..., Result], tmp_path: Path, language_server: Callable[[Path], list[dict[str, Any]]]
) -> None:
    assert cli("init", "-C", tmp_path).code == 0
    manifest = tmp_path / "pixelbuild.yaml"
    assert language_server(manifest) == []

    text = manifest.read_text()
    text = text.replace("    prompt: pixel art gold coin", "    promt: pixel art gold coin")
    text = text.replace("    - pixelate  ", "    - pixelate: {mode: bogus}  ")
    manifest.write_text(text)
    found = {(d["range"]["start"]["line"] + 1, d["message"]): d["data"]["schemaUri"] for d in language_server(manifest)}
    lines = text.splitlines()
    typo = next(i for i, line in enumerate(lines, 1) if line.startswith("    promt: "))
    bogus = next(i for i, line in enumerate(lines, 1) if "pixelate: {mode: bogus}" in line)
    schemas = tmp_path / ".pixelbuild-schema"
    assert found == {
        (typo, "Property promt is not allowed."): [(schemas / "manifest.schema.json").as_uri()],
        (bogus, 'Value is not accepted. Valid values: "auto", "nearest", "box", "mode".'): [
            (schemas / "post-ops.schema.json").as_uri()
        ],
    }
