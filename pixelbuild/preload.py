"""Load a large manifest's uncached files side by side, in worker processes, before the session loads it.

A fresh clone's first command parses, validates, resolves and keys every included file, one after the
other, although each file's work is its own. When that work is large (``MIN_BYTES`` of YAML that the parse
cache lacks), the root's included files are split into shares by size: forked workers take all but one
and this process the last. Each share is loaded as ``open_session`` would load it and comes back as the
parse- and spec-cache files that would be written for it: sealed bytes, sent over a pipe as msgpack data
(never pickles). The session then finds its files as cache hits, and writes them, as its own, only once
the whole manifest has loaded.

A share that fails in any way comes back empty: the session does that work itself, and reports a bad
manifest as it always does. So does a share that would print something (a resolution warning, a damaged
cache entry), so that every message is said once, in order, by the session. Files that include files
are loaded by their workers too; the files they include are left to the session.

Workers are forked (they share what is imported), only from a process without other threads, one per
core that other processes leave idle, and die with it (``pixelbuild.lifeline``); elsewhere, on a busy
machine and with ``PIXELBUILD_LOAD_JOBS=1``, nothing is split.
"""

from __future__ import annotations

import contextlib
import gc
import io
import logging
import os
import signal
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec

from pixelbuild.errors import PixelbuildError, UsageError
from pixelbuild.lifeline import follow_parent
from pixelbuild.local.layout import ProjectPaths
from pixelbuild.local.parsecache import ParseCache
from pixelbuild.local.speccache import SpecCache
from pixelbuild.manifest import ManifestFile, read_manifest_bytes
from pixelbuild.resolver import ProjectSettings
from pixelbuild.spec import SpriteSpec

#: Below this much uncached YAML, forking costs more than it saves (~0.4 s of work per MB on one core).
MIN_BYTES = 256 << 10
#: The environment variable that sets the number of processes (1: load in this process alone).
JOBS_VARIABLE = "PIXELBUILD_LOAD_JOBS"
#: The most a worker may hand back (a bound on what this process reads from a pipe).
MAX_RESULT_BYTES = 1 << 30

#: What a share comes back as: (cache, file name, sealed bytes), cache "parse" or "spec".
_Files = list[tuple[str, str, bytes]]
_ENCODER = msgspec.msgpack.Encoder()
_DECODER = msgspec.msgpack.Decoder(_Files)


@dataclass(frozen=True, slots=True)
class Share:
    """One worker's part: the root manifest and some of the files it includes (absolute paths)."""

    paths: ProjectPaths
    root: Path
    files: tuple[Path, ...]


@dataclass(slots=True)
class Preloaded:
    """What the shares that succeeded made: cache files by path, and how many shares and files they were."""

    parse: dict[Path, bytes] = field(default_factory=dict)
    spec: dict[Path, bytes] = field(default_factory=dict)
    shares: int = 0
    files: int = 0


class _Declined(Exception):
    """A share that the session must do itself (it would print something)."""


def load_jobs() -> int:
    """How many processes may load a manifest: ``PIXELBUILD_LOAD_JOBS``, else the cores this process may use
    that no other process is running on right now (as ``make -l`` would: on a busy machine a worker only
    waits for a core, and its start and hand-over cost more than it saves)."""
    value = os.environ.get(JOBS_VARIABLE, "").strip()
    if value:
        if not (value.isascii() and value.isdigit()) or int(value) < 1:  # '²' is a digit to isdigit
            raise UsageError(f"{JOBS_VARIABLE} must be a whole number of processes, at least 1; got '{value}'")
        return int(value)
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not on every platform
        cores = os.cpu_count() or 1
    try:
        with open("/proc/loadavg", "rb") as handle:
            return idle_cores(cores, handle.read(256))
    except OSError:  # not Linux: every core
        return cores


def idle_cores(cores: int, loadavg: bytes) -> int:
    """Of ``cores``, how many the processes running now leave idle, this one included (at least 1), from the
    text of ``/proc/loadavg``, whose fourth field counts them ("running/existing")."""
    try:
        running = int(loadavg.split()[3].split(b"/")[0])
    except (IndexError, ValueError):
        return cores
    return max(1, min(cores, cores - (running - 1)))


def can_fork() -> bool:
    """Whether this process may fork workers: the platform has fork, and no other thread runs (a lock that
    a thread holds at fork time stays locked forever in the child)."""
    if not hasattr(os, "fork"):
        return False
    try:
        return len(os.listdir("/proc/self/task")) == 1  # native threads too (Linux)
    except OSError:
        import threading

        return threading.active_count() == 1


