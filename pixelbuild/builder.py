"""``build``: bring the asset tree and the lock up to date with the manifest.

The no-op path (the stamp still holds) touches no parser, schema, engine or image library; only
``pixelbuild.local.stamp`` is imported for it. Everything else loads lazily.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec

from pixelbuild.errors import DiskFull, FrozenError, PixelbuildError
from pixelbuild.local.buildlock import ProjectLock
from pixelbuild.local.layout import ProjectPaths, real_manifest_path
from pixelbuild.local.stamp import StampFound, check_for_build, up_to_date_sprites
from pixelbuild.progress import Progress, QuietProgress

if TYPE_CHECKING:
    from pixelbuild.backends.base import BackendFactory
    from pixelbuild.delta import Delta
    from pixelbuild.execute.outcomes import EngineResult
    from pixelbuild.gcpause import PausedGC
    from pixelbuild.local.filehashes import Clock
    from pixelbuild.local.journal import Journal
    from pixelbuild.lock import Lock, LockText
    from pixelbuild.plan import Plan
    from pixelbuild.project import Session
    from pixelbuild.remote.config import RemoteConfig
    from pixelbuild.remote.sync import BuildRemote
    from pixelbuild.report import Stage


class BuildOptions(msgspec.Struct, frozen=True):
    """How to build: which sprites, how many parallel jobs, whether generating is allowed.

    ``servers`` (``--server``) replace the backend's server list. ``backend_factory`` makes the backend
    instead of the manifest's named one (tests inject a fake there). ``sprites_per_run`` bounds how many
    sprites one engine run holds in memory (default 1000). ``clock`` (wall-clock nanoseconds) decides which
    files count as just changed (racily clean) for the stamp and the file-hash cache; tests inject one.
    """

    only: Sequence[str] = ()
    jobs: int = 1
    frozen: bool = False
    servers: Sequence[str] = ()
    force: bool = False  # replace files at output paths that pixelbuild did not write (or that were edited)
    backend_factory: BackendFactory | None = None
    sprites_per_run: int | None = None
    clock: Clock | None = None
    #: The remote cache: ``remote`` overrides the manifest's and PIXELBUILD_REMOTE's URL, ``no_remote`` turns it
    #: off, ``no_push`` makes it read-only for this build.
    remote: str | None = None
    no_remote: bool = False
    no_push: bool = False

    def __post_init__(self) -> None:
        if self.sprites_per_run is not None and self.sprites_per_run < 1:
            raise ValueError(f"BuildOptions.sprites_per_run must be at least 1, not {self.sprites_per_run}")


#: A build of every sprite, one job at a time.
_DEFAULT_OPTIONS = BuildOptions()


class BuildReport(msgspec.Struct):
    """What a build did."""

    generated: int = 0
    #: Stages (raw generations, post-processed outputs, atlases) downloaded from the remote cache.
    fetched: int = 0
    post_processed: int = 0
    restored: int = 0
    removed: int = 0
    packed: int = 0
    up_to_date: int = 0
    generator_calls: int = 0
    failures: dict[str, str] = msgspec.field(default_factory=dict)
    warnings: list[str] = msgspec.field(default_factory=list)
    noop: bool = False
    interrupted: bool = False
    seconds: float = 0.0
    #: Seconds spent per stage of image work (generating, post-processing, packing): the rest of ``seconds``
    #: is the build's own work. Summed over parallel steps and worker processes.
    timings: dict[Stage, float] = msgspec.field(default_factory=dict)
    #: What stopped the build short: a full disk (exit 1), generator servers that stopped answering (exit 3).
    error: PixelbuildError | None = None

    @property
    def ok(self) -> bool:
        """True when nothing failed, nothing stopped the build and it was not interrupted."""
        return not self.failures and not self.interrupted and self.error is None

    def to_json(self) -> dict[str, Any]:
        """The report as ``build --json`` prints it (the caller adds ``error`` with its exit code)."""
        from pixelbuild.report import report_document

        return report_document(
            ok=self.ok,
            noop=self.noop,
            generated=self.generated,
            fetched=self.fetched,
            generator_calls=self.generator_calls,
            post_processed=self.post_processed,
            restored=self.restored,
            removed=self.removed,
            packed=self.packed,
            up_to_date=self.up_to_date,
            failures=self.failures,
            warnings=self.warnings,
            interrupted=self.interrupted,
            seconds=self.seconds,
            timings=self.timings,
        )

    def summary(self) -> str:
        """One line, e.g. ``1 generated, 2 restored, 9 up to date``; every count covers sprites and
        atlases alike, as ``plan``'s do."""
        parts = [f"{self.generated} generated"]
        for count, label in (
            (self.fetched, "fetched"),
            (self.post_processed, "post-processed"),
            (self.restored, "restored"),
            (self.packed, "packed"),
            (self.removed, "removed"),
            (len(self.failures), "failed"),
        ):
            if count:
                parts.append(f"{count} {label}")
        parts.append(f"{self.up_to_date} up to date")
        return ", ".join(parts)


