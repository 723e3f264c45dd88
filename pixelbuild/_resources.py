"""Locate the data shipped with pixelbuild: JSON Schemas and built-in workflow templates.

A wheel carries them under ``pixelbuild/_data``; a source checkout (or editable install) has them at
the repository's top level.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

_PACKAGE_DIR = Path(__file__).resolve().parent


@cache
def data_dir(name: str) -> Path:
    """Return the folder of shipped data ``name`` ('schemas' or 'workflows')."""
    for candidate in (_PACKAGE_DIR / "_data" / name, _PACKAGE_DIR.parent / name):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"pixelbuild's '{name}' folder is missing from this installation")
