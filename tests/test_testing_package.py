"""``pixelbuild.testing``: the fake ComfyUI server as a documented, importable test utility."""

from __future__ import annotations

import ast
import subprocess
import sys

from tests.conftest import REPO


def test_without_aiohttp_the_import_error_says_what_to_install() -> None:
    probe = "import sys; sys.modules['aiohttp'] = None; import pixelbuild.testing"
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert result.returncode == 1
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("ImportError: pixelbuild.testing needs aiohttp")
    assert "pip install 'pixelbuild[test]'" in last


def test_recorded_object_info_ships_inside_the_package() -> None:
    from pixelbuild.testing import load_object_info

    info = load_object_info()
    assert len(info) == 16 and "KSampler" in info and "CheckpointLoaderSimple" in info
    assert load_object_info() is not info  # a fresh copy each time: servers edit theirs


def test_benchmarks_do_not_import_the_test_suite() -> None:
    for script in sorted((REPO / "bench").glob("*.py")):
        tree = ast.parse(script.read_text(), str(script))
        modules = [
            name
            for node in ast.walk(tree)
            for name in (
                [alias.name for alias in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else []
            )
        ]
        assert not [name for name in modules if name == "tests" or name.startswith("tests.")], script.name
