"""Where a project's files live: the manifest, its lock, and everything under ``.pixelbuild/``.

This module is the one place the layout is spelled; every other module asks it for paths::

    .pixelbuild/
      .gitignore               never committed
      build.lock               one build (or gc) per folder at a time, shared by every manifest
      journal.jsonl            work finished since the lock was last written (pixelbuild.lock)
      state/noop.json          the no-op stamp (pixelbuild.local.stamp)
      state/files.json         the file-hash cache (pixelbuild.local.filehashes)
      state/manifests/         the parse cache (pixelbuild.local.parsecache)
      state/resolved/          the spec cache (pixelbuild.local.speccache)
      cache/blobs/ab/<digest>  the CAS (pixelbuild.local.store)
      cache/actions/<kind>/ab/<key>.json   its typed action records (gen, post, pack)
      comfyui/prompts.jsonl    the ComfyUI prompt ledger
      comfyui/model-hashes.json  sha256 of pinned model files (the ComfyUI preflight)
      diff/ gallery/ explore/  the review commands' default output folders
      manifests/<stem>/        the same journal, state/ and cache/ for the manifest ``<stem>.yaml``

Every manifest owns its lock, journal, no-op stamp and caches; two manifests in one folder never share
them. ``pixelbuild.yaml`` keeps the short layout above; ``other.yaml`` gets ``other.lock`` beside it and
its own journal, ``state/`` and ``cache/`` under ``.pixelbuild/manifests/other/``. The build lock is
shared, since manifests in one folder may share an output root.

Kept free of heavy imports (not even dataclasses or pathlib at import time): the no-op build path
starts here.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pathlib import Path

MANIFEST_NAME = "pixelbuild.yaml"
LOCK_NAME = "pixelbuild.lock"
STATE_DIR = ".pixelbuild"
DEFAULT_STEM = "pixelbuild"
_MANIFEST_SUFFIXES = (".yaml", ".yml")
_OTHER_MANIFESTS = "manifests"
_JOURNAL = "journal.jsonl"
_STAMP = ("state", "noop.json")
_BLOBS = "blobs"
_ACTIONS = "actions"
#: The stages whose results the CAS keeps, each under ``cache/actions/<kind>/``.
ACTION_KINDS = ("gen", "post", "pack")
_COMFYUI = "comfyui"
#: The review commands that write pages, each to ``.pixelbuild/<name>/`` unless told otherwise.
REVIEW_FOLDERS = ("diff", "gallery", "explore")


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
    return state if stem == DEFAULT_STEM else os.path.join(state, _OTHER_MANIFESTS, stem)


def real_manifest_path(manifest: str) -> str:
    """The absolute path of ``manifest`` in its project folder's real path (see ``ProjectPaths.for_manifest``)."""
    # Not abspath: a ".." after a linked folder means that link's parent, which only realpath knows.
    folder, name = os.path.split(os.path.join(os.getcwd(), manifest))
    return os.path.join(os.path.realpath(folder), name)


def stamp_files(manifest: str) -> tuple[str, str, str]:
    """(stamp, lock, journal) of the manifest at absolute path ``manifest``, as plain strings."""
    project_dir, name = os.path.split(manifest)
    own = manifest_state_dir(project_dir, name)
    return (
        os.path.join(own, *_STAMP),
        os.path.join(project_dir, lock_name(name)),
        os.path.join(own, _JOURNAL),
    )


def blob_path(cache: Path, digest: str) -> Path:
    """Where the CAS under ``cache`` keeps the blob ``digest`` (sharded by its first two digits)."""
    return cache / _BLOBS / digest[:2] / digest


def action_path(cache: Path, kind: str, key: str) -> Path:
    """Where the CAS under ``cache`` keeps the action record of stage ``kind`` with ``key``."""
    return cache / _ACTIONS / kind / key[:2] / f"{key}.json"


def blobs_dir(cache: Path) -> Path:
    """The folder of the CAS's blob shards."""
    return cache / _BLOBS


def actions_dir(cache: Path, kind: str) -> Path:
    """The folder of the CAS's shards of stage ``kind``'s action records."""
    return cache / _ACTIONS / kind


def comfyui_dir(project_dir: Path) -> Path:
    """The folder of the ComfyUI backend's own state (prompt ledger, model hashes) in a project."""
    return project_dir / STATE_DIR / _COMFYUI


def ledger_path(project_dir: Path) -> Path:
    """The ComfyUI prompt ledger of a project (every prompt submitted and not yet cached)."""
    return comfyui_dir(project_dir) / "prompts.jsonl"


def model_hashes_path(project_dir: Path) -> Path:
    """The ComfyUI preflight's cache of pinned model files' sha256."""
    return comfyui_dir(project_dir) / "model-hashes.json"


def review_default(name: str) -> str:
    """The default output folder of the review command ``name``, relative to the project (for help texts)."""
    return f"{STATE_DIR}/{name}"


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
        self.journal = own / _JOURNAL
        self.stamp = own.joinpath(*_STAMP)
        state = self.stamp.parent
        self.hashes = state / "files.json"
        self.parse_cache = state / "manifests"
        self.spec_cache = state / "resolved"
        self.cache = own / "cache"
        self.build_lock = state_dir / "build.lock"

    @classmethod
    def for_manifest(cls, manifest: Path) -> ProjectPaths:
        """Paths for a manifest file: its lock beside it, its state in ``.pixelbuild/`` (see the module)."""
        from pathlib import Path

        # The project folder's real path: a project reached through a link (a linked home or checkout) is
        # the same project, and the output guard compares real paths below it.
        manifest = Path(real_manifest_path(str(manifest)))
        project_dir = manifest.parent
        state = project_dir / STATE_DIR
        own = Path(manifest_state_dir(str(project_dir), manifest.name))
        return cls(manifest, project_dir, state, own, project_dir / lock_name(manifest.name))

    @property
    def gitignore(self) -> Path:
        """The ``.gitignore`` that keeps ``.pixelbuild/`` out of commits."""
        return self.state_dir / ".gitignore"

    def review(self, name: str) -> Path:
        """The default output folder of the review command ``name`` (one of ``REVIEW_FOLDERS``)."""
        return self.state_dir / name

    def check_state(self) -> None:
        """Refuse (``fsguard.LinkedStateError``) a local-state folder that is a symbolic link."""
        from pixelbuild.fsguard import check_state_folders

        cache = self.cache
        folders = [self.parse_cache, self.spec_cache, blobs_dir(cache), self.journal.parent, self.build_lock.parent]
        folders += [actions_dir(cache, kind) for kind in ACTION_KINDS]
        folders.append(comfyui_dir(self.project_dir))
        folders += [self.review(name) for name in REVIEW_FOLDERS]  # pages are written there
        check_state_folders(str(self.project_dir), [str(folder) for folder in folders])

    def display(self, path: Path) -> str:
        """``path`` relative to the project folder, for messages."""
        try:
            return path.relative_to(self.project_dir).as_posix()
        except ValueError:
            return str(path)
