"""``check``: does the committed state agree? Manifest vs lock vs files, without ever generating.

Meant for CI on a fresh clone: every output file is hashed (no stat cache is trusted), and a file whose
bytes differ is still accepted when its decoded pixels match the lock (zlib builds differ).
"""

from __future__ import annotations

import fnmatch
import os
from dataclasses import dataclass, field
from pathlib import Path

from pixelbuild.fsguard import TEMP_PREFIX, OutputGuard
from pixelbuild.local.filehashes import file_digest
from pixelbuild.local.layout import ProjectPaths
from pixelbuild.lock import OutputRecord, lock_outputs, read_journal
from pixelbuild.plan import FileState, changed_fields
from pixelbuild.project import compare_output, open_session, read_current_lock

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


def _output_problem(
    output_dir: Path, output: OutputRecord, guard: OutputGuard, verified: set[str]
) -> tuple[str, str] | None:
    """What is wrong with an output (kind, explanation), hashing it afresh (``check`` trusts no stat cache).

    A link on the way to it (or the file itself a link) is ``unsafe``: a build would refuse to write there.
    """
    unsafe = guard.inspect(output.path, verified)
    if unsafe is not None:
        return "unsafe", f"{unsafe}: pixelbuild never writes or deletes through links"
    target = output_dir / output.path
    try:
        digest: str | None = file_digest(str(target))
    except FileNotFoundError:
        digest = None
    except OSError as error:
        return "modified", f"unreadable ({error.strerror})"
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
        for name in sorted(files + links):
            relative = Path(folder, name).relative_to(output_dir).as_posix()
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
    paths = ProjectPaths.for_manifest(Path(manifest))
    session = open_session(paths)
    # The lock as plan and build see it: an interrupted build's journal applied (read here, never folded).
    lock = read_current_lock(paths)
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
    verified: set[str] = set()
    root_problem = guard.root_problem(paths.project_dir)
    if root_problem is not None:
        report.problems.append(Problem("unsafe", paths.display(output_dir), root_problem))
    for sprite in session.resolved.sprites:
        keys = session.keys[sprite.id]
        entry = lock.sprites.get(sprite.id)
        if entry is None:
            report.problems.append(Problem("unlocked", sprite.id, f"is in the manifest but not in {lock_display}"))
            continue
        if entry.post_key != keys.post or entry.generation_keys != keys.generations:
            fields = changed_fields(entry.fields, keys.fields)
            what = f"{', '.join(fields)} changed" if fields else "the generator or post-processing version changed"
            report.problems.append(Problem("stale", sprite.id, f"the lock entry is out of date: {what}"))
            continue
        paths_in_lock = [output.path for output in entry.outputs]
        if paths_in_lock != [sprite.output]:
            report.problems.append(
                Problem(
                    "stale", sprite.id, f"output is {sprite.output} in the manifest but {paths_in_lock} in the lock"
                )
            )
        for output in entry.outputs:
            problem = _output_problem(output_dir, output, guard, verified)
            if problem is not None:
                shown = paths.display(output_dir / output.path)
                report.problems.append(Problem(problem[0], sprite.id, f"output {shown} is {problem[1]}"))
    for sprite_id in sorted(set(lock.sprites) - set(session.resolved.by_id)):
        report.problems.append(Problem("removed", sprite_id, f"is in {lock_display} but no longer in the manifest"))
    for atlas in session.resolved.atlases:
        atlas_entry = lock.atlases.get(atlas.id)
        subject = f"atlas {atlas.id}"
        if atlas_entry is None:
            report.problems.append(Problem("unlocked", subject, f"is in the manifest but not in {lock_display}"))
            continue
        if atlas_entry.pack_key != session.atlas_keys[atlas.id]:
            report.problems.append(
                Problem("stale", subject, "the lock entry is out of date: a member or a setting changed")
            )
            continue
        for output in atlas_entry.outputs:
            problem = _output_problem(output_dir, output, guard, verified)
            if problem is not None:
                shown = paths.display(output_dir / output.path)
                report.problems.append(Problem(problem[0], subject, f"output {shown} is {problem[1]}"))
    for atlas_id in sorted(set(lock.atlases) - {atlas.id for atlas in session.resolved.atlases}):
        report.problems.append(
            Problem("removed", f"atlas {atlas_id}", f"is in {lock_display} but no longer in the manifest")
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
