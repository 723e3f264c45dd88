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
from typing import TYPE_CHECKING

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


class ProjectPaths:
    """Every path pixelbuild reads or writes for the manifest at ``manifest``.

    A plain class: a dataclass or NamedTuple would cost the no-op build more to define than it spends.
    """

    __slots__ = (
        "build_lock",
        "cache",
        "hashes",
        "journal",
        "lock",
        "manifest",
        "parse_cache",
        "project_dir",
        "spec_cache",
        "stamp",
        "state_dir",
    )

    def __init__(self, manifest: Path, project_dir: Path, state_dir: Path, own: Path, lock: Path) -> None:
        self.manifest = manifest
        self.project_dir = project_dir
        self.state_dir = state_dir
        self.lock = lock
        self.journal = own / "journal.jsonl"
        self.stamp = own / "state" / "noop.json"
        self.hashes = own / "state" / "files.json"
        self.parse_cache = own / "state" / "manifests"
        self.spec_cache = own / "state" / "resolved"
        self.cache = own / "cache"
        self.build_lock = state_dir / "build.lock"

    @classmethod
    def for_manifest(cls, manifest: Path) -> ProjectPaths:
        """Paths for a manifest file: its lock beside it, its state in ``.pixelbuild/`` (see the module)."""
        from pathlib import Path

        # The project folder's real path: a project reached through a link (a linked home or checkout) is
        # the same project, and the output guard compares real paths below it.
        project_dir = Path(os.path.realpath(manifest.absolute().parent))
        manifest = project_dir / manifest.name
        state = project_dir / STATE_DIR
        own = Path(manifest_state_dir(str(project_dir), manifest.name))
        return cls(manifest, project_dir, state, own, project_dir / lock_name(manifest.name))

    def check_state(self) -> None:
        """Refuse (``fsguard.LinkedStateError``) a local-state folder that is a symbolic link."""
        from pixelbuild.fsguard import check_state_folders

        cache = self.cache
        folders = [self.parse_cache, self.spec_cache, cache / "blobs", self.journal.parent, self.build_lock.parent]
        folders += [cache / "actions" / kind for kind in ("gen", "post", "pack")]
        folders.append(self.state_dir / "comfyui")  # the ComfyUI prompt ledger's folder
        # The review commands' default folders (pixelbuild.review.*.DEFAULT_DIR): pages are written there.
        folders += [self.state_dir / name for name in ("diff", "gallery", "explore")]
        check_state_folders(str(self.project_dir), [str(folder) for folder in folders])

    def display(self, path: Path) -> str:
        """``path`` relative to the project folder, for messages."""
        try:
            return path.relative_to(self.project_dir).as_posix()
        except ValueError:
            return str(path)