def _ensure_gitignore(paths: ProjectPaths) -> None:
    ignore = paths.gitignore
    if not ignore.exists():
        from pixelbuild.fsutil import atomic_write_bytes

        atomic_write_bytes(ignore, b"# pixelbuild's local state and cache: never commit\n*\n")


def build(
    manifest: str | os.PathLike[str], options: BuildOptions = _DEFAULT_OPTIONS, progress: Progress | None = None
) -> BuildReport:
    """Build the project of ``manifest``; return what was done (failures are in the report)."""
    started = time.perf_counter()
    # Read-only, so no lock needed: a concurrent build clears the stamp before it changes anything.
    found = check_for_build(real_manifest_path(os.fspath(manifest)), options.only, options.force)
    return build_checked(manifest, found, options, progress, started)


def build_checked(
    manifest: str | os.PathLike[str],
    found: StampFound | None,
    options: BuildOptions = _DEFAULT_OPTIONS,
    progress: Progress | None = None,
    started: float | None = None,
) -> BuildReport:
    """``build``, the stamp checked just now by the caller: ``found`` is what ``check_for_build`` gave for
    ``manifest`` (its ``real_manifest_path``) and ``options``. One pass over the stamp answers both "nothing
    changed" and "only these included files changed". ``started``: the ``time.perf_counter()`` the
    report's seconds count from."""
    started = time.perf_counter() if started is None else started
    paths = ProjectPaths.for_manifest(Path(manifest))
    up_to_date = up_to_date_sprites(found)
    if up_to_date is not None:
        return BuildReport(up_to_date=up_to_date, noop=True, seconds=time.perf_counter() - started)
    from pixelbuild.gcpause import PausedGC

    progress = progress or QuietProgress()
    # Off while the project loads and is planned (the modules that do it are imported meanwhile: their
    # objects are frozen too); _full_build ends the pause before any work is done.
    with PausedGC() as pause:
        from pixelbuild.project import open_session

        if found is not None:
            from pixelbuild.delta import prepare

            # Some included files changed since the last complete build: plan their sprites alone if they
            # can affect no other (see pixelbuild.delta).
            delta = prepare(paths, found, options.clock)
            if delta is not None:
                with ProjectLock(paths):
                    if delta.holds(paths):
                        report = _full_build(paths, delta.session, options, progress, pause, delta)
                        report.seconds = time.perf_counter() - started
                        return report
        # Load and check the manifest before taking the lock: a bad one leaves no .pixelbuild behind. (The
        # session reads inputs only; outputs are compared under the lock.)
        session = open_session(paths, options.clock)
        with ProjectLock(paths):
            _ensure_gitignore(paths)
            report = _full_build(paths, session, options, progress, pause)
    report.seconds = time.perf_counter() - started
    return report


#: Passes over one build: the second replans what a missing or damaged cache entry left undone.
_PASSES = 2


def _sweep_interrupted_writes(paths: ProjectPaths, session: Session) -> None:
    """Delete the temporary files a killed build left in the output root (``.pixelbuild-tmp.*``: only
    pixelbuild makes such names, and the build lock keeps other builds out), through the guard; else
    ``check`` would report them for good, and no build would ever clear them. Those of a killed lock write
    (beside the journal) go too."""
    import os

    from pixelbuild.names import TEMP_PREFIX

    try:
        for entry in os.scandir(paths.journal.parent):
            if entry.name.startswith(TEMP_PREFIX) and entry.is_file(follow_symlinks=False):
                os.unlink(entry.path)
    except OSError:  # no state folder yet, or a file gone meanwhile: nothing to sweep
        pass
    root = str(session.output_dir)
    if os.path.islink(root) or not os.path.isdir(root):
        return
    for folder, _dirs, files in os.walk(root):  # os.walk never enters a linked folder
        for name in files:
            if name.startswith(TEMP_PREFIX):
                relative = os.path.relpath(os.path.join(folder, name), root).replace(os.sep, "/")
                session.guard.remove(relative, lambda _data: True)


