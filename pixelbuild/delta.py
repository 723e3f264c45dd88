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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pixelbuild.errors import ManifestError
from pixelbuild.hashing import hash_bytes
from pixelbuild.keys import compute_keys
from pixelbuild.limits import MAX_SPRITES
from pixelbuild.local.filehashes import Clock, FileHashCache
from pixelbuild.local.layout import ProjectPaths
from pixelbuild.local.parsecache import ParseCache
from pixelbuild.local.speccache import SpecCache
from pixelbuild.local.stamp import StampInputs, stamp_changes
from pixelbuild.local.store import Store
from pixelbuild.lock import Lock, LockFormatError, LockText, read_lock_bytes
from pixelbuild.manifest import Manifest, ManifestFile, load_file, load_manifest
from pixelbuild.project import Session
from pixelbuild.resolver import project_file_path, resolve


@dataclass(frozen=True, slots=True)
class Delta:
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


def prepare(paths: ProjectPaths, clock: Clock | None = None) -> Delta | None:
    """The build of the files changed since the last complete build, if it can be planned from them
    alone (see the module's docstring); else None."""
    found = stamp_changes(str(paths.manifest))
    if found is None:
        return None
    stamp, changed = found
    rows: list[list[str]] = stamp["manifests"]
    if not changed or rows[0][0] in changed:
        return None
    paths.check_state()
    manifest_path = paths.manifest.resolve()
    project_dir = manifest_path.parent
    parse_cache = ParseCache(paths.parse_cache, deferred=True)
    old_digests = {name: digest for name, digest in rows}
    try:
        root = load_file(manifest_path, project_dir, parse_cache, is_root=True)
        if [_relative(path, project_dir) for path in root.includes] == [row[0] for row in rows[1:]]:
            # The root includes every file itself (the usual layout): no other header is needed.
            files = [load_file(project_dir / name, project_dir, parse_cache, is_root=False) for name in changed]
            manifest = Manifest(project_dir, (root, *files))
        else:
            # Files include files: every header (sprites stay unread) says what each file inherits.
            manifest = load_manifest(manifest_path, parse_cache=parse_cache)
            if [_relative(file.path, project_dir) for file in manifest.files] != [row[0] for row in rows]:
                return None
            by_name = {_relative(file.path, project_dir): file for file in manifest.files}
            files = [by_name[name] for name in changed]
    except ManifestError:
        return None  # the full path reports it
    old_headers = [parse_cache.get(old_digests[name], False) for name in changed]
    if any(
        header is None or {"include", "atlases"} & {*header[0], *new.header}
        for header, new in zip(old_headers, files, strict=True)
    ):
        return None

    raw = read_lock_bytes(paths.lock, paths.display(paths.lock))
    text = LockText.index(raw) if raw is not None and hash_bytes(raw) == stamp["lock"] else None
    if text is None:
        return None
    atlases = root.header.get("atlases", ())
    try:
        if sorted(text.ids("atlases")) != sorted(atlas["id"] for atlas in atlases):
            return None  # an atlas defined in another file (or gone): its members may be anywhere
    except LockFormatError:
        return None
    patterns = [pattern for atlas in atlases for pattern in atlas["sprites"]]

    # The few files this build reads are hashed directly: loading and saving the table of every file
    # hash (10,000 outputs make ~1 MB) would cost more than hashing them.
    hashes = FileHashCache(None, clock)

    def file_hash(ref: str) -> str | None:
        return hashes.hash(project_file_path(paths.project_dir, ref))

    cache = SpecCache(paths.spec_cache, file_hash, paths.project_dir)
    try:
        resolved = resolve(manifest, cache, only={file.path for file in files})
        keys = compute_keys(resolved.sprites, file_hash, cache.keys)
    except ManifestError:
        return None

    # The changed files' sprites before the edit, as the last build resolved them.
    earlier = SpecCache(paths.spec_cache, file_hash, paths.project_dir)
    parent_of = {child: file for file in manifest.files for child in file.includes}
    old_ids: list[str] = []
    old_outputs: list[str] = []
    for file, name, header in zip(files, changed, old_headers, strict=True):
        assert header is not None
        # The defaults it inherits, root first (as the resolver layers them), then its own as they were.
        chain: list[ManifestFile] = []
        parent = parent_of.get(file.path)
        while parent is not None:
            chain.insert(0, parent)
            parent = parent_of.get(parent.path)
        inherited = [ancestor.header["defaults"] for ancestor in chain if "defaults" in ancestor.header]
        own = [header[0]["defaults"]] if "defaults" in header[0] else []
        before = ManifestFile(
            path=file.path,
            display=file.display,
            digest=old_digests[name],
            header=header[0],
            sprites=[],
            includes=(),
            include_globs=(),
            is_root=False,
        )
        resolution = earlier.lookup(before, [*inherited, *own], resolved.project)
        if resolution is None:
            return None
        old_ids += [spec.id for spec in resolution[0]]
        old_outputs += [spec.output for spec in resolution[0]]

    touched = [*old_ids, *(sprite.id for sprite in resolved.sprites)]
    if any(fnmatch.fnmatchcase(sprite_id, pattern) for sprite_id in touched for pattern in patterns):
        return None  # an atlas gains, loses or repacks a member
    try:
        entries = {sprite_id: entry for sprite_id in old_ids if (entry := text.entry(sprite_id)) is not None}
        # An id that is new to the changed files but in the lock belongs to another file.
        if any(s.id not in entries and text.contains(s.id) for s in resolved.sprites):
            return None
    except LockFormatError:
        return None  # the full path names it
    others = stamp["sprites"] - len(entries)  # every sprite had an entry after the last complete build
    max_sprites = root.header.get("project", {}).get("max_sprites", MAX_SPRITES)
    if type(others) is not int or others < 0 or others + len(resolved.sprites) > max_sprites:
        return None
    left = set(old_outputs)
    if _clashes([s.output for s in resolved.sprites], [p for p in stamp["outputs"]["paths"] if p not in left]):
        return None
    # Only now: an edit the full path must judge (or refuse) leaves nothing in the caches.
    cache.save(keys)
    parse_cache.flush()
    session = Session(paths, manifest, resolved, keys, hashes, Store(paths.cache))
    digests = {name: file.digest for name, file in zip(changed, files, strict=True)}
    return Delta(session, Lock(entries), text, others, stamp, digests)


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
