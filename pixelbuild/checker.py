"""``check``: does the committed state agree? Manifest vs lock vs files, without ever generating.

Meant for CI on a fresh clone: every output file is hashed (no stat cache is trusted), and a file whose
bytes differ is still accepted when its decoded pixels match the lock (zlib builds differ). Staleness is
judged by the plan's own procedure (``pixelbuild.plan``), never read from the cache; then a walk of the
output root finds the files no sprite makes.
"""

from __future__ import annotations

import fnmatch
import os
from dataclasses import dataclass, field
from pathlib import Path

from pixelbuild.fsguard import OpenFolders, OutputGuard, confined_path_problem
from pixelbuild.gcpause import PausedGC
from pixelbuild.local.filehashes import file_digest
from pixelbuild.local.journal import read_journal
from pixelbuild.local.layout import ProjectPaths
from pixelbuild.lock import OutputRecord, lock_outputs
from pixelbuild.names import TEMP_PREFIX
from pixelbuild.plan import Action, FileState, Staleness, make_plan
from pixelbuild.project import compare_output, open_session, read_current_lock, read_current_state

#: What to do about each kind of problem.
_BUILD = "run 'pixelbuild build', then commit the lock and assets"
ADVICE = {
    "unlocked": _BUILD,
    "stale": _BUILD,
    "missing": "run 'pixelbuild build' to write it again, then commit it",
    "modified": "revert the edit, or run 'pixelbuild build --force' to write the built file over it",
    "removed": "run 'pixelbuild build' to delete its outputs and lock entry, then commit",
    "orphan": "delete it, or add it (or a pattern) to project.keep",
    "journal": "run 'pixelbuild build' to fold it in (nothing is generated for it), then commit the lock",
    "unsafe": "replace the link with a real folder or file: pixelbuild never writes or deletes through links",
}
#: The problems a plain build fixes (an edited output it keeps, without --force; an orphan it never touches).
BUILD_FIXES = frozenset({"unlocked", "stale", "missing", "removed", "journal"})


@dataclass(frozen=True, slots=True)
class Problem:
    """One disagreement: its kind, the sprite (or file) it concerns, an explanation, and what to do."""

    kind: str
    subject: str
    detail: str
    advice: str = ""

    def __post_init__(self) -> None:
        if not self.advice:
            object.__setattr__(self, "advice", ADVICE.get(self.kind, ""))