def _remote_config(session: Session, options: BuildOptions) -> RemoteConfig | None:
    """The build's remote cache (manifest, PIXELBUILD_REMOTE, options), or None."""
    if options.no_remote:
        return None
    from pixelbuild.remote.config import session_remote

    return session_remote(session, cli_url=options.remote, no_push=options.no_push)


def _full_build(
    paths: ProjectPaths,
    session: Session,
    options: BuildOptions,
    progress: Progress,
    pause: PausedGC,
    delta: Delta | None = None,
) -> BuildReport:
    """Plan and run the build of ``session``'s sprites; with ``delta``, those of the changed files alone.

    Ends ``pause`` (the collector's, over loading and planning) once the plan is made.
    """
    from pixelbuild.execute.outcomes import EngineResult
    from pixelbuild.local.journal import Journal, read_journal
    from pixelbuild.lock import apply_journal

    remote_config = _remote_config(session, options)  # a bad --remote or PIXELBUILD_REMOTE stops it here
    lock, text = _open_lock(paths, session, delta)
    remote = None
    if remote_config is not None:
        from pixelbuild.remote.sync import BuildRemote

        remote = BuildRemote(remote_config, session)
    full_plan, plan, fetched = _plan_with_prefetch(session, lock, options, remote, pause)
    if options.frozen:
        _refuse_generation(plan)

    journal = remote.journal(paths.journal) if remote is not None else Journal(paths.journal)
    result = EngineResult()
    repaired: dict[str, None] = {}
    completed = False
    try:
        _run_passes(session, options, progress, journal, lock, plan, result, repaired)
        completed = True
    finally:
        try:
            journal.close()
            records = read_journal(paths.journal)
            final_lock = apply_journal(lock, records)
            lock_bytes = _commit_lock(paths, final_lock, text, records)
        except DiskFull as full:
            if not completed:
                raise
            # The journal keeps the finished work; report what was done, and the first write that failed.
            result.error = result.error if isinstance(result.error, DiskFull) else full
        session.hashes.save()
        if remote is not None and not completed:
            remote.abandon()

    report = _report(result, fetched, full_plan, delta)
    if remote is not None:
        report.warnings += remote.finish(wait=not result.interrupted)
    report.warnings += _repaired_warnings(list(repaired))
    if _everything_done(report, plan, full_plan, result):
        _stamp(paths, session, options, delta, final_lock, lock_bytes)
    return report


def _open_lock(paths: ProjectPaths, session: Session, delta: Delta | None) -> tuple[Lock, LockText | None]:
    """Clear the stamp, then read the lock (the delta's entries alone for an edit build), with the work a
    journal left by an interrupted build folded in."""
    from pixelbuild.local.stamp import clear_stamp, stamped_lock_digest

    trusted = stamped_lock_digest(str(paths.manifest)) if delta is None else None
    clear_stamp(paths.stamp)
    if delta is None:
        _sweep_interrupted_writes(paths, session)
        lock, text = _read_lock(paths, trusted)
    else:
        # No build was interrupted since the stamp was written (each clears it first): nothing to sweep.
        lock, text = delta.lock, delta.text
    # A journal left by an interrupted build holds finished work: fold it in before anything else.
    if paths.journal.exists():
        _commit_lock(paths, lock)
    return lock, text


def _plan_with_prefetch(
    session: Session, lock: Lock, options: BuildOptions, remote: BuildRemote | None, pause: PausedGC
) -> tuple[Plan, Plan, int]:
    """The full plan, the part of it ``options.only`` selects, and how many sprites came from the remote
    (planned again after them). Ends ``pause`` once the first plan is made: downloads come next."""
    full_plan = session.plan(lock, force=options.force)
    plan = session.select(full_plan, options.only)
    pause.end()
    fetched = remote.prefetch(session, plan) if remote is not None else 0
    if fetched:  # read through: what came from the remote is restored or post-processed, not generated
        full_plan = session.plan(lock, force=options.force)
        plan = session.select(full_plan, options.only)
    return full_plan, plan, fetched


def _refuse_generation(plan: Plan) -> None:
    """Raise FrozenError (``--frozen``) if a sprite of ``plan`` needs the generator."""
    from pixelbuild.plan import Action

    needing = [d for d in plan.decisions if d.action is Action.GENERATE]
    if needing:
        listing = "; ".join(f"{d.sprite_id} ({', '.join(d.reasons)})" for d in needing)
        raise FrozenError(
            f"--frozen: {len(needing)} sprite(s) would need the generator: {listing}. "
            "Run 'pixelbuild build' where a generator is available and commit the lock and assets."
        )


