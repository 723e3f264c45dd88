"""A project on disk: where its files live, and its loaded state (manifest → specs → keys → plan)."""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from pixelbuild.errors import UsageError
from pixelbuild.keys import SpriteKeys, atlas_key
from pixelbuild.lock import Lock, OutputRecord, apply_journal, read_journal, read_lock
from pixelbuild.manifest import Manifest, ParseCache, load_manifest
from pixelbuild.paths import ProjectPaths
from pixelbuild.plan import FileState, Plan, make_plan
from pixelbuild.resolver import Resolved, project_file_path, resolve
from pixelbuild.state import FileHashCache
from pixelbuild.store import Store


@dataclass
class Session:
    """A loaded project: manifest, resolved sprites, their keys, and access to files and cache."""

    paths: ProjectPaths
    manifest: Manifest
    resolved: Resolved
    keys: dict[str, SpriteKeys]
    hashes: FileHashCache
    store: Store

    @property
    def output_dir(self) -> Path:
        """Absolute output root."""
        return self.resolved.project.output_dir

    @cached_property
    def _output_root(self) -> str:
        return str(self.output_dir)

    def file_state(self, output: OutputRecord) -> FileState:
        """Compare an output on disk with its lock record (bytes, else decoded pixels)."""
        path = os.path.join(self._output_root, output.path)  # plain strings: this runs per sprite
        return compare_output(path, self.hashes.hash(path), output)

    def plan(self, lock: Lock) -> Plan:
        """Plan a build against ``lock``."""
        return make_plan(
            self.resolved.sprites,
            self.keys,
            lock,
            self.file_state,
            has_post=lambda key: self.store.has_action("post", key),
            has_generation=lambda key: self.store.has_action("gen", key),
            atlases=[(atlas, self.atlas_keys[atlas.id]) for atlas in self.resolved.atlases],
            has_pack=lambda key: self.store.has_action("pack", key),
        )

    @cached_property
    def atlas_keys(self) -> dict[str, str]:
        """The pack key of every atlas."""
        sprites = self.resolved.by_id
        return {atlas.id: atlas_key(atlas, self.keys, sprites) for atlas in self.resolved.atlases}

    def select(self, plan: Plan, only: Sequence[str]) -> Plan:
        """Restrict ``plan`` to sprites whose id matches one of the ``only`` globs (no removals then)."""
        if not only:
            return plan
        for pattern in only:
            if not any(fnmatch.fnmatchcase(sprite.id, pattern) for sprite in self.resolved.sprites):
                raise UsageError(f"--only '{pattern}' matches no sprite in {self.paths.display(self.paths.manifest)}")
        # Atlases and removals wait for a full build.
        return Plan(
            [
                decision
                for decision in plan.decisions
                if decision.sprite_id in self.resolved.by_id
                and any(fnmatch.fnmatchcase(decision.sprite_id, pattern) for pattern in only)
            ]
        )


def compare_output(path: str | os.PathLike[str], digest: str | None, output: OutputRecord) -> FileState:
    """How the file at ``path``, whose content hash is ``digest`` (None: absent), compares with its lock
    record: the same bytes, or other bytes with the same decoded pixels (another zlib), are OK."""
    if digest is None:
        return FileState.MISSING
    if digest == output.file_hash:
        return FileState.OK
    if output.pixel_hash is not None and pixels_match(Path(path), output.pixel_hash):
        return FileState.OK
    return FileState.MODIFIED


def pixels_match(path: Path, expected: str) -> bool:
    """Whether the image at ``path`` decodes to pixels with hash ``expected``."""
    from pixelbuild.png import decode_png, pixel_hash

    try:
        return pixel_hash(decode_png(path.read_bytes())) == expected
    except (OSError, ValueError, SyntaxError):
        return False


def open_session(paths: ProjectPaths) -> Session:
    """Load, validate and resolve the manifest and compute every sprite's keys.

    Files whose resolution is cached (``pixelbuild.speccache``) are neither resolved nor hashed again.
    """
    from pixelbuild.speccache import SpecCache

    parse_cache = ParseCache(paths.parse_cache, deferred=True)
    manifest = load_manifest(paths.manifest, parse_cache=parse_cache)
    hashes = FileHashCache(paths.hashes)
    cache = SpecCache(
        paths.spec_cache, lambda ref: hashes.hash(project_file_path(paths.project_dir, ref)), paths.project_dir
    )
    resolved = resolve(manifest, cache)
    parse_cache.flush()  # only now: a manifest that fails to load or resolve writes nothing
    keys = {sprite.id: cache.keys[sprite.id] for sprite in resolved.sprites}
    return Session(paths, manifest, resolved, keys, hashes, Store(paths.cache))


def read_current_lock(paths: ProjectPaths) -> Lock:
    """The lock as the next build will see it: the file with any unfolded journal applied."""
    lock = read_lock(paths.lock, paths.display(paths.lock))
    records = read_journal(paths.journal)
    return apply_journal(lock, records) if records else lock
