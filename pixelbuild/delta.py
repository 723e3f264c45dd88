"""The build of a small edit: resolve and plan only the sprites of the manifest files that changed since
the last complete build, and take everything else from its stamp.

The stamp (``pixelbuild.local.stamp``) says what the last complete build read and wrote. When it still holds
for everything but the bytes of some included files, only their sprites can have changed, provided
nothing in those files reaches beyond them. This module takes that path only where the reach is known
exactly, and otherwise (``prepare`` returns None) the build resolves and plans the whole manifest:

* the root manifest is unchanged (it holds the project settings, defaults and includes that every
  sprite inherits), and so is every file that includes a changed one: what it inherits is unchanged;
* no changed file includes files or defines atlases, before or after the edit; every atlas is defined
  in the root manifest, and none lists a sprite of a changed file, before or after the edit (an atlas
  lists sprites of any file, and its key depends on theirs): the atlases are up to date;
* every file, image and output the stamp lists is unchanged (the same check as the no-op's), so every
  other sprite is still up to date;
* the changed files' sprites clash with no other sprite (ids, outputs), and stay within
  ``project.max_sprites``: the full path reports a clash, located as always.

What the other sprites need is read from the stamp (their outputs and number), the lock (whether an id is
taken) and the spec cache (the changed files' sprites as they were, to know which ones left). The lock's entries of
the changed files' sprites are read and validated one by one; the lock is spliced, not rendered.
"""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import msgspec

from pixelbuild.errors import ManifestError
from pixelbuild.hashing import hash_bytes
from pixelbuild.keys import SpriteKeys, compute_keys
from pixelbuild.limits import MAX_SPRITES
from pixelbuild.local.filehashes import Clock, FileHashCache
from pixelbuild.local.layout import ProjectPaths
from pixelbuild.local.parsecache import ParseCache
from pixelbuild.local.speccache import SpecCache
from pixelbuild.local.stamp import StampFound, StampInputs
from pixelbuild.local.store import Store
from pixelbuild.lock import Lock, LockEntry, LockFormatError, LockText, read_lock_bytes
from pixelbuild.manifest import Manifest, ManifestFile, load_file, load_manifest
from pixelbuild.project import Session
from pixelbuild.resolver import ProjectSettings, Resolved, project_file_path, resolve


class Delta(msgspec.Struct, frozen=True):
    """A build of the changed files' sprites: ``session`` holds them alone, ``lock`` the lock's entries of
    their sprites, old and new; ``others`` sprites of the unchanged files are up to date."""

    session: Session
    lock: Lock
    text: LockText
    others: int
    stamp: Mapping[str, Any]
    digests: Mapping[str, str]  # changed manifest file (as the stamp names it) → digest of its new bytes

    def holds(self, paths: ProjectPaths) -> bool:
        """Whether the lock is still the one the plan was made against (checked again under the build lock)."""
        try:
            raw = read_lock_bytes(paths.lock, paths.display(paths.lock))
        except ManifestError:
            return False
        return raw == self.text.raw and not paths.journal.exists()

    def written(self, final: Lock) -> set[str]:
        """The output paths this build may have written or deleted: those of the changed files' sprites."""
        entries = [*self.lock.sprites.values(), *final.sprites.values()]
        return {output.path for entry in entries for output in entry.outputs}

    def stamp_inputs(self, final: Lock, lock_bytes: bytes) -> StampInputs:
        """The stamp after the build: the old one, with the changed files' digests, sprites and outputs.

        The referenced files and paths relied on as absent only grow: one that the edit no longer reads
        makes a later no-op check fail when it changes, and that build's stamp drops it.
        """
        stamp = self.stamp
        left = {output.path for entry in self.lock.sprites.values() for output in entry.outputs}
        outputs = [path for path in stamp["outputs"]["paths"] if path not in left]
        outputs += [output.path for entry in final.sprites.values() for output in entry.outputs]
        resolved = self.session.resolved
        return StampInputs(
            project_dir=stamp["project"],
            manifest=stamp["manifest"],
            manifests=[(name, self.digests.get(name, digest)) for name, digest in stamp["manifests"]],
            globs=[(base, pattern, matches) for base, pattern, matches in stamp["globs"]],
            files=sorted({*stamp["files"]["paths"], *resolved.files}),
            absent=sorted({*stamp["absent"], *resolved.absent}),
            lock_digest=hash_bytes(lock_bytes),
            output=stamp["output"],
            outputs=outputs,
            sprites=self.others + len(final.sprites),
        )


