"""Where pixelbuild's built-in ComfyUI workflow templates live.

A wheel carries them under ``pixelbuild/_data/workflows`` (force-included at build time); a source or
editable checkout has them at ``<repo>/workflows``.
"""

from __future__ import annotations

from pathlib import Path

_PACKAGE_ROOT = Path(__file__).resolve().parents[2]  # .../pixelbuild


def workflows_dir(package_root: Path = _PACKAGE_ROOT) -> Path:
    """The folder holding the built-in templates of the ``pixelbuild`` package at ``package_root``; raises
    ``FileNotFoundError`` if it is missing."""
    for candidate in (package_root / "_data" / "workflows", package_root.parent / "workflows"):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError("pixelbuild's built-in 'workflows' folder is missing from this installation")


def builtin_template(name: str) -> Path:
    """The path of built-in template ``name`` (with or without ``.json``)."""
    filename = name if name.endswith(".json") else f"{name}.json"
    path = workflows_dir() / filename
    if not path.is_file():
        known = ", ".join(builtin_names()) or "none"
        raise FileNotFoundError(f"no built-in workflow template '{name}' (known: {known})")
    return path


def builtin_names(package_root: Path = _PACKAGE_ROOT) -> list[str]:
    """Names (without ``.json``) of every built-in template, sorted."""
    try:
        folder = workflows_dir(package_root)
    except FileNotFoundError:
        return []
    return sorted(path.stem for path in folder.glob("*.json"))
