"""The small public API in ``pixelbuild``'s namespace."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

import pixelbuild


def test_build_and_check_from_python(make_project: Callable[..., Path]) -> None:
    project = make_project()
    report = pixelbuild.build(str(project / "pixelbuild.yaml"), pixelbuild.BuildOptions(jobs=2))
    assert report.ok and report.generated == 3
    assert pixelbuild.check(project / "pixelbuild.yaml").ok
    with pytest.raises(pixelbuild.ManifestError):
        pixelbuild.load_manifest(project / "missing.yaml")
    with pytest.raises(AttributeError):
        pixelbuild.no_such_name  # noqa: B018


def test_every_exported_name_resolves() -> None:
    assert set(pixelbuild.__all__) == {*pixelbuild._EXPORTS, "__version__"}
    for name in pixelbuild._EXPORTS:
        assert getattr(pixelbuild, name) is not None


def test_import_stays_light() -> None:
    heavy = "('yaml', 'jsonschema', 'doit', 'PIL', 'numpy')"
    probe = f"import sys, pixelbuild; print(sorted(m for m in {heavy} if m in sys.modules))"
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_check_loads_no_pixel_code(make_project: Callable[..., Path]) -> None:
    # check reads the post ops' declarations, never their pixel code: numpy (~0.1 s) and PIL stay off its path.
    project = make_project()
    pixelbuild.build(str(project / "pixelbuild.yaml"), pixelbuild.BuildOptions(jobs=1))
    probe = (
        "import sys, pixelbuild; ok = pixelbuild.check(sys.argv[1]).ok; "
        "print(ok, 'numpy' in sys.modules, 'PIL' in sys.modules)"
    )
    manifest = str(project / "pixelbuild.yaml")
    result = subprocess.run([sys.executable, "-c", probe, manifest], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "True False False"
