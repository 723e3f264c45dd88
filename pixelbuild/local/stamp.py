"""The no-op stamp (``.pixelbuild/state/noop.json``): written after a build that left everything up to
date, checked before the next one. If it still holds, a build has nothing to do.

The stamp records what that build read (manifest digests, include globs, referenced files' stats, the
lock's digest) and wrote (outputs' stats). ``check_for_build`` is the whole cost of a no-op ``pixelbuild
build`` (the CLI or ``pixelbuild.build`` calls it, once), so this module imports almost nothing (no YAML
parser, schema, engine or image library, not even dataclasses or pathlib) and reads only what it must:
the stamp, the manifest files (hashed), the lock (hashed) and one ``stat`` per referenced file and output.

The stamp belongs to one manifest (see ``pixelbuild.local.layout``) and holds only paths relative to the
project folder, plus that folder's real path: a copied or moved project verifies once, in full. A file
is known by its size, mtime, ctime and inode (a user can set the mtime, not the ctime; an atomic
replace changes the inode). A file changed so shortly before its stats were taken that a second change
could leave all four equal (timestamps are coarse) is *racily clean*, as git calls it: the stamp holds
its content digest too, and the check hashes it.
"""

from __future__ import annotations

import glob
import json
import os
from collections.abc import Collection, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import xxhash

from pixelbuild._version import __version__
from pixelbuild.local.filehashes import Clock, digest_or_none, is_racy, stat_signature
from pixelbuild.local.layout import stamp_files
from pixelbuild.local.seal import read_regular, read_sealed

if TYPE_CHECKING:
    from pathlib import Path

STAMP_FORMAT = 3
#: A manifest file or a racily clean file larger than this is not hashed here (the full build decides).
_MAX_HASHED = 256 << 20
#: The largest stamp read back.
_MAX_STAMP_BYTES = 64 << 20
BUILTIN_PREFIX = "builtin:"
#: What ``stamp_changes`` finds: the stamp's data, the manifest files (as it names them) changed since, and
#: the lock's bytes (the very bytes the stamp's build wrote: an edit build splices them, unread again).
StampFound = tuple[dict[str, Any], list[str], bytes]


def ref_path(project_dir: str, ref: str) -> str:
    """The file a resolved reference names: a project path, or ``builtin:<name>`` (a shipped template)."""
    if ref.startswith(BUILTIN_PREFIX):
        from pixelbuild._resources import data_dir_name

        return os.path.join(data_dir_name("workflows"), ref[len(BUILTIN_PREFIX) :])
    return os.path.join(project_dir, ref)


def all_relative(paths: list[str]) -> bool:
    """Whether every path is relative and stays below its base (no ``..``): else the stamp is foreign."""
    if not paths:
        return True
    joined = "\0" + "\0".join(paths) + "\0"
    if os.name == "nt":
        joined = joined.replace("\\", "/")
    if "\0/" in joined or "\0\0" in joined:
        return False
    if ".." in joined and any(bad in joined for bad in ("/../", "\0../", "/..\0", "\0..\0")):
        return False
    return os.name != "nt" or not any(os.path.splitdrive(path)[0] for path in paths)


def signatures(base: str, paths: list[str], resolve: bool, t0: int) -> list[int]:
    """The signatures of ``paths`` under ``base``, flat: (size, mtime - t0, ctime - mtime, inode) each.

    Flat small numbers, as the stamp stores them: one list comparison checks them all, and the stamp
    parses fast. Raises ``OSError`` if a file is missing.
    """
    found: list[int] = []
    extend = found.extend
    names = (ref_path(base, ref) for ref in paths) if resolve else map(os.path.join(base, "").__add__, paths)
    for info in map(os.stat, names):  # the whole no-op is this loop on a large project: keep it lean
        mtime = info.st_mtime_ns
        extend((info.st_size, mtime - t0, info.st_ctime_ns - mtime, info.st_ino))
    return found


def check_for_build(manifest: str, only: Sequence[str] = (), force: bool = False) -> StampFound | None:
    """What the stamp of the manifest at absolute path ``manifest`` says for a build (``stamp_changes``),
    or None: a build of some sprites (``only``) or one that replaces foreign files (``force``) never trusts it.

    With ``up_to_date_sprites`` it is the no-op fast path of ``build``; the CLI checks it before it imports
    the builder, and hands what it found on.
    """
    if only or force:
        return None
    return stamp_changes(manifest)


def up_to_date_sprites(found: StampFound | None) -> int | None:
    """The number of up-to-date sprites if ``found`` (what ``stamp_changes`` gave) says the stamp holds
    and no manifest file changed; else None."""
    if found is None or found[1]:
        return None
    try:
        return int(found[0]["sprites"])
    except (KeyError, TypeError, ValueError):
        return None


