"""``watch``: build, then build again whenever an input is saved (manifest, included file, palette,
template, source or init image), once the files have been quiet for a moment.

Builds run in this process through the same ``build`` as the command (so a post-only edit pays no
start-up and no imports) and the same interrupt path: Ctrl-C during a build withdraws its queued prompts
and keeps finished sprites in the lock. A build that fails, or a manifest that does not load, is
reported and watching goes on; the next save tries again.

Files are watched with watchfiles' ``RustNotify`` (its documented low-level API) rather than its
``watch`` generator: the watcher must exist before a build starts, so that a save made while the
build runs is seen afterwards, and "watching" is printed only once it is true.
"""

from __future__ import annotations

import glob
import os
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from pixelbuild.errors import EXIT_INTERRUPTED, EXIT_OK, EXIT_TERMINATED, ManifestError, PixelbuildError
from pixelbuild.local.layout import ProjectPaths
from pixelbuild.names import TEMP_PREFIX

if TYPE_CHECKING:
    import threading

    from watchfiles import Change

DEFAULT_DEBOUNCE_MS = 100
#: At most this long between the first change of a burst and the rebuild, however busy the files are.
_MAX_GROUPING_MS = 1600


@dataclass(slots=True)
class Inputs:
    """What a build of the project reads, as real paths (symbolic links resolved, as the watcher reports them)."""

    files: set[str] = field(default_factory=set)
    globs: list[tuple[str, str, tuple[str, ...]]] = field(default_factory=list)
    output_dir: str | None = None
    known: bool = False

    def relevant(self, changed: Iterable[str]) -> list[str]:
        """The changed paths that can change a build (all of them while the inputs are unknown)."""
        changed = sorted(changed)
        if not self.known:
            return changed
        hits = [path for path in changed if path in self.files]
        if not hits and any(
            tuple(sorted(glob.glob(pattern, root_dir=base, recursive=True))) != tuple(matches)
            for base, pattern, matches in self.globs
        ):
            hits = [path for path in changed if path not in self.files][:1]  # a file joined or left an include
        return hits


def project_inputs(paths: ProjectPaths) -> Inputs:
    """Load the project (cached parse and resolution) and list what its build reads."""
    from pixelbuild.project import open_session
    from pixelbuild.resolver import project_file_path

    session = open_session(paths)
    files = {os.path.realpath(f.path.absolute()) for f in session.manifest.files}
    files.update(os.path.realpath(project_file_path(paths.project_dir, ref)) for ref in session.resolved.files)
    files.update(os.path.realpath(paths.project_dir / ref) for ref in session.resolved.absent)
    globs = [glob_ for f in session.manifest.files for glob_ in f.include_globs]
    return Inputs(files, globs, os.path.realpath(session.output_dir), known=True)


class _Filter:
    """Leaves out what builds write (output root, lock, local state) and editors' scratch files."""

    def __init__(self, paths: ProjectPaths) -> None:
        from watchfiles import DefaultFilter

        self._default = DefaultFilter()
        self._ignored = (os.path.realpath(paths.state_dir), os.path.realpath(paths.lock))
        self.output_dir: str | None = None

    def __call__(self, change: Change, path: str) -> bool:
        path = os.path.realpath(path)
        if os.path.basename(path).startswith(TEMP_PREFIX) or not self._default(change, path):
            return False
        for root in (*self._ignored, self.output_dir):
            if root and (path == root or path.startswith(root + os.sep)):
                return False
        return True


def _roots(paths: ProjectPaths, inputs: Inputs) -> tuple[str, ...]:
    """The project folder, plus the folder of any input that lies outside it."""
    project = os.path.realpath(paths.project_dir)
    extra = {os.path.dirname(f) for f in inputs.files if not f.startswith(project + os.sep)}
    return (project, *sorted(d for d in extra if os.path.isdir(d)))


def _shown(paths: ProjectPaths, changed: list[str]) -> str:
    project = Path(os.path.realpath(paths.project_dir))
    names = [
        Path(path).relative_to(project).as_posix() if Path(path).is_relative_to(project) else path
        for path in changed[:3]
    ]
    return ", ".join(names) + (f" and {len(changed) - 3} more" if len(changed) > 3 else "")


def watch(
    manifest: Path,
    run_build: Callable[[], int],
    report_error: Callable[[PixelbuildError], None],
    *,
    debounce_ms: int = DEFAULT_DEBOUNCE_MS,
    stop_event: threading.Event | None = None,
    say: Callable[[str], None] | None = None,
) -> int:
    """Build the project of ``manifest`` now and after every relevant save, until Ctrl-C (or ``stop_event``).

    ``run_build`` builds once and returns its exit code. Returns 0 when stopped between builds, 130 when
    Ctrl-C (or SIGTERM, which the command line turns into one) interrupted a build.
    """
    paths = ProjectPaths.for_manifest(manifest)
    if not paths.manifest.is_file():
        raise ManifestError("no manifest here (run 'pixelbuild init' to create one)", file=str(paths.manifest))
    emit = say or (lambda text: print(text, file=sys.stderr, flush=True))
    watch_filter = _Filter(paths)
    inputs = Inputs()

    def build_once() -> bool:
        """Build and refresh the inputs; False when Ctrl-C interrupted the build."""
        nonlocal inputs
        try:
            if run_build() in (EXIT_INTERRUPTED, EXIT_TERMINATED):
                return False
        except KeyboardInterrupt:
            return False
        except PixelbuildError as error:
            report_error(error)
        except Exception as error:  # a bug in one build must not end the watch
            emit(f"pixelbuild: internal error ({type(error).__name__}: {error}); this is a bug")
        try:
            inputs = project_inputs(paths)
        except PixelbuildError as error:
            # Until the manifest loads again, any save in the project may be the fix.
            where = getattr(error, "file", None)  # shown relative to the working folder, or absolute
            if where and inputs.known:
                inputs.files.add(os.path.realpath(where))
            inputs.files.add(os.path.realpath(paths.manifest))
        watch_filter.output_dir = inputs.output_dir
        return True

    from watchfiles import Change
    from watchfiles._rust_notify import RustNotify

    polling = bool(os.environ.get("WATCHFILES_FORCE_POLLING"))
    built = False
    try:
        while True:
            roots = _roots(paths, inputs)
            # The watcher exists before each build starts, so a save made during a build is never missed.
            with RustNotify(list(roots), False, polling, 300, True, False) as notifier:
                if not built:
                    built = True
                    if not build_once():
                        return EXIT_INTERRUPTED
                    if _roots(paths, inputs) != roots:
                        continue
                emit(f"watching {paths.display(paths.manifest)} and what it reads (Ctrl-C to stop)")
                while True:
                    raw = notifier.watch(max(_MAX_GROUPING_MS, debounce_ms), max(1, debounce_ms), 5000, stop_event)
                    if raw == "signal":
                        raise KeyboardInterrupt
                    if raw == "stop":
                        return EXIT_OK
                    if raw == "timeout":
                        continue
                    kept = {os.path.realpath(path) for change, path in raw if watch_filter(Change(change), path)}
                    changed = inputs.relevant(kept)
                    if not changed:
                        continue
                    emit(f"changed: {_shown(paths, changed)}")
                    if not build_once():
                        return EXIT_INTERRUPTED
                    if _roots(paths, inputs) != roots:
                        break  # an input moved outside the watched folders: watch again with the new set
    except KeyboardInterrupt:
        return EXIT_OK
