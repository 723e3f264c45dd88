"""The no-op check: is the last complete build's stamp still true? If so, a build has nothing to do.

This is the whole cost of a no-op ``pixelbuild build``, so it imports almost nothing (no YAML parser,
schema, engine, image library, not even dataclasses or pathlib) and reads only what it must: the stamp,
the manifest files (hashed), the lock (hashed) and one ``stat`` per referenced file and output.

The stamp belongs to one manifest (see ``pixelbuild.paths``) and holds only paths relative to the
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
import stat as stat_module

import xxhash

from pixelbuild import __version__
from pixelbuild.paths import stamp_files
from pixelbuild.statekey import read_sealed

STAMP_FORMAT = 3
#: How recent a change makes a file racily clean: coarser than any file system's timestamps (FAT: 2 s)...
RACY_NS = 2_000_000_000
#: ...or, for a file whose mtime has a fraction of a second (a fine-grained file system, stamped from the
#: kernel's coarse clock, a tick of 10 ms at most), well above one tick.
FINE_RACY_NS = 100_000_000
#: A manifest file or a racily clean file larger than this is not hashed here (the full build decides).
_MAX_HASHED = 256 << 20
BUILTIN_PREFIX = "builtin:"

Signature = tuple[int, int, int, int]


def stat_signature(path: str) -> Signature | None:
    """(size, mtime ns, ctime ns, inode) of ``path``, or None if it does not exist."""
    try:
        stat = os.stat(path)
    except (OSError, ValueError):
        return None
    return stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns, stat.st_ino


def is_racy(signature: Signature, taken_ns: int) -> bool:
    """Whether a file with ``signature``, taken at wall-clock time ``taken_ns``, could change unseen."""
    window = RACY_NS if signature[1] % 1_000_000_000 == 0 else FINE_RACY_NS
    return max(signature[1], signature[2]) >= taken_ns - window


def file_digest(path: str) -> str | None:
    """xxh3-128 of a regular file's bytes; None if it is missing, not a regular file or too large."""
    try:
        # Without blocking: a FIFO in a file's place must not hang the check (it is not a regular file).
        with os.fdopen(os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0)), "rb") as handle:
            info = os.fstat(handle.fileno())
            if not stat_module.S_ISREG(info.st_mode) or info.st_size > _MAX_HASHED:
                return None
            return xxhash.xxh3_128_hexdigest(handle.read())
    except (OSError, ValueError):
        return None


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


def check_stamp(manifest: str) -> int | None:
    """If the stamp of the manifest at absolute path ``manifest`` still holds, the number of up-to-date
    sprites; else None (the full build decides)."""
    stamp_path, lock_path, journal = stamp_files(manifest)
    try:
        if os.path.exists(journal):  # an interrupted build's work is not in the lock yet
            return None
        # Sealed: a stamp this user's pixelbuild did not write (carried in, planted) never skips a build.
        sealed = read_sealed("stamp", stamp_path, 64 << 20)
        if sealed is None:
            return None
        stamp = json.loads(sealed)
    except (OSError, ValueError):
        return None
    project_dir, name = os.path.split(manifest)
    try:
        if stamp["format"] != STAMP_FORMAT or stamp["version"] != __version__ or stamp["manifest"] != name:
            return None
        if stamp["project"] != os.path.realpath(project_dir):
            return None  # copied or moved: every signature below belongs to other files
        if file_digest(lock_path) != stamp["lock"]:
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
        for relative, digest in stamp["manifests"]:
            if file_digest(os.path.join(project_dir, relative)) != digest:
                return None
        for base, pattern, matches in stamp["globs"]:
            found = glob.glob(pattern, root_dir=os.path.join(project_dir, base), recursive=True)
            if sorted(found) != matches:
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
            if file_digest(path) != digest:
                return None
        return int(stamp["sprites"])
    except (OSError, KeyError, TypeError, ValueError, IndexError, AttributeError):
        return None