#: The last stamp parsed, by its bytes: a full build checks the stamp, then reads its lock digest again
#: (``stamped_lock_digest``), and a 10,000-sprite stamp is ~0.5 MB of JSON, slower to parse than to read
#: and compare.
_parsed: tuple[bytes, Any] = (b"", None)


def _read_stamp(stamp_path: str) -> Any:
    """The stamp's JSON data (sealed: one this user's pixelbuild did not write reads as None)."""
    global _parsed
    sealed = read_sealed("stamp", stamp_path, _MAX_STAMP_BYTES)
    if sealed is None:
        return None
    if sealed != _parsed[0]:
        _parsed = (sealed, json.loads(sealed))
    return _parsed[1]


def stamp_changes(manifest: str) -> StampFound | None:
    """The stamp of the manifest at absolute path ``manifest`` and the manifest files (as it names them)
    whose bytes changed since, if everything else it records still holds; else None."""
    stamp_path, lock_path, journal = stamp_files(manifest)
    try:
        if os.path.exists(journal):  # an interrupted build's work is not in the lock yet
            return None
        # Sealed: a stamp this user's pixelbuild did not write (carried in, planted) never skips a build.
        stamp = _read_stamp(stamp_path)
    except (OSError, ValueError, RecursionError):
        return None
    project_dir, name = os.path.split(manifest)
    if not isinstance(stamp, dict):
        return None
    try:
        if stamp["format"] != STAMP_FORMAT or stamp["version"] != __version__ or stamp["manifest"] != name:
            return None
        if stamp["project"] != os.path.realpath(project_dir):
            return None  # copied or moved: every signature below belongs to other files
        lock = read_regular(lock_path, _MAX_HASHED)
        if xxhash.xxh3_128_hexdigest(lock) != stamp["lock"]:
            return None
        output_dir = os.path.join(project_dir, stamp["output"])
        files, outputs = stamp["files"], stamp["outputs"]
        named = [stamp["output"], *stamp["absent"], *(row[0] for row in stamp["manifests"])]
        # A glob's pattern may climb out of its base folder (an include in a subfolder), not out of the project.
        named += [os.path.normpath(os.path.join(base, pattern)) for base, pattern, _matches in stamp["globs"]]
        named += [row[1] for row in stamp["racy"]]
        named += [ref.removeprefix(BUILTIN_PREFIX) for ref in files["paths"]]
        if not all_relative(named) or not all_relative(outputs["paths"]):
            return None
        changed = []
        for relative, digest in stamp["manifests"]:
            found = digest_or_none(os.path.join(project_dir, relative), _MAX_HASHED)
            if found != digest:
                if found is None:
                    return None
                changed.append(relative)
        for base, pattern, matches in stamp["globs"]:
            matched = glob.glob(pattern, root_dir=os.path.join(project_dir, base), recursive=True)
            if sorted(matched) != matches:
                return None
        for absent in stamp["absent"]:
            if os.path.lexists(os.path.join(project_dir, absent)):
                return None
        t0 = stamp["t0"]
        if signatures(project_dir, files["paths"], True, t0) != files["signatures"]:
            return None
        if signatures(output_dir, outputs["paths"], False, t0) != outputs["signatures"]:
            return None
        for group, relative, digest in stamp["racy"]:  # racily clean when stamped: their bytes decide
            path = ref_path(project_dir, relative) if group == "files" else os.path.join(output_dir, relative)
            if digest_or_none(path, _MAX_HASHED) != digest:
                return None
    except (OSError, KeyError, TypeError, ValueError, IndexError, AttributeError):
        return None
    return stamp, changed, lock


class StampInputs:
    """What a finished, fully up-to-date build read and wrote; every path relative to the project.

    A plain class: a dataclass would cost the no-op check, which imports this module, its definition.
    """

    __slots__ = (
        "absent",
        "files",
        "globs",
        "lock_digest",
        "manifest",
        "manifests",
        "output",
        "outputs",
        "project_dir",
        "sprites",
    )

    def __init__(
        self,
        *,
        project_dir: str,  # the project folder's real path (a copy or a move must verify once)
        manifest: str,  # the manifest's file name: the stamp belongs to it
        manifests: Sequence[tuple[str, str]],  # (path, digest of bytes)
        globs: Sequence[tuple[str, str, Sequence[str]]],  # (base folder, pattern, sorted matches)
        files: Sequence[str],  # referenced files: project paths or ``builtin:<name>``
        absent: Sequence[str],  # paths that must not exist
        lock_digest: str,
        output: str,  # the output root
        outputs: Sequence[str],  # every output, relative to the output root
        sprites: int,
    ) -> None:
        self.project_dir = project_dir
        self.manifest = manifest
        self.manifests = manifests
        self.globs = globs
        self.files = files
        self.absent = absent
        self.lock_digest = lock_digest
        self.output = output
        self.outputs = outputs
        self.sprites = sprites