def prepare(paths: ProjectPaths, found: StampFound, clock: Clock | None = None) -> Delta | None:
    """The build of the files changed since the last complete build, if it can be planned from them
    alone (see the module's docstring); else None. ``found``: the stamp, the changed manifest files and
    the lock's bytes, as ``stamp_changes`` gave them (everything else the stamp records still holds)."""
    stamp, changed, lock_bytes = found
    if not _root_unchanged(stamp, changed):
        return None
    paths.check_state()
    parse_cache = ParseCache(paths.parse_cache, deferred=True)
    loaded = _load_changed(paths, stamp, changed, parse_cache)
    if loaded is None:
        return None
    root, manifest, files = loaded
    befores = _files_before(parse_cache, stamp, changed, files)
    if befores is None:
        return None
    # The bytes the stamp's build wrote, as the check read them (``holds`` reads the file again, locked).
    text = LockText.index(lock_bytes)
    if text is None:
        return None
    patterns = _root_atlas_patterns(root, text)
    if patterns is None:
        return None

    # The few files this build reads are hashed directly: loading and saving the table of every file
    # hash (10,000 outputs make ~1 MB) would cost more than hashing them.
    hashes = FileHashCache(None, clock)
    file_hash = _file_hasher(paths, hashes)
    cache = SpecCache(paths.spec_cache, file_hash, paths.project_dir)
    planned = _resolve_changed(manifest, files, cache)
    if planned is None:
        return None
    resolved, keys = planned
    earlier = SpecCache(paths.spec_cache, file_hash, paths.project_dir)
    old = _sprites_before(earlier, manifest, befores, resolved.project)
    if old is None:
        return None
    old_ids, old_outputs = old
    new_ids = [sprite.id for sprite in resolved.sprites]
    if _atlas_member_touched([*old_ids, *new_ids], patterns):
        return None
    entries = _lock_entries(text, old_ids, new_ids)
    if entries is None:
        return None
    others = _others_within_max_sprites(stamp, root, len(entries), len(new_ids))
    if others is None or _outputs_clash(stamp, old_outputs, [sprite.output for sprite in resolved.sprites]):
        return None
    # Only now: an edit the full path must judge (or refuse) leaves nothing in the caches.
    cache.save(keys)
    parse_cache.flush()
    session = Session(paths, manifest, resolved, keys, hashes, Store(paths.cache))
    digests = {name: file.digest for name, file in zip(changed, files, strict=True)}
    return Delta(session, Lock(entries), text, others, stamp, digests)


def _root_unchanged(stamp: Mapping[str, Any], changed: Sequence[str]) -> bool:
    """Whether some file changed, and the root manifest (the stamp's first file) is not one of them."""
    rows: list[list[str]] = stamp["manifests"]
    return bool(changed) and rows[0][0] not in changed


def _load_changed(
    paths: ProjectPaths, stamp: Mapping[str, Any], changed: Sequence[str], parse_cache: ParseCache
) -> tuple[ManifestFile, Manifest, list[ManifestFile]] | None:
    """The root, the manifest holding the headers the changed files inherit, and the changed files (in
    ``changed``'s order); None where the files are no longer those the stamp lists, or one is bad."""
    rows: list[list[str]] = stamp["manifests"]
    manifest_path = paths.manifest.resolve()
    project_dir = manifest_path.parent
    try:
        root = load_file(manifest_path, project_dir, parse_cache, is_root=True)
        if [_relative(path, project_dir) for path in root.includes] == [row[0] for row in rows[1:]]:
            # The root includes every file itself (the usual layout): no other header is needed.
            files = [load_file(project_dir / name, project_dir, parse_cache, is_root=False) for name in changed]
            return root, Manifest(project_dir, (root, *files)), files
        # Files include files: every header (sprites stay unread) says what each file inherits.
        manifest = load_manifest(manifest_path, parse_cache=parse_cache)
    except ManifestError:
        return None  # the full path reports it
    if [_relative(file.path, project_dir) for file in manifest.files] != [row[0] for row in rows]:
        return None
    by_name = {_relative(file.path, project_dir): file for file in manifest.files}
    return root, manifest, [by_name[name] for name in changed]


def _files_before(
    parse_cache: ParseCache, stamp: Mapping[str, Any], changed: Sequence[str], files: Sequence[ManifestFile]
) -> list[ManifestFile] | None:
    """The changed files as they were before the edit (headers only, from the parse cache), where none of
    them includes files or defines atlases, before or after the edit; else None."""
    old_digests = {name: digest for name, digest in stamp["manifests"]}
    befores: list[ManifestFile] = []
    for name, file in zip(changed, files, strict=True):
        cached = parse_cache.get(old_digests[name], False)
        if cached is None or {"include", "atlases"} & {*cached[0], *file.header}:
            return None
        befores.append(
            ManifestFile(
                path=file.path,
                display=file.display,
                digest=old_digests[name],
                header=cached[0],
                sprites=[],
                includes=(),
                include_globs=(),
                is_root=False,
            )
        )
    return befores


def _root_atlas_patterns(root: ManifestFile, text: LockText) -> list[str] | None:
    """The member patterns of the atlases, where all of them are defined in the root manifest (the lock
    lists the same ones); else None."""
    atlases = root.header.get("atlases", ())
    try:
        if sorted(text.ids("atlases")) != sorted(atlas["id"] for atlas in atlases):
            return None  # an atlas defined in another file (or gone): its members may be anywhere
    except LockFormatError:
        return None
    return [pattern for atlas in atlases for pattern in atlas["sprites"]]


