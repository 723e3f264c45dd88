"""A project on disk: where its files live, and its loaded state (manifest → specs → keys → plan)."""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Callable, Collection, Sequence
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

import msgspec

from pixelbuild.errors import UsageError
from pixelbuild.fsguard import OutputGuard
from pixelbuild.keys import SpriteKeys, atlas_key, compute_keys
from pixelbuild.local.filehashes import Clock, FileHashCache
from pixelbuild.local.journal import read_journal
from pixelbuild.local.layout import ProjectPaths
from pixelbuild.local.parsecache import ParseCache
from pixelbuild.local.store import Store
from pixelbuild.lock import Lock, OutputRecord, apply_journal, lock_outputs, read_lock
from pixelbuild.manifest import Manifest, load_manifest
from pixelbuild.plan import FileState, Plan, make_plan
from pixelbuild.resolver import Resolved, project_file_path, resolve

if TYPE_CHECKING:
    from pixelbuild.preload import Preloaded


class Session(msgspec.Struct, dict=True):
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

    @cached_property
    def guard(self) -> OutputGuard:
        """The gate for every write and delete under the output root."""
        project = self.resolved.project
        return OutputGuard(self._output_root, project.follow_output_symlink, project.keep, str(self.paths.project_dir))

    def foreign(self, lock: Lock, force: bool = False) -> Callable[[str], str | None]:
        """A function telling why writing an output path would clobber a file pixelbuild does not own
        (not in ``lock`` with its current content, a link, a folder), or None when it may be written.

        With ``force``, files and links are replaced; a link or a file among the folders on the way never is.
        """
        recorded: dict[str, list[OutputRecord]] = {}  # filled on first use: most plans never ask
        verified: set[str] = set()
        prefix = self.paths.display(self.output_dir)

        def problem(relative: str) -> str | None:
            shown = f"{prefix}/{relative}"
            trouble = self.guard.inspect(relative, verified)
            if trouble is not None:
                if trouble == f"{relative} is a symbolic link":
                    return None if force else f"would replace {shown}, which is a symbolic link (use --force)"
                return f"cannot write {shown}: {trouble}"
            if force:
                return None
            path = os.path.join(self._output_root, relative)
            digest = self.hashes.hash(path)
            if digest is None:
                return None
            if not recorded:
                for output in lock_outputs(lock):
                    recorded.setdefault(output.path, []).append(output)
            records = recorded.get(relative)
            if not records:
                if digest in self._cached_results(relative):
                    return None  # the very bytes the build would write: replacing them loses nothing
                return f"would overwrite {shown}, which pixelbuild did not write (use --force)"
            if any(compare_output(path, digest, record) is FileState.OK for record in records):
                return None
            if digest in self._cached_results(relative):
                # The very bytes this build would write: a build killed after writing them, before its
                # journal recorded them, left them. Refusing would need --force for good (a stuck state).
                return None
            return f"would overwrite {shown}, which was changed since pixelbuild wrote it (use --force)"

        return problem

    @cached_property
    def _results_by_path(self) -> dict[str, tuple[str, str, int]]:
        """For each output path of the manifest: the cache action (kind, key) that holds it, and its index."""
        by_path: dict[str, tuple[str, str, int]] = {}
        for sprite in self.resolved.sprites:
            by_path[sprite.output] = ("post", self.keys[sprite.id].post, 0)
        for atlas in self.resolved.atlases:
            for index, path in enumerate(atlas.outputs()):
                by_path[path] = ("pack", self.atlas_keys[atlas.id], index)
        return by_path

    def _cached_results(self, relative: str) -> set[str]:
        """Blob hashes the cache holds for the output path ``relative`` under the current manifest."""
        found = self._results_by_path.get(relative)
        if found is None:
            return set()
        kind, key, index = found
        record = self.store.get_action(kind, key)
        images = record.images if record else []
        return {images[index].blob} if index < len(images) else set()

    def plan(self, lock: Lock, force: bool = False, rebuilt: Collection[str] = ()) -> Plan:
        """Plan a build against ``lock`` (``force``: outputs may replace files pixelbuild does not own;
        ``rebuilt``: see ``make_plan``).

        Refuses (exit 2) when the output root is a symbolic link the manifest does not allow.
        """
        self.guard.verify_root(self.paths.project_dir)
        return make_plan(
            self.resolved.sprites,
            self.keys,
            lock,
            self.file_state,
            has_post=lambda key: self.store.has_action("post", key),
            has_generation=lambda key: self.store.has_action("gen", key),
            atlases=[(atlas, self.atlas_keys[atlas.id]) for atlas in self.resolved.atlases],
            has_pack=lambda key: self.store.has_action("pack", key),
            foreign=self.foreign(lock, force),
            rebuilt=rebuilt,
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
    if output.pixel_hash is not None and pixels_match(Path(path), output.pixel_hash, output):
        return FileState.OK
    return FileState.MODIFIED


def pixels_match(path: Path, expected: str, output: OutputRecord | None = None) -> bool:
    """Whether the image at ``path`` decodes to pixels with hash ``expected`` (and, first, has the size
    ``output`` records: a file claiming another size is never inflated)."""
    from pixelbuild.png import decode_png, pixel_hash
    from pixelbuild.pngheader import png_header_size

    try:
        data = path.read_bytes()
        if output is not None and output.width is not None and png_header_size(data) != (output.width, output.height):
            return False
        return pixel_hash(decode_png(data)) == expected
    except (OSError, ValueError, SyntaxError):
        return False


def open_session(paths: ProjectPaths, clock: Clock | None = None, preloaded: Preloaded | None = None) -> Session:
    """Load, validate and resolve the manifest and compute every sprite's keys (``clock``: see
    ``FileHashCache``).

    Files whose resolution is cached (``pixelbuild.local.speccache``) are neither resolved nor hashed again:
    the keys stage takes their keys from the cache, and the cache keeps the fresh ones it is given. A large
    uncached manifest is first loaded by worker processes (``pixelbuild.preload``; ``preloaded``: what they
    made, else they are started here when worth it).
    """
    paths.check_state()  # every command that loads a project may write its caches
    if preloaded is None:
        from pixelbuild.preload import preload

        preloaded = preload(paths)
    from pixelbuild.local.speccache import SpecCache

    parse_cache = ParseCache(paths.parse_cache, deferred=True)
    hashes = FileHashCache(paths.hashes, clock)

    def file_hash(ref: str) -> str | None:
        return hashes.hash(project_file_path(paths.project_dir, ref))

    cache = SpecCache(paths.spec_cache, file_hash, paths.project_dir)
    # A cached sprite that meets an error is resolved again from its YAML (pixelbuild.resolver), so a bad
    # manifest fails with the error it gives loaded alone, whatever the workers made.
    if preloaded.shares:
        parse_cache.stage(preloaded.parse.items())
        cache.stage(preloaded.spec.items())
    manifest = load_manifest(paths.manifest, parse_cache=parse_cache)
    resolved = resolve(manifest, cache)
    keys = compute_keys(resolved.sprites, file_hash, cache.keys)
    # Only now: a manifest that fails to load, resolve or hash writes nothing.
    cache.save(keys)
    parse_cache.flush()
    return Session(paths, manifest, resolved, keys, hashes, Store(paths.cache))


def read_current_lock(paths: ProjectPaths) -> Lock:
    """The lock as the next build will see it: the file with any unfolded journal applied."""
    return read_current_state(paths)[0]


def read_current_state(paths: ProjectPaths) -> tuple[Lock, frozenset[str]]:
    """The lock with any unfolded journal applied, and the sprites the journal set (see ``make_plan``)."""
    lock = read_lock(paths.lock, paths.display(paths.lock))
    records = read_journal(paths.journal)
    if not records:
        return lock, frozenset()
    return apply_journal(lock, records), frozenset(str(r["id"]) for r in records if r["op"] == "set")