def _run_passes(
    session: Session,
    options: BuildOptions,
    progress: Progress,
    journal: Journal,
    lock: Lock,
    plan: Plan,
    result: EngineResult,
    repaired: dict[str, None],
) -> None:
    """Run ``plan`` into ``result``; replan and run once more what a missing or damaged cache entry left
    undone (noted in ``repaired``), and fail what is still left after the last pass."""
    from pixelbuild.local.journal import read_journal
    from pixelbuild.lock import apply_journal

    work, current = plan, lock
    for attempt in range(_PASSES):
        result.add(_run_engine(session, options, journal, current, work, progress))
        if not result.repair or result.interrupted or result.error is not None:
            return
        if attempt == _PASSES - 1:
            for subject in sorted(result.repair):
                result.failures.setdefault(
                    subject,
                    "its cache entries went missing again while it was rebuilt "
                    "(is something else deleting files in .pixelbuild?)",
                )
            return
        repaired.update(dict.fromkeys(sorted(result.repair)))
        current = apply_journal(lock, read_journal(session.paths.journal))
        work = _replan(session, current, result.repair, options, result.failures)


def _report(result: EngineResult, fetched: int, full_plan: Plan, delta: Delta | None) -> BuildReport:
    """The report of a build's ``result``; what it left alone counts as up to date (with the delta's others)."""
    from pixelbuild.plan import Action

    return BuildReport(
        generated=result.generated,
        fetched=fetched,
        generator_calls=result.generator_calls,
        post_processed=result.post_processed,
        restored=result.restored,
        removed=result.removed,
        packed=result.packed,
        up_to_date=full_plan.count(Action.UP_TO_DATE)
        + sum(1 for atlas in full_plan.atlases if atlas.action is Action.UP_TO_DATE)
        + (delta.others if delta is not None else 0),
        failures=result.failures,
        interrupted=result.interrupted,
        warnings=list(result.kept),
        error=result.error,
        timings=dict(result.timings),
    )


def _repaired_warnings(repaired: Sequence[str]) -> list[str]:
    """The warning that the cache entries of ``repaired`` were dropped and rebuilt (none if none)."""
    if not repaired:
        return []
    shown = ", ".join(list(repaired)[:5]) + (", ..." if len(repaired) > 5 else "")
    return [
        f"missing or damaged cache entries of {len(repaired)} sprite(s) or atlas(es) ({shown}) were dropped and rebuilt"
    ]


def _everything_done(report: BuildReport, plan: Plan, full_plan: Plan, result: EngineResult) -> bool:
    """Whether the build did all the project needed (no ``--only`` left some out, nothing failed): only
    then may a stamp say the project is up to date."""
    return (
        report.ok
        and len(plan.stale) == len(full_plan.stale)
        and len(plan.stale_atlases) == len(full_plan.stale_atlases)
        and all(decision.sprite_id in result.finished for decision in plan.stale)
    )


def _stamp(
    paths: ProjectPaths,
    session: Session,
    options: BuildOptions,
    delta: Delta | None,
    final_lock: Lock,
    lock_bytes: bytes,
) -> None:
    """Write the stamp of a complete build: the delta's splice of the old one, or a fresh one."""
    if delta is not None:
        from pixelbuild.local.stamp import write_stamp

        inputs = delta.stamp_inputs(final_lock, lock_bytes)
        write_stamp(paths.stamp, inputs, options.clock, delta.stamp, delta.written(final_lock))
    else:
        _write_stamp(session, final_lock, lock_bytes, options.clock)


def _run_engine(
    session: Session, options: BuildOptions, journal: Journal, lock: Lock, plan: Plan, progress: Progress
) -> EngineResult:
    from pixelbuild.execute.context import EngineContext
    from pixelbuild.execute.orchestrate import run_plan

    context = EngineContext(
        project_dir=session.paths.project_dir,
        output_dir=session.output_dir,
        store=session.store,
        journal=journal,
        hashes=session.hashes,
        sprites=session.resolved.by_id,
        keys=session.keys,
        lock=lock,
        backend_name=session.resolved.project.backend,
        backend_settings=session.resolved.project.backend_settings,
        jobs=max(1, options.jobs),
        progress=progress,
        atlases={atlas.id: atlas for atlas in session.resolved.atlases},
        guard=session.guard,
        foreign=session.foreign(lock, options.force),
        servers=tuple(options.servers),
        backend_factory=options.backend_factory,
        sprites_per_run=options.sprites_per_run,
    )
    return run_plan(context, plan)