def _file_hasher(paths: ProjectPaths, hashes: FileHashCache) -> Callable[[str], str | None]:
    """The digest of a file the manifest names (relative to the project), through ``hashes``."""

    def file_hash(ref: str) -> str | None:
        return hashes.hash(project_file_path(paths.project_dir, ref))

    return file_hash


def _resolve_changed(
    manifest: Manifest, files: Sequence[ManifestFile], cache: SpecCache
) -> tuple[Resolved, dict[str, SpriteKeys]] | None:
    """The changed files' sprites resolved and keyed; None where one is bad (the full path reports it)."""
    try:
        resolved = resolve(manifest, cache, only={file.path for file in files})
        return resolved, compute_keys(resolved.sprites, cache.file_hash, cache.keys)
    except ManifestError:
        return None


def _sprites_before(
    earlier: SpecCache, manifest: Manifest, befores: Sequence[ManifestFile], project: ProjectSettings
) -> tuple[list[str], list[str]] | None:
    """The ids and outputs of the changed files' sprites before the edit, as the last build resolved
    them (from the spec cache); None where one file's are not cached."""
    parent_of = {child: file for file in manifest.files for child in file.includes}
    old_ids: list[str] = []
    old_outputs: list[str] = []
    for before in befores:
        own = [before.header["defaults"]] if "defaults" in before.header else []
        resolution = earlier.lookup(before, [*_inherited_defaults(before.path, parent_of), *own], project)
        if resolution is None:
            return None
        old_ids += [spec.id for spec in resolution[0]]
        old_outputs += [spec.output for spec in resolution[0]]
    return old_ids, old_outputs


def _inherited_defaults(path: Path, parent_of: Mapping[Path, ManifestFile]) -> list[Any]:
    """The defaults the file at ``path`` inherits along its chain of includes, root first (as the
    resolver layers them)."""
    chain: list[ManifestFile] = []
    parent = parent_of.get(path)
    while parent is not None:
        chain.insert(0, parent)
        parent = parent_of.get(parent.path)
    return [ancestor.header["defaults"] for ancestor in chain if "defaults" in ancestor.header]


def _atlas_member_touched(touched: Sequence[str], patterns: Sequence[str]) -> bool:
    """Whether a sprite of the changed files, before or after the edit, is an atlas member: the atlas
    gains, loses or repacks a member."""
    return any(fnmatch.fnmatchcase(sprite_id, pattern) for sprite_id in touched for pattern in patterns)


def _lock_entries(text: LockText, old_ids: Sequence[str], new_ids: Sequence[str]) -> dict[str, LockEntry] | None:
    """The lock's entries of the changed files' sprites before the edit, each read and validated; None
    where one is damaged (the full path names it) or a new id is another file's sprite."""
    try:
        entries = {sprite_id: entry for sprite_id in old_ids if (entry := text.entry(sprite_id)) is not None}
        # An id that is new to the changed files but in the lock belongs to another file.
        if any(sprite_id not in entries and text.contains(sprite_id) for sprite_id in new_ids):
            return None
    except LockFormatError:
        return None  # the full path names it
    return entries


def _others_within_max_sprites(stamp: Mapping[str, Any], root: ManifestFile, old: int, new: int) -> int | None:
    """The number of the other files' sprites (the stamp's count less the changed files' ``old``), where
    with the ``new`` ones they stay within ``project.max_sprites``; else None."""
    others = stamp["sprites"] - old  # every sprite had an entry after the last complete build
    max_sprites = root.header.get("project", {}).get("max_sprites", MAX_SPRITES)
    if type(others) is not int or others < 0 or others + new > max_sprites:
        return None
    return others


def _outputs_clash(stamp: Mapping[str, Any], old_outputs: Sequence[str], new_outputs: Sequence[str]) -> bool:
    """Whether an output of the changed files' sprites clashes with one of another file's (the stamp's
    outputs, less those the changed files' sprites had)."""
    left = set(old_outputs)
    if {path.lower() for path in new_outputs} <= {path.lower() for path in left}:
        # Outputs the changed files' sprites already had (an edit that moves none, the usual one): the last
        # complete build found them clashing with no other file's, and those are unchanged.
        return False
    return _clashes(new_outputs, [path for path in stamp["outputs"]["paths"] if path not in left])


def _relative(path: Path, project_dir: Path) -> str:
    return Path(os.path.relpath(path, project_dir)).as_posix()


def _clashes(new: Sequence[str], others: Sequence[str]) -> bool:
    """Whether an output of ``new`` is, or needs a folder where, or is a folder that, one of ``others``
    is (case-insensitively, as the resolver's claims)."""
    files = {path.lower() for path in others}
    folders: set[str] = set()
    for parent in {path.rpartition("/")[0] for path in files}:
        while parent and parent not in folders:
            folders.add(parent)
            parent = parent.rpartition("/")[0]
    for path in new:
        key = path.lower()
        if key in files or key in folders:
            return True
        parts = key.split("/")
        if any("/".join(parts[:end]) in files for end in range(1, len(parts))):
            return True
    return False
