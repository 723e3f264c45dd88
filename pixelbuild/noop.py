"""The no-op check: is the last complete build's stamp still true? If so, a build has nothing to do.

This is the whole cost of a no-op ``pixelbuild build``, so it imports almost nothing (no YAML parser,
schema, engine, image library, not even dataclasses or pathlib) and reads only what it must: the stamp,
the manifest files (hashed), the lock (hashed) and one ``stat`` per referenced file and output.
"""

from __future__ import annotations

import glob
import json
import os

import xxhash

from pixelbuild import __version__

STAMP_FORMAT = 1


def stat_signature(path: str) -> tuple[int, int] | None:
    """(size, mtime in ns) of ``path``, or None if it does not exist."""
    try:
        stat = os.stat(path)
    except OSError:
        return None
    return stat.st_size, stat.st_mtime_ns


def _file_digest(path: str) -> str | None:
    try:
        with open(path, "rb") as handle:
            return xxhash.xxh3_128_hexdigest(handle.read())
    except OSError:
        return None


def stamp_paths(project_dir: str) -> tuple[str, str, str]:
    """(stamp, lock, journal) paths of the project in ``project_dir`` (as ``ProjectPaths`` has them)."""
    state = os.path.join(project_dir, ".pixelbuild")
    return (
        os.path.join(state, "state", "noop.json"),
        os.path.join(project_dir, "pixelbuild.lock"),
        os.path.join(state, "journal.jsonl"),
    )


def check_stamp(path: str | os.PathLike[str], lock_path: str | os.PathLike[str]) -> int | None:
    """If the stamp at ``path`` still holds, the number of up-to-date sprites; else None."""
    try:
        with open(path, "rb") as handle:
            stamp = json.loads(handle.read())
    except (OSError, ValueError):
        return None
    try:
        if stamp["format"] != STAMP_FORMAT or stamp["version"] != __version__:
            return None
        if _file_digest(str(lock_path)) != stamp["lock"]:
            return None
        for manifest, digest in stamp["manifests"]:
            if _file_digest(manifest) != digest:
                return None
        for base, pattern, matches in stamp["globs"]:
            if sorted(glob.glob(pattern, root_dir=base, recursive=True)) != matches:
                return None
        for absent in stamp["absent"]:
            if os.path.exists(absent):
                return None
        for group in ("files", "outputs"):
            for item, size, mtime in stamp[group]:
                if stat_signature(item) != (size, mtime):
                    return None
        return int(stamp["sprites"])
    except (KeyError, TypeError, ValueError):
        return None