def write_stamp(
    path: Path,
    inputs: StampInputs,
    clock: Clock | None = None,
    previous: Mapping[str, Any] | None = None,
    written: Collection[str] = (),
) -> None:
    """Record a no-op stamp (the stats of files and outputs are taken now, by ``clock``; racily clean
    ones are hashed).

    ``previous``: the stamp the build started from, which held then for every file and output it lists
    (``stamp_changes``). Those the build did not write (``written``: output paths) keep the signatures it
    recorded instead of being taken again: one changed since shows at the next check all the same.
    """
    from pixelbuild.fsutil import atomic_write_bytes
    from pixelbuild.local.seal import seal

    if clock is None:
        import time

        clock = time.time_ns
    # Taken before any stat: a file changed since (or just before) cannot look older than this.
    taken_ns = clock()
    # Signatures are stored relative to t0; carried ones keep the previous stamp's.
    t0 = taken_ns if previous is None else previous["t0"]
    output_dir = os.path.join(inputs.project_dir, inputs.output)
    racy: list[list[str]] = []
    groups: dict[str, dict[str, Any]] = {}
    try:
        for group, base, paths, resolve in (
            ("files", inputs.project_dir, list(inputs.files), True),
            ("outputs", output_dir, list(inputs.outputs), False),
        ):
            carried: dict[str, int] = {}
            if previous is not None:
                carried = {item: index for index, item in enumerate(previous[group]["paths"])}
                for item in written if group == "outputs" else ():
                    carried.pop(item, None)
            fresh = [item for item in paths if item not in carried]
            flat = signatures(base, fresh, resolve, t0)
            for index, item in enumerate(fresh):
                size, mtime, change, inode = flat[4 * index : 4 * index + 4]
                signature = (size, mtime + t0, mtime + change + t0, inode)
                if is_racy(signature, taken_ns):
                    full = ref_path(base, item) if resolve else os.path.join(base, item)
                    digest = digest_or_none(full, _MAX_HASHED)
                    if digest is None or stat_signature(full) != signature:
                        raise FileNotFoundError(item)  # changing under our feet: no stamp
                    racy.append([group, item, digest])
            if carried:
                assert previous is not None
                flat = _merge_signatures(paths, carried, previous[group]["signatures"], fresh, flat)
                racy += [row for row in previous["racy"] if row[0] == group and row[1] in carried]
            groups[group] = {"paths": paths, "signatures": flat}
    except OSError:
        clear_stamp(path)
        return
    payload = {
        "format": STAMP_FORMAT,
        "version": __version__,
        "project": inputs.project_dir,
        "manifest": inputs.manifest,
        "manifests": [list(row) for row in inputs.manifests],
        "globs": [[base, pattern, list(matches)] for base, pattern, matches in inputs.globs],
        "absent": list(inputs.absent),
        "lock": inputs.lock_digest,
        "output": inputs.output,
        "t0": t0,
        "files": groups["files"],
        "outputs": groups["outputs"],
        "racy": racy,
        "sprites": inputs.sprites,
    }
    # msgspec (the store's encoder, loaded by every build that writes a stamp) is ~8x json.dumps on the
    # 10,000 outputs' paths and signatures; the check reads the stamp back with json, which imports nothing.
    import msgspec

    atomic_write_bytes(path, seal("stamp", path.name, msgspec.json.encode(payload)))


def _merge_signatures(
    paths: Sequence[str], carried: Mapping[str, int], old: Sequence[int], fresh: Sequence[str], taken: Sequence[int]
) -> list[int]:
    """The flat signatures of ``paths``: a carried path's from ``old`` (by its index there), a fresh one's
    from ``taken`` (in the order of ``fresh``)."""
    at = {item: index for index, item in enumerate(fresh)}
    flat: list[int] = []
    for item in paths:
        index = carried.get(item)
        if index is not None:
            flat += old[4 * index : 4 * index + 4]
        else:
            index = at[item]
            flat += taken[4 * index : 4 * index + 4]
    return flat


def clear_stamp(path: Path) -> None:
    """Forget the stamp: the next build takes the full path."""
    path.unlink(missing_ok=True)


def stamped_lock_digest(manifest: str) -> str | None:
    """The digest of the lock the last complete build of the manifest at absolute path ``manifest`` wrote,
    as its stamp records it (None: no stamp of this pixelbuild's): bytes with that digest are
    ``render_lock``'s work, which a build may splice."""
    try:
        stamp = _read_stamp(stamp_files(manifest)[0])
    except (OSError, ValueError, RecursionError):
        return None
    if not isinstance(stamp, dict) or stamp.get("format") != STAMP_FORMAT or stamp.get("version") != __version__:
        return None
    digest = stamp.get("lock")
    return digest if isinstance(digest, str) else None
