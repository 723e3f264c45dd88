"""Where a project's files live: the manifest, its lock, and its local state under ``.pixelbuild/``.

Every manifest owns its lock, journal, no-op stamp and caches; two manifests in one folder never share
them. ``pixelbuild.yaml`` keeps the short layout (``pixelbuild.lock``, ``.pixelbuild/journal.jsonl``,
``.pixelbuild/state/``, ``.pixelbuild/cache/``); ``other.yaml`` gets ``other.lock`` beside it and the same
layout under ``.pixelbuild/manifests/other/``. The build lock (one build per folder at a time) is shared,
since manifests in one folder may share an output root.

Kept free of heavy imports (not even dataclasses or pathlib at import time): the no-op build path
starts here.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from pathlib import Path

LOCK_NAME = "pixelbuild.lock"
STATE_DIR = ".pixelbuild"
DEFAULT_STEM = "pixelbuild"
_MANIFEST_SUFFIXES = (".yaml", ".yml")


def manifest_stem(name: str) -> str:
    """The name a manifest file's lock and state are keyed by: its file name less ``.yaml``/``.yml``."""
    for suffix in _MANIFEST_SUFFIXES:
        if name.endswith(suffix) and len(name) > len(suffix):
            return name[: -len(suffix)]
    return name


def lock_name(manifest_name: str) -> str:
    """The lock file name of the manifest file ``manifest_name`` (``other.yaml`` → ``other.lock``)."""
    return manifest_stem(manifest_name) + ".lock"


def manifest_state_dir(project_dir: str, manifest_name: str) -> str:
    """The folder holding the journal, ``state/`` and ``cache/`` of the manifest ``manifest_name``."""
    stem = manifest_stem(manifest_name)
    state = os.path.join(project_dir, STATE_DIR)
    return state if stem == DEFAULT_STEM else os.path.join(state, "manifests", stem)


def stamp_files(manifest: str) -> tuple[str, str, str]:
    """(stamp, lock, journal) of the manifest at absolute path ``manifest``, as plain strings."""
    project_dir, name = os.path.split(manifest)
    own = manifest_state_dir(project_dir, name)
    return (
        os.path.join(own, "state", "noop.json"),
        os.path.join(project_dir, lock_name(name)),
        os.path.join(own, "journal.jsonl"),
    )


class ProjectPaths(NamedTuple):
    """Every path pixelbuild reads or writes for the manifest at ``manifest``."""

    manifest: Path
    project_dir: Path
    state_dir: Path
    lock: Path
    journal: Path
    stamp: Path
    hashes: Path
    parse_cache: Path
    spec_cache: Path
    cache: Path
    build_lock: Path

    @classmethod
    def for_manifest(cls, manifest: Path) -> ProjectPaths:
        """Paths for a manifest file: its lock beside it, its state in ``.pixelbuild/`` (see the module)."""
        from pathlib import Path

        manifest = manifest.absolute()
        project_dir = manifest.parent
        state = project_dir / STATE_DIR
        own = Path(manifest_state_dir(str(project_dir), manifest.name))
        return cls(
            manifest=manifest,
            project_dir=project_dir,
            state_dir=state,
            lock=project_dir / lock_name(manifest.name),
            journal=own / "journal.jsonl",
            stamp=own / "state" / "noop.json",
            hashes=own / "state" / "files.json",
            parse_cache=own / "state" / "manifests",
            spec_cache=own / "state" / "resolved",
            cache=own / "cache",
            build_lock=state / "build.lock",
        )

    def display(self, path: Path) -> str:
        """``path`` relative to the project folder, for messages."""
        try:
            return path.relative_to(self.project_dir).as_posix()
        except ValueError:
            return str(path)