def _replan(session: Session, lock: Lock, subjects: set[str], options: BuildOptions, failures: dict[str, str]) -> Plan:
    """A plan of ``subjects`` (sprite ids and ``atlas <id>``) only, against the lock as it is now.

    Their bad cache entries are gone, so this plan takes the way around them; under ``--frozen`` one
    that now needs the generator fails instead.
    """
    from pixelbuild.plan import Action
    from pixelbuild.plan import Plan as PlanType

    again = session.plan(lock, force=options.force)
    decisions = []
    for decision in again.decisions:
        if decision.sprite_id not in subjects:
            continue
        if options.frozen and decision.action is Action.GENERATE:
            failures[decision.sprite_id] = (
                "--frozen: its cached generation was missing or damaged, and making it again needs the generator"
            )
            continue
        decisions.append(decision)
    atlases = [a for a in again.atlases if f"atlas {a.atlas_id}" in subjects]
    return PlanType(decisions, atlases)


def _read_lock(paths: ProjectPaths, trusted: str | None) -> tuple[Lock, LockText | None]:
    """The lock as the build starts from (the file, with any unfolded journal applied), and its bytes
    indexed for splicing when they are the very bytes the last complete build wrote (digest ``trusted``)."""
    from pixelbuild.hashing import hash_bytes
    from pixelbuild.local.journal import read_journal
    from pixelbuild.lock import Lock, LockText, apply_journal, parse_lock, read_lock_bytes

    display = paths.display(paths.lock)
    raw = read_lock_bytes(paths.lock, display)
    lock = Lock() if raw is None else parse_lock(raw, display)
    records = read_journal(paths.journal)
    if records:
        return apply_journal(lock, records), None
    if raw is None or trusted is None or hash_bytes(raw) != trusted:
        return lock, None
    return lock, LockText.index(raw)


def _commit_lock(
    paths: ProjectPaths, lock: Lock, text: LockText | None = None, records: Sequence[Mapping[str, Any]] = ()
) -> bytes:
    """Write ``lock`` if its bytes differ from the file's, then drop the journal it includes.

    With ``text`` (the file's bytes, framed), the lock is those bytes with the journal ``records`` applied
    (``lock`` may hold only the entries the build looked at): only the entries the journal changed are
    rendered, and the bytes are the same as a full rendering.
    """
    from pixelbuild.fsutil import atomic_write_bytes
    from pixelbuild.lock import LockFormatError, apply_journal, journal_changes, parse_lock, render_lock

    current: bytes | None = None
    raw = None
    if text is not None:
        try:
            raw, current = text.splice(*journal_changes(records)), text.raw
        except LockFormatError:  # not laid out as render_lock lays it out after all: every entry, in full
            lock = apply_journal(parse_lock(text.raw, paths.display(paths.lock)), records)
    if raw is None:
        raw = render_lock(lock)
        try:
            current = paths.lock.read_bytes()
        except FileNotFoundError:
            current = None
    # No lock yet and nothing to lock (e.g. the backend refused to start): write nothing.
    if current != raw and (current is not None or lock.sprites):
        # The temporary file goes beside the journal: a build killed while writing leaves it there (swept by the
        # next build), not in the user's repository beside the lock.
        atomic_write_bytes(paths.lock, raw, durable=True, scratch=paths.journal.parent)
    # Only once the lock is safely replaced may the journal go (a crash in between replays it: harmless).
    paths.journal.unlink(missing_ok=True)
    return raw


def _write_stamp(session: Session, lock: Lock, lock_bytes: bytes, clock: Clock | None) -> None:
    from pixelbuild.hashing import hash_bytes
    from pixelbuild.local.stamp import StampInputs, write_stamp
    from pixelbuild.lock import lock_outputs

    paths = session.paths
    # The stamp names the real path of the project folder once, and everything else relative to it.
    project = os.path.realpath(paths.project_dir)

    def relative(path: str | os.PathLike[str]) -> str:
        return Path(os.path.relpath(path, project)).as_posix()

    write_stamp(
        paths.stamp,
        StampInputs(
            project_dir=project,
            manifest=paths.manifest.name,
            manifests=[(relative(f.path), f.digest) for f in session.manifest.files],
            globs=[
                (relative(base), pattern, matches)
                for f in session.manifest.files
                for base, pattern, matches in f.include_globs
            ],
            files=list(session.resolved.files),
            absent=list(session.resolved.absent),
            lock_digest=hash_bytes(lock_bytes),
            output=relative(session.output_dir),
            outputs=[o.path for o in lock_outputs(lock)],
            sprites=len(lock.sprites) + len(lock.atlases),  # what a no-op reports up to date
        ),
        clock,
    )
