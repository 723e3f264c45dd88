"""Where a project's files live: the manifest, the lock, and the local state under ``.pixelbuild/``.

Kept free of heavy imports: the no-op build path starts here.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

LOCK_NAME = "pixelbuild.lock"
STATE_DIR = ".pixelbuild"


@dataclass(frozen=True, slots=True)
class ProjectPaths:
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
        """Paths for a manifest file: state lives in ``.pixelbuild/`` beside it, the lock too."""
        manifest = manifest.absolute()
        project_dir = manifest.parent
        state = project_dir / STATE_DIR
        return cls(
            manifest=manifest,
            project_dir=project_dir,
            state_dir=state,
            lock=project_dir / LOCK_NAME,
            journal=state / "journal.jsonl",
            stamp=state / "state" / "noop.json",
            hashes=state / "state" / "files.json",
            parse_cache=state / "state" / "manifests",
            spec_cache=state / "state" / "resolved",
            cache=state / "cache",
            build_lock=state / "build.lock",
        )

    def display(self, path: Path) -> str:
        """``path`` relative to the project folder, for messages."""
        try:
            return path.relative_to(self.project_dir).as_posix()
        except ValueError:
            return str(path)