def preload(
    paths: ProjectPaths,
    *,
    jobs: int | None = None,
    min_bytes: int | None = None,
    work: Callable[[Share], _Files] | None = None,
) -> Preloaded:
    """Load the uncached files of the manifest at ``paths`` in ``jobs`` processes (``load_jobs()``) when they
    hold at least ``min_bytes`` (``MIN_BYTES``) of YAML; ``work`` (``load_share``) loads one share."""
    jobs = load_jobs() if jobs is None else jobs
    if jobs < 2 or not can_fork():
        return Preloaded()
    shares = split(paths, jobs, MIN_BYTES if min_bytes is None else min_bytes)
    if len(shares) < 2:
        return Preloaded()
    from pixelbuild.local.seal import state_key

    state_key()  # read or made once, here: workers making it each would race, and seal with other keys
    work = work or load_share
    preloaded = Preloaded()
    children: list[_Child] = []
    try:
        for share in shares[:-1]:
            try:
                children.append(_Child(share, *_fork(share, work)))
            except OSError:  # no process or pipe to be had (EAGAIN, ENOMEM, EMFILE): the session does the rest
                break
        with contextlib.suppress(Exception):  # whatever fails: the session does this share itself
            _add(preloaded, shares[-1], work(shares[-1]))
        for child in children:
            files = _collect(child)
            if files is not None:
                _add(preloaded, child.share, files)
    finally:
        for child in children:  # after an interruption (Ctrl-C, a signal): no worker outlives this
            child.end()
    return preloaded


class _Child:
    """A forked worker, and the read end of the pipe its files come back through, until it is reaped."""

    def __init__(self, share: Share, pid: int, fd: int) -> None:
        self.share = share
        self.pid = pid
        self.fd = fd
        self.status: int | None = None

    def end(self, *, kill: bool = True) -> None:
        """Kill the worker (unless it is done with its pipe: ``kill`` False), reap it and close the pipe."""
        if self.pid:
            if kill:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(self.pid, signal.SIGKILL)
            _pid, self.status = os.waitpid(self.pid, 0)
            self.pid = 0
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    @property
    def succeeded(self) -> bool:
        """Whether the worker exited normally with status 0 (it sent its whole result)."""
        return self.status is not None and os.WIFEXITED(self.status) and os.WEXITSTATUS(self.status) == 0