@dataclass(slots=True)
class CheckReport:
    """Every disagreement found, plus how many sprites were checked."""

    problems: list[Problem] = field(default_factory=list)
    sprites: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when manifest, lock and files agree."""
        return not self.problems


class _Outputs:
    """The plan's ``file_state`` for check: every output hashed afresh (``check`` trusts no stat cache), and
    why each one that is not as the lock says (kind, explanation), for the report."""

    def __init__(self, output_dir: Path, guard: OutputGuard, folders: OpenFolders) -> None:
        self._root = str(output_dir)  # plain strings: this runs for every output
        self.guard = guard
        self.folders = folders
        self.verified: set[str] = set()
        self.problems: dict[str, tuple[str, str]] = {}

    def __call__(self, output: OutputRecord) -> FileState:
        problem = self._problem(output)
        if problem is None:
            return FileState.OK
        self.problems[output.path] = problem
        return FileState.MISSING if problem[0] == "missing" else FileState.MODIFIED

    def _problem(self, output: OutputRecord) -> tuple[str, str] | None:
        # Most outputs: a regular file, read through its folder's descriptor without following a link.
        folder, _, name = output.path.rpartition("/")
        folder_fd = self.folders.fd(folder) if confined_path_problem(output.path) is None else None
        target = os.path.join(self._root, output.path)
        if folder_fd is not None:
            try:
                digest: str | None = file_digest(name, dir_fd=folder_fd)
            except FileNotFoundError:
                return self._compared(target, None, output)
            except OSError:
                pass  # a link, a folder, a FIFO, unreadable: the path below says which
            else:
                return self._compared(target, digest, output)
        # A link on the way to it (or the file itself a link) is ``unsafe``: a build would refuse to write there.
        unsafe = self.guard.inspect(output.path, self.verified)
        if unsafe is not None:
            return "unsafe", f"{unsafe}: pixelbuild never writes or deletes through links"
        try:
            digest = file_digest(target)
        except FileNotFoundError:
            digest = None
        except OSError as error:
            return "modified", f"unreadable ({error.strerror})"
        return self._compared(target, digest, output)

    @staticmethod
    def _compared(target: str, digest: str | None, output: OutputRecord) -> tuple[str, str] | None:
        state = compare_output(target, digest, output)
        if state is FileState.OK:
            return None
        if state is FileState.MISSING:
            return "missing", "missing"
        what = "bytes" if output.pixel_hash is None else "bytes and pixels"
        return "modified", f"modified (its {what} differ from the lock)"


def _orphans(output_dir: Path, owned: set[str], keep: tuple[str, ...]) -> list[str]:
    found: list[str] = []
    if not output_dir.is_dir():
        return found
    for folder, dirs, files in os.walk(output_dir):
        dirs.sort()
        # os.walk does not enter linked folders; name them, since a build would refuse to write through them.
        links = [name for name in dirs if os.path.islink(os.path.join(folder, name))]
        # Plain strings, not a Path per file: this runs for every file of the output root.
        base = os.path.relpath(folder, output_dir).replace(os.sep, "/")
        prefix = "" if base == "." else f"{base}/"
        for name in sorted(files + links):
            relative = prefix + name
            # A linked folder that 'keep' covers (keep: [ui/**], ui -> elsewhere) is the user's business.
            candidates = (relative, f"{relative}/") if name in links else (relative,)
            if relative in owned or any(fnmatch.fnmatchcase(c, p) for c in candidates for p in keep):
                continue
            found.append(relative)
    return found


def _siblings_outputs(paths: ProjectPaths, output_dir: Path, report: CheckReport) -> set[str]:
    """Outputs recorded by the other manifests of this folder whose output root is this one.

    Two manifests may share an output root; what one's lock records is not an orphan of the other. A
    sibling is a ``<name>.yaml`` (or ``.yml``) with its ``<name>.lock`` beside it.
    """
    from pixelbuild.errors import PixelbuildError
    from pixelbuild.local.parsecache import ParseCache
    from pixelbuild.manifest import load_file
    from pixelbuild.resolver import normalise_relative

    owned: set[str] = set()
    for lock_path in sorted(paths.project_dir.glob("*.lock")):
        stem = lock_path.name.removesuffix(".lock")
        candidates = [paths.project_dir / f"{stem}{suffix}" for suffix in (".yaml", ".yml")]
        manifest = next((path for path in candidates if path.is_file()), None)
        if lock_path == paths.lock or manifest is None or manifest == paths.manifest:
            continue
        try:
            root = load_file(manifest.resolve(), paths.project_dir.resolve(), ParseCache(None), is_root=True)
            project = root.header.get("project", {})
            output = normalise_relative(project.get("output", "assets")) if isinstance(project, dict) else None
            if output is not None and (paths.project_dir / output).resolve() == output_dir.resolve():
                sibling = read_current_lock(ProjectPaths.for_manifest(manifest))
                owned |= {record.path for record in lock_outputs(sibling)}
        except PixelbuildError as error:
            report.notes.append(f"skipped {manifest.name} beside this manifest (it does not load: {error})")
    return owned


def check(manifest: str | os.PathLike[str]) -> CheckReport:
    """Compare the manifest, the lock and the output files of a project; never writes an asset."""
    # Loading, planning and comparing build no cycles; no image is held for long (see pixelbuild.gcpause).
    with PausedGC():
        return _check(ProjectPaths.for_manifest(Path(manifest)))


def _check(paths: ProjectPaths) -> CheckReport:
    session = open_session(paths)
    # The lock as plan and build see it: an interrupted build's journal applied (read here, never folded).
    lock, rebuilt = read_current_state(paths)
    report = CheckReport(sprites=len(session.resolved.sprites))
    lock_display = paths.display(paths.lock)
    if read_journal(paths.journal):
        report.problems.append(
            Problem(
                "journal",
                paths.display(paths.journal),
                f"an interrupted build finished work that is not in {lock_display} yet",
            )
        )
    output_dir = session.output_dir
    guard = session.guard
    root_problem = guard.root_problem(paths.project_dir)
    if root_problem is not None:
        report.problems.append(Problem("unsafe", paths.display(output_dir), root_problem))
    with guard.folders() as folders:
        outputs = _Outputs(output_dir, guard, folders)
        # The plan's procedure, with nothing taken from the cache: what a build would do is what is wrong.
        plan = make_plan(
            session.resolved.sprites,
            session.keys,
            lock,
            outputs,
            has_post=lambda key: False,
            has_generation=lambda key: False,
            atlases=[(atlas, session.atlas_keys[atlas.id]) for atlas in session.resolved.atlases],
            rebuilt=rebuilt,
        )
    manifest_outputs = {sprite.id: [sprite.output] for sprite in session.resolved.sprites}
    manifest_outputs.update({f"atlas {atlas.id}": list(atlas.outputs()) for atlas in session.resolved.atlases})
    decisions = [(decision.sprite_id, decision.action, decision.staleness) for decision in plan.decisions]
    decisions += [(f"atlas {atlas.atlas_id}", atlas.action, atlas.staleness) for atlas in plan.atlases]
    for subject, action, staleness in decisions:
        if action is Action.REMOVE:
            report.problems.append(Problem("removed", subject, f"is in {lock_display} but no longer in the manifest"))
        elif staleness is not None and not staleness.up_to_date:
            report.problems.extend(
                _staleness_problems(subject, staleness, manifest_outputs[subject], outputs.problems, paths, output_dir)
            )
    owned = {output.path for output in lock_outputs(lock)}
    owned |= {sprite.output for sprite in session.resolved.sprites}
    owned |= {path for atlas in session.resolved.atlases for path in atlas.outputs()}
    owned |= _siblings_outputs(paths, output_dir, report)
    orphans = _orphans(output_dir, owned, session.resolved.project.keep) if root_problem is None else []
    for orphan in orphans:
        temp = False
        if os.path.islink(output_dir / orphan):
            why = "it is a symbolic link, which pixelbuild never writes or deletes through"
        elif Path(orphan).name.startswith(TEMP_PREFIX):
            why, temp = "left by an interrupted write", True
        else:
            why = "no sprite makes it"
        report.problems.append(
            Problem(
                "orphan",
                paths.display(output_dir / orphan),
                f"is in the output root but {why}",
                "delete it" if temp else "",
            )
        )
    return report


def _staleness_problems(
    subject: str,
    staleness: Staleness,
    outputs: list[str],
    output_problems: dict[str, tuple[str, str]],
    paths: ProjectPaths,
    output_dir: Path,
) -> list[Problem]:
    """The problems of one stale sprite (or ``atlas <id>``), from what the plan found."""
    lock_display = paths.display(paths.lock)
    if not staleness.locked:
        return [Problem("unlocked", subject, f"is in the manifest but not in {lock_display}")]
    if staleness.changed:
        return [Problem("stale", subject, f"the lock entry is out of date: {'; '.join(staleness.changed)}")]
    problems: list[Problem] = []
    if staleness.moved_from is not None:
        moved = list(staleness.moved_from)
        shown = outputs[0] if len(outputs) == 1 else outputs
        problems.append(Problem("stale", subject, f"output is {shown} in the manifest but {moved} in the lock"))
    for path, _state in staleness.outputs:
        kind, detail = output_problems[path]
        problems.append(Problem(kind, subject, f"output {paths.display(output_dir / path)} is {detail}"))
    return problems
