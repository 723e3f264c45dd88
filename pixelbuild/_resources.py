"""Locate the data shipped with pixelbuild: JSON Schemas and built-in workflow templates.

A wheel carries them under ``pixelbuild/_data``; a source checkout (or editable install) has them at
the repository's top level. Plain strings underneath, so the no-op build can use it without pathlib.
"""

from __future__ import annotations

import os
from functools import cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pathlib import Path

_PACKAGE_DIR = os.path.dirname(os.path.realpath(__file__))


@cache
def data_dir_name(name: str) -> str:
    """The folder of shipped data ``name`` ('schemas' or 'workflows') as a string."""
    for candidate in (os.path.join(_PACKAGE_DIR, "_data", name), os.path.join(os.path.dirname(_PACKAGE_DIR), name)):
        if os.path.isdir(candidate):
            return candidate
    raise FileNotFoundError(f"pixelbuild's '{name}' folder is missing from this installation")


def data_dir(name: str) -> Path:
    """Return the folder of shipped data ``name`` ('schemas' or 'workflows')."""
    from pathlib import Path

    return Path(data_dir_name(name))