def split(paths: ProjectPaths, jobs: int, min_bytes: int) -> list[Share]:
    """The root's included files that the parse cache lacks, in up to ``jobs`` shares of about equal size and
    at least ``min_bytes / 2`` (each in include order); none when they hold less than ``min_bytes``, or the
    root does not load."""
    from pixelbuild.hashing import hash_bytes
    from pixelbuild.manifest import load_file

    root_path = paths.manifest.resolve()
    project_dir = root_path.parent
    parse_cache = ParseCache(paths.parse_cache, deferred=True)
    try:
        root = load_file(root_path, project_dir, parse_cache, is_root=True)
        if len(set(root.includes)) != len(root.includes) or root_path in root.includes:
            return []  # the session says what is wrong
        total = sum(os.stat(path).st_size for path in root.includes)
        if total < min_bytes:
            return []
        sizes: list[tuple[int, Path]] = []
        for path in root.includes:
            raw = read_manifest_bytes(path)
            if not parse_cache.holds(hash_bytes(raw), False):
                sizes.append((len(raw), path))
    except (PixelbuildError, OSError):
        return []
    uncached = sum(size for size, _path in sizes)
    if uncached < min_bytes:
        return []
    if min_bytes:  # a share of less than half the threshold costs about as much to fork as it saves
        jobs = min(jobs, 2 * uncached // min_bytes)
    order = {path: index for index, path in enumerate(root.includes)}
    bins: list[tuple[int, list[Path]]] = [(0, []) for _ in range(min(jobs, len(sizes)))]
    for size, path in sorted(sizes, key=lambda item: -item[0]):  # largest first, each to the lightest share
        lightest = min(range(len(bins)), key=lambda index: bins[index][0])
        bins[lightest] = (bins[lightest][0] + size, [*bins[lightest][1], path])
    return [Share(paths, root_path, tuple(sorted(files, key=order.__getitem__))) for _size, files in bins]


def load_share(share: Share) -> _Files:
    """Load the share's files as ``open_session`` would (parse, validate, resolve, keys), and return the
    cache files it would write for them; raise if anything fails or would be printed."""
    from pixelbuild.keys import compute_keys
    from pixelbuild.local.filehashes import FileHashCache
    from pixelbuild.manifest import Manifest, load_file
    from pixelbuild.resolver import project_file_path, resolve

    paths = share.paths
    project_dir = share.root.parent
    parse_cache = ParseCache(paths.parse_cache, deferred=True)
    root = load_file(share.root, project_dir, parse_cache, is_root=True)
    files = [load_file(path, project_dir, parse_cache, is_root=False) for path in share.files]
    hashes = FileHashCache(None)

    def file_hash(ref: str) -> str | None:
        return hashes.hash(project_file_path(paths.project_dir, ref))

    cache = _FreshOnly(paths.spec_cache, file_hash, paths.project_dir)
    with _silenced() as said:
        resolved = resolve(Manifest(project_dir, (root, *files)), cache, only=set(share.files))
        keys = compute_keys(resolved.sprites, file_hash, cache.keys)
        entries = [("spec", path, data) for path, data in cache.sealed(keys)]
    if resolved.warnings or said.getvalue():
        raise _Declined("the session says it")
    entries += [("parse", path, data) for path, data in parse_cache.sealed()]
    return [(kind, path.name, data) for kind, path, data in entries]


class _FreshOnly(SpecCache):
    """A worker's spec cache: it resolves every file afresh. A file with an entry on disk (sound, stale or
    damaged) declines the share: the session reads that entry itself, and says if it is damaged."""

    def lookup(
        self, manifest_file: ManifestFile, defaults: Sequence[Mapping[str, Any]], project: ProjectSettings
    ) -> tuple[Sequence[SpriteSpec], Sequence[str], Sequence[str]] | None:
        """None (resolve the file), unless an entry for it is on disk."""
        if self.has_entry(manifest_file, defaults, project):
            raise _Declined("a cached resolution")
        return None


@contextlib.contextmanager
def _silenced() -> Iterator[io.StringIO]:
    """Resolution warnings and notices go nowhere meanwhile; what notices would have said is collected."""
    from pixelbuild.notices import pinned

    logger = logging.getLogger("pixelbuild")
    disabled, logger.disabled = logger.disabled, True
    said = io.StringIO()
    try:
        with pinned(said):
            yield said
    finally:
        logger.disabled = disabled


def _fork(share: Share, work: Callable[[Share], _Files]) -> tuple[int, int]:
    """Start a worker on ``share``: its process id, and the pipe its files come back through."""
    read_fd, write_fd = os.pipe()
    parent = os.getpid()
    try:
        pid = os.fork()
    except OSError:
        os.close(read_fd)
        os.close(write_fd)
        raise
    if pid == 0:  # the worker: whatever happens, it ends here, and only a whole result exits 0
        code = 1
        try:
            os.close(read_fd)
            follow_parent(parent)
            gc.disable()  # short-lived, and what it builds holds no cycles: collections would only cost time
            payload = _ENCODER.encode(work(share))
            with open(write_fd, "wb") as pipe:
                pipe.write(payload)
            code = 0
        finally:
            os._exit(code)
    os.close(write_fd)
    return pid, read_fd


def _collect(child: _Child) -> _Files | None:
    """The files a worker sent, once it has exited; None if it failed (or was killed, or sent too much)."""
    chunks: list[bytes] = []
    size = 0
    try:
        while chunk := os.read(child.fd, 1 << 20):
            size += len(chunk)
            if size > MAX_RESULT_BYTES:
                child.end()
                return None
            chunks.append(chunk)
    except OSError:
        child.end()
        return None
    child.end(kill=False)
    if not child.succeeded:
        return None
    try:
        return _DECODER.decode(b"".join(chunks))
    except msgspec.DecodeError:
        return None


def _add(preloaded: Preloaded, share: Share, files: _Files) -> None:
    """Keep what a share made (every name a plain file name in its cache's folder, or nothing of it)."""
    folders = {"parse": share.paths.parse_cache, "spec": share.paths.spec_cache}
    if not all(kind in folders and _plain(name) for kind, name, _data in files):
        return
    for kind, name, data in files:
        (preloaded.parse if kind == "parse" else preloaded.spec)[folders[kind] / name] = data
    preloaded.shares += 1
    preloaded.files += len(share.files)


def _plain(name: str) -> bool:
    return bool(name) and name not in (".", "..") and not any(char in name for char in "/\\\0")
