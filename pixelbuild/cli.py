"""The ``pixelbuild`` command: argument parsing, output for people (or ``--json``) and exit codes.

Exit codes: 0 success; 1 a build step failed, the disk filled up, ``check`` found disagreements, or
``--frozen`` needed the generator; 2 bad input (manifest, lock, referenced file, command line); 3 the
backend is unreachable (at the start or for good during the build); 130 interrupted (Ctrl-C); 143
terminated (SIGTERM). Either way finished work is folded into the lock.

With ``--json`` every outcome is one JSON document on stdout, errors included:
``{"ok": false, "error": {"kind", "message", "exit_code", "file", "line", "sprite", "field"}}``
(a command's own document, e.g. ``build``'s report, carries the same ``error`` object when it fails).
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import gc
import json
import math
import os
import signal
import sys
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, NoReturn

from pixelbuild._version import __version__
from pixelbuild.errors import (
    EXIT_BAD_INPUT,
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_TERMINATED,
    PixelbuildError,
    UsageError,
    describe_os_error,
    disk_full,
    error_document,
    one_paragraph,
)
from pixelbuild.local.layout import MANIFEST_NAME

if TYPE_CHECKING:
    from pathlib import Path

    from pixelbuild.backends.base import BackendFactory
    from pixelbuild.builder import BuildReport
    from pixelbuild.local.layout import ProjectPaths

_STARTED = time.perf_counter()
# As the process ends, the collector's last passes walk every object a command made, though reference counting
# frees them all the same: frozen first, an edit build at 10,000 sprites exits ~25 ms sooner (~40 ms -> ~12 ms).
atexit.register(gc.freeze)


class _ArgumentProblem(Exception):
    """argparse found the command line wrong (raised instead of printing and exiting, for ``--json``)."""

    def __init__(self, usage: str, prog: str, message: str) -> None:
        super().__init__(message)
        self.usage = usage
        self.prog = prog
        self.message = message


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        """Raise, so that ``main`` can answer in JSON as well as in text."""
        raise _ArgumentProblem(self.format_usage(), self.prog, message)


#: Options every command takes, before or after the command name (``pixelbuild -C game build``).
_GLOBAL_DEFAULTS: dict[str, Any] = {"directory": None, "manifest": None, "json": False}


def _add_global_options(parser: argparse.ArgumentParser) -> None:
    # SUPPRESS: an option not given after the command must not reset one given before it.
    quiet = argparse.SUPPRESS
    parser.add_argument("-C", dest="directory", metavar="DIR", default=quiet, help="run as if started in DIR")
    parser.add_argument("--manifest", metavar="PATH", default=quiet, help=f"manifest file (default: {MANIFEST_NAME})")
    parser.add_argument(
        "--json", action="store_true", default=quiet, help="print a JSON document instead of text (errors too)"
    )


def _add_remote_options(parser: argparse.ArgumentParser) -> None:
    remote = parser.add_mutually_exclusive_group()
    remote.add_argument(
        "--remote", metavar="URL", help="remote cache: s3://bucket/prefix or a folder (overrides the manifest's)"
    )
    remote.add_argument("--no-remote", action="store_true", help="use no remote cache")


def _remote_url(args: argparse.Namespace) -> str | None:
    """``--remote``, a relative folder taken from where the command runs (``-C DIR``), like other paths."""
    url: str | None = args.remote
    if url is None or "://" in url or os.path.isabs(os.path.expanduser(url)):
        return url
    return os.path.abspath(os.path.join(args.directory or os.curdir, url))


def _days(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of days, got {text!r}") from None
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"expected a number of days, 0 or more, got {text!r}")
    return value


def _parser(command: str | None = None) -> argparse.ArgumentParser:
    """The command line's parser. With ``command`` (what ``_command_named`` found in the arguments), only that
    command's subparser is made: making all of them costs ~6 ms, a tenth of a no-op build."""
    common = _Parser(add_help=False)
    _add_global_options(common)

    parser = _Parser(
        prog="pixelbuild",
        description="Build AI-generated pixel art the way make builds code.",
        epilog=(
            "Exit codes: 0 ok, 1 failed/disagreement/disk full, 2 bad input, 3 backend unreachable, "
            "130 interrupted, 143 terminated."
        ),
    )
    parser.add_argument("--version", action="version", version=f"pixelbuild {__version__}")
    _add_global_options(parser)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for names, add in _SUBPARSERS:
        if command is None or command in names:
            add(commands, common)
    return parser


def _command_named(arguments: Sequence[str]) -> str | None:
    """The command the arguments name, if they name one ``_SUBPARSERS`` knows after global options only;
    else None (the whole parser reads them, and says what is wrong)."""
    values = ("-C", "--manifest")  # the global options that take a value
    position = 0
    while position < len(arguments):
        argument = arguments[position]
        if argument in values:
            position += 2
        elif argument == "--json" or argument.startswith("--manifest=") or (argument[:2] == "-C" and argument != "-C"):
            position += 1
        elif argument.startswith("-"):
            return None
        else:
            return argument if any(argument in names for names, _add in _SUBPARSERS if names) else None
    return None


def _add_build(commands: Any, common: argparse.ArgumentParser) -> None:
    build = commands.add_parser("build", parents=[common], help="generate and post-process what changed")
    build.add_argument("--only", action="append", default=[], metavar="ID|GLOB", help="build only these sprites")
    build.add_argument("-j", "--jobs", type=int, default=1, metavar="N", help="parallel jobs (default 1)")
    build.add_argument("--frozen", action="store_true", help="fail instead of calling the generator")
    build.add_argument(
        "--force", action="store_true", help="replace files at output paths that pixelbuild did not write"
    )
    build.add_argument("--server", action="append", default=[], metavar="URL", help="ComfyUI server (repeatable)")
    build.add_argument("--progress", choices=("auto", "bar", "lines", "none"), default="auto", help="progress display")
    _add_remote_options(build)
    build.add_argument("--no-push", action="store_true", help="read the remote cache but write nothing to it")


def _add_transfers(commands: Any, common: argparse.ArgumentParser) -> None:
    for name, verb in (("push", "upload to"), ("pull", "download from")):
        transfer = commands.add_parser(
            name, parents=[common], help=f"{verb} the remote cache what the lock references (raw generations too)"
        )
        if name == "pull":
            transfer.add_argument("--only", action="append", default=[], metavar="ID|GLOB", help="only these sprites")
        _add_remote_options(transfer)
        transfer.add_argument("--transfers", type=int, metavar="N", help="transfers in flight (default 16)")


def _add_plan(commands: Any, common: argparse.ArgumentParser) -> None:
    plan = commands.add_parser("plan", parents=[common], help="show what a build would do, and why")
    plan.add_argument("--only", action="append", default=[], metavar="ID|GLOB", help="plan only these sprites")
    plan.add_argument("--all", action="store_true", help="list up-to-date sprites too")


def _add_check(commands: Any, common: argparse.ArgumentParser) -> None:
    commands.add_parser("check", parents=[common], help="verify manifest, lock and files agree (never generates)")


def _add_validate(commands: Any, common: argparse.ArgumentParser) -> None:
    commands.add_parser("validate", parents=[common], help="parse and validate the manifest only")


def _add_gc(commands: Any, common: argparse.ArgumentParser) -> None:
    gc = commands.add_parser("gc", parents=[common], help="prune the local cache")
    gc.add_argument("--keep-days", type=_days, default=0.0, metavar="N", help="also keep entries used in N days")


def _add_eject(commands: Any, common: argparse.ArgumentParser) -> None:
    eject = commands.add_parser(
        "eject", parents=[common], help="copy a generated sprite to a PNG and make the manifest read it (source:)"
    )
    eject.add_argument("sprite", metavar="ID", help="sprite id")
    eject.add_argument("-o", dest="output", metavar="PATH", help="the PNG to write (default: art/<id>.png)")
    eject.add_argument("--raw", action="store_true", help="the raw generation (the post chain stays) instead")


def _add_review(commands: Any, common: argparse.ArgumentParser) -> None:
    from pixelbuild.review.commands import add_parsers

    add_parsers(commands, common)


def _add_watch(commands: Any, common: argparse.ArgumentParser) -> None:
    watch = commands.add_parser("watch", parents=[common], help="build, then rebuild whenever an input is saved")
    watch.add_argument("--only", action="append", default=[], metavar="ID|GLOB", help="build only these sprites")
    watch.add_argument("-j", "--jobs", type=int, default=1, metavar="N", help="parallel jobs (default 1)")
    watch.add_argument("--server", action="append", default=[], metavar="URL", help="ComfyUI server (repeatable)")
    watch.add_argument("--progress", choices=("auto", "bar", "lines", "none"), default="auto", help="progress display")
    watch.add_argument(
        "--debounce", type=int, default=100, metavar="MS", help="rebuild once files are quiet for MS ms (default 100)"
    )


def _add_init(commands: Any, common: argparse.ArgumentParser) -> None:
    init = commands.add_parser("init", parents=[common], help="set up pixelbuild in a game repository")
    init.add_argument("--backend", choices=("placeholder", "comfyui"), help="the generator (default: placeholder)")
    init.add_argument("--server", metavar="URL", help="start from this ComfyUI server's models (implies comfyui)")
    init.add_argument("--git-config", action="store_true", help="also enable the lock's merge driver in git config")


def _add_merge_lock(commands: Any, common: argparse.ArgumentParser) -> None:
    merge = commands.add_parser(
        "merge-lock",
        help="git merge driver for the lock: merge entry by entry (git config: pixelbuild merge-lock %%O %%A %%B)",
    )
    merge.add_argument("base", metavar="BASE", help="the common ancestor's lock (git's %%O)")
    merge.add_argument("ours", metavar="OURS", help="this branch's lock, replaced by the result (git's %%A)")
    merge.add_argument("theirs", metavar="THEIRS", help="the other branch's lock (git's %%B)")
    merge.add_argument("path", metavar="PATH", nargs="?", help="the lock's path in the repository (git's %%P)")
    merge.add_argument("--json", action="store_true", help="print a JSON document instead of text")


#: What adds each command's subparser, in the order ``--help`` lists them, with the names it adds (the review
#: commands' names are that module's: none here, so they are made only with the whole parser).
_SUBPARSERS: tuple[tuple[tuple[str, ...], Callable[[Any, argparse.ArgumentParser], None]], ...] = (
    (("build",), _add_build),
    (("push", "pull"), _add_transfers),
    (("plan",), _add_plan),
    (("check",), _add_check),
    (("validate",), _add_validate),
    (("gc",), _add_gc),
    (("eject",), _add_eject),
    ((), _add_review),
    (("watch",), _add_watch),
    (("init",), _add_init),
    (("merge-lock",), _add_merge_lock),
)


def _manifest_path(args: argparse.Namespace) -> Path:
    from pathlib import Path

    base = Path(args.directory) if args.directory else Path.cwd()
    return base / (args.manifest or MANIFEST_NAME)


def _check_directory(args: argparse.Namespace) -> None:
    if args.directory is None:
        return
    if not os.path.exists(args.directory):
        raise UsageError(f"-C {args.directory}: no such folder")
    if not os.path.isdir(args.directory):
        raise UsageError(f"-C {args.directory}: not a folder")


def _emit(args: argparse.Namespace, document: dict[str, Any], text: str) -> None:
    if args.json and getattr(args, "json_lines", False):  # watch: one document per line, one line per build
        sys.stdout.write(json.dumps(document, sort_keys=True) + "\n")
        sys.stdout.flush()
    elif args.json:
        _write_json(document)
    elif text:
        sys.stdout.write(text + "\n")


def _write_json(document: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(document, indent=2, sort_keys=True) + "\n")


def _progress(args: argparse.Namespace) -> Any:
    from pixelbuild.progress import BarProgress, LineProgress, QuietProgress

    mode = args.progress
    if args.json or mode == "none":
        return QuietProgress()
    if mode == "bar" or (mode == "auto" and sys.stderr.isatty() and os.environ.get("TERM") != "dumb"):
        return BarProgress(sys.stderr)
    return LineProgress(sys.stderr)


def _noop_report(args: argparse.Namespace, up_to_date: int) -> None:
    """Report the no-op fast path's answer (imports almost nothing)."""
    from pixelbuild.report import report_document

    seconds = time.perf_counter() - _STARTED
    document = report_document(noop=True, up_to_date=up_to_date, seconds=seconds)
    _emit(args, document, f"0 generated, {up_to_date} up to date ({seconds:.2f}s)")


def _cmd_build(args: argparse.Namespace) -> int:
    if args.jobs < 1:
        raise UsageError(f"-j must be at least 1, got {args.jobs}")
    from pixelbuild.local.layout import real_manifest_path
    from pixelbuild.local.stamp import check_for_build, up_to_date_sprites

    manifest = real_manifest_path(os.path.join(args.directory or os.getcwd(), args.manifest or MANIFEST_NAME))
    # Checked before the builder is imported: a no-op needs nothing else. A build takes what was found on.
    found = check_for_build(manifest, args.only, args.force)
    up_to_date = up_to_date_sprites(found)
    if up_to_date is not None:
        _noop_report(args, up_to_date)
        return EXIT_OK
    from pixelbuild.builder import BuildOptions, build_checked

    options = BuildOptions(
        only=tuple(args.only),
        jobs=args.jobs,
        frozen=args.frozen,
        servers=tuple(args.server),
        force=args.force,
        backend_factory=args.backend_factory,
        remote=_remote_url(args),
        no_remote=args.no_remote,
        no_push=args.no_push,
    )
    progress = _progress(args)
    return _report_build(args, build_checked(manifest, found, options, progress), progress)


def _report_build(args: argparse.Namespace, report: BuildReport, progress: Any) -> int:
    """Print what a build did (text or ``--json``) and return its exit code."""
    for warning in report.warnings:
        sys.stderr.write(f"pixelbuild: warning: {warning}\n")
    lines = []
    for sprite_id, message in sorted(report.failures.items()):
        if sprite_id not in progress.reported:  # else it was said once, as it happened
            lines.append(f"FAILED {sprite_id}: {one_paragraph(message)}")
    interrupted = "interrupted: finished sprites are in the lock; run the build again to continue"
    if report.interrupted:
        lines.append(interrupted)
    lines.append(f"{report.summary()} ({report.seconds:.2f}s)")
    document = report.to_json()
    if report.error is not None:
        code, message, error = report.error.exit_code, str(report.error), report.error
    elif report.interrupted:
        code, message, error = _interrupted_code(), interrupted, None
    elif report.failures:
        failed = sorted(report.failures)
        shown = ", ".join(failed[:10]) + (", ..." if len(failed) > 10 else "")
        code, message, error = EXIT_FAILED, f"{len(failed)} failed: {shown}", None
    else:
        _emit(args, document, "\n".join(lines))
        return EXIT_OK
    document["error"] = error_document(error, one_paragraph(message), code)
    _emit(args, document, "\n".join(lines))
    if report.error is not None:
        sys.stderr.write(f"pixelbuild: error: {one_paragraph(message)}\n")
    return code


def _cmd_plan(args: argparse.Namespace) -> int:
    from pixelbuild.gcpause import PausedGC
    from pixelbuild.local.layout import ProjectPaths
    from pixelbuild.plan import Action
    from pixelbuild.project import open_session, read_current_state

    paths = ProjectPaths.for_manifest(_manifest_path(args))
    with PausedGC():
        session = open_session(paths)
        lock, rebuilt = read_current_state(paths)
        plan = session.select(session.plan(lock, rebuilt=rebuilt), tuple(args.only))
    session.hashes.save()
    rows = [(d.action, d.sprite_id, d.reasons) for d in plan.decisions]
    rows += [(a.action, f"atlas {a.atlas_id}", a.reasons) for a in plan.atlases]
    shown = [row for row in rows if args.all or row[0] is not Action.UP_TO_DATE]
    width = max((len(name) for _action, name, _reasons in shown), default=0)
    lines = [f"{action.value:<11} {name:<{width}}  {'; '.join(reasons)}".rstrip() for action, name, reasons in shown]
    counts = {action.value: sum(1 for row in rows if row[0] is action) for action in Action}
    stale = [
        f"{counts[a.value]} to {verb}"
        for a, verb in (
            (Action.GENERATE, "generate"),
            (Action.POST, "post-process"),
            (Action.RESTORE, "restore"),
            (Action.PACK, "pack"),
            (Action.REMOVE, "remove"),
        )
        if counts[a.value]
    ]
    up = counts[Action.UP_TO_DATE.value]
    lines.append(", ".join([*stale, f"{up} up to date"]) if stale else f"nothing to do: {up} up to date")
    if paths.journal.exists():  # as check reports it: the lock file itself still lacks that work
        lines.append(
            f"note: an interrupted build's finished work, counted above, is not in {paths.display(paths.lock)} "
            "yet; the next build folds it in"
        )
    document = {
        "ok": True,
        "sprites": [
            {"id": d.sprite_id, "action": d.action.value, "reasons": list(d.reasons), "generate": list(d.missing)}
            for d in plan.decisions
        ],
        "atlases": [{"id": a.atlas_id, "action": a.action.value, "reasons": list(a.reasons)} for a in plan.atlases],
        "counts": counts,
    }
    _emit(args, document, "\n".join(lines))
    return EXIT_OK


def _cmd_check(args: argparse.Namespace) -> int:
    from pixelbuild.checker import check

    report = check(_manifest_path(args))
    lines = [f"{p.kind:<9} {p.subject}: {p.detail}{f'; {p.advice}' if p.advice else ''}" for p in report.problems]
    lines.extend(f"note: {note}" for note in report.notes)
    document: dict[str, Any] = {
        "ok": report.ok,
        "sprites": report.sprites,
        "problems": [
            {"kind": p.kind, "subject": p.subject, "detail": p.detail, **({"advice": p.advice} if p.advice else {})}
            for p in report.problems
        ],
        "notes": report.notes,
    }
    if report.ok:
        lines.append(f"ok: {report.sprites} sprites, manifest, lock and files agree")
        _emit(args, document, "\n".join(lines))
        return EXIT_OK
    summary = _check_summary([p.kind for p in report.problems])
    lines.append(summary)
    document["error"] = error_document(None, summary, EXIT_FAILED)
    _emit(args, document, "\n".join(lines))
    return EXIT_FAILED


def _check_summary(kinds: Sequence[str]) -> str:
    """``3 problems: ...`` with what to do, e.g. a build for stale sprites, a decision for orphans."""
    from pixelbuild.checker import BUILD_FIXES

    built = sum(1 for kind in kinds if kind in BUILD_FIXES)
    modified = sum(1 for kind in kinds if kind == "modified")
    orphans = sum(1 for kind in kinds if kind == "orphan")
    todo = []
    if built:
        which = "it" if built == len(kinds) == 1 else ("them" if built == len(kinds) else f"{built} of them")
        todo.append(f"'pixelbuild build' fixes {which}, then commit the lock and assets")
    if modified:
        files = "the edited output" if modified == 1 else f"the {modified} edited outputs"
        todo.append(f"revert {files} or replace {'it' if modified == 1 else 'them'} with 'pixelbuild build --force'")
    if orphans:
        files = "the orphan file" if orphans == 1 else f"the {orphans} orphan files"
        todo.append(f"delete {files} or add {'it' if orphans == 1 else 'them'} to project.keep")
    count = f"{len(kinds)} problem{'s' if len(kinds) != 1 else ''}"
    return f"{count}: {'; '.join(todo)}" if todo else count


def _cmd_validate(args: argparse.Namespace) -> int:
    from pixelbuild.manifest import load_manifest
    from pixelbuild.resolver import resolve

    manifest = load_manifest(_manifest_path(args))
    resolved = resolve(manifest)
    files = len(manifest.files)
    text = f"ok: {len(resolved.sprites)} sprites in {files} file{'s' if files != 1 else ''}"
    _emit(args, {"ok": True, "sprites": len(resolved.sprites), "files": files}, text)
    return EXIT_OK


def _cmd_eject(args: argparse.Namespace) -> int:
    from pixelbuild.eject import eject
    from pixelbuild.local.layout import ProjectPaths

    paths = ProjectPaths.for_manifest(_manifest_path(args))
    # -C DIR means "run in DIR": a relative -o PATH is relative to it.
    output = os.path.join(args.directory or os.curdir, args.output) if args.output else None
    done = eject(paths, args.sprite, output, args.raw)
    document = {"sprite": done.sprite, "file": done.file, "manifest": done.manifest, "line": done.line}
    _emit(args, {**document, "source": done.source, "raw": done.raw}, done.text())
    return EXIT_OK


def _cmd_gc(args: argparse.Namespace) -> int:
    from pixelbuild.local.buildlock import ProjectLock
    from pixelbuild.local.layout import ProjectPaths

    paths = ProjectPaths.for_manifest(_manifest_path(args))
    # A running build relies on the cache entries its plan found: gc refuses to run beside it.
    with ProjectLock(paths, "gc"):
        return _gc_locked(args, paths)


def _gc_locked(args: argparse.Namespace, paths: ProjectPaths) -> int:
    from pixelbuild.local.store import Store, live_actions
    from pixelbuild.project import open_session, read_current_lock

    lock = read_current_lock(paths)
    try:  # also keep what the current manifest wants (built or not), when it loads
        session = open_session(paths)
        live = live_actions(lock, session.keys.values(), session.atlas_keys.values())
    except PixelbuildError:
        live = live_actions(lock)
    report = Store(paths.cache).gc(live, keep_seconds=args.keep_days * 86400)
    text = f"removed {report.actions} cache entries and {report.blobs} files ({report.bytes / 1e6:.1f} MB)"
    _emit(args, {"ok": True, "actions": report.actions, "blobs": report.blobs, "bytes": report.bytes}, text)
    return EXIT_OK


def _cmd_transfer(args: argparse.Namespace) -> int:
    """``push`` / ``pull``: move the stages the lock references between the local and the remote cache."""
    import fnmatch

    from pixelbuild.local.buildlock import ProjectLock
    from pixelbuild.local.layout import ProjectPaths
    from pixelbuild.project import open_session, read_current_lock
    from pixelbuild.remote import sync
    from pixelbuild.remote.config import session_remote

    paths = ProjectPaths.for_manifest(_manifest_path(args))
    session = open_session(paths)
    config = session_remote(session, cli_url=_remote_url(args), disabled=args.no_remote, transfers=args.transfers)
    if config is None:
        raise UsageError(
            f"no remote cache: set project.remote in {paths.display(paths.manifest)}, PIXELBUILD_REMOTE, or --remote"
        )
    lock = read_current_lock(paths)
    only = tuple(getattr(args, "only", ()))
    for pattern in only:
        if not any(fnmatch.fnmatchcase(sprite_id, pattern) for sprite_id in lock.sprites):
            raise UsageError(f"--only '{pattern}' matches no sprite in {paths.display(paths.lock)}")
    stages = sync.lock_stages(lock, only)
    stream = sync.progress_stream(args.json)
    if args.command == "pull":
        with ProjectLock(paths, "pull"):  # gc must not prune what is being pulled
            report = sync.pull(config, session.store, stages, stream)
        verb, noun, where = "pulled", "the remote lacks", "in the local cache"
    else:
        report = sync.push(config, session.store, stages, stream)
        verb, noun, where = "pushed", "the local cache lacks (build them first)", "on the remote"
    for warning in report.warnings:
        sys.stderr.write(f"pixelbuild: warning: {warning}\n")
    text = (
        f"{verb} {report.done} of {report.total} stages ({report.bytes / 1e6:.1f} MB, {report.seconds:.2f}s), "
        f"{report.skipped} already {where}"
    )
    if report.missing:
        text += f", {report.missing} {noun}"
    if report.failed:
        text += f", {report.failed} failed"
    document = report.to_json(verb)
    if report.failed or report.missing:
        message = f"{report.missing + report.failed} of {report.total} stages not {verb}"
        document["error"] = error_document(None, message, EXIT_FAILED)
        _emit(args, document, text)
        sys.stderr.write(f"pixelbuild: error: {message}\n")
        return EXIT_FAILED
    _emit(args, document, text)
    return EXIT_OK


def _cmd_watch(args: argparse.Namespace) -> int:
    from pixelbuild.builder import BuildOptions, build
    from pixelbuild.errors import UsageError
    from pixelbuild.watch import watch

    if args.jobs < 1:
        raise UsageError(f"-j must be at least 1, got {args.jobs}")
    if args.debounce < 0:
        raise UsageError(f"--debounce must be at least 0 ms, got {args.debounce}")
    args.json_lines = True
    manifest = _manifest_path(args)
    options = BuildOptions(
        only=tuple(args.only), jobs=args.jobs, servers=tuple(args.server), backend_factory=args.backend_factory
    )

    def run_build() -> int:
        progress = _progress(args)
        code = _report_build(args, build(manifest, options, progress), progress)
        sys.stdout.flush()
        return code

    def report_error(error: PixelbuildError) -> None:
        sys.stderr.write(f"pixelbuild: error: {error}\n")
        sys.stderr.flush()
        if args.json:  # one error document per failed build, on its own line like the build reports
            document = {"ok": False, "error": error_document(error, str(error), error.exit_code)}
            sys.stdout.write(json.dumps(document, sort_keys=True) + "\n")
            sys.stdout.flush()

    code = watch(manifest, run_build, report_error, debounce_ms=args.debounce)
    return _interrupted_code() if code == EXIT_INTERRUPTED else code


def _cmd_init(args: argparse.Namespace) -> int:
    from pixelbuild.errors import UsageError
    from pixelbuild.scaffold import init_project

    if args.backend == "placeholder" and args.server:
        raise UsageError("--server needs --backend comfyui (the placeholder generator has no server)")
    backend = args.backend or ("comfyui" if args.server else "placeholder")
    report = init_project(_manifest_path(args), backend, args.server, git_config=args.git_config)
    lines = [f"created  {item}" for item in report.created] + [f"kept     {item}" for item in report.kept]
    if report.git_config:
        lines.append("To merge the lock without conflicts, run once per clone (or init --git-config):")
        lines.extend(f"  {command}" for command in report.git_config)
    lines.append("Next: pixelbuild build, then commit the manifest, the lock and the output root.")
    document = {
        "ok": True,
        "created": report.created,
        "kept": report.kept,
        "git_config": report.git_config,
        "git_config_applied": report.git_config_applied,
    }
    _emit(args, document, "\n".join(lines))
    return EXIT_OK


def _cmd_merge_lock(args: argparse.Namespace) -> int:
    from pathlib import Path

    from pixelbuild.lockmerge import merge_lock_files, merge_message, merge_report

    result = merge_lock_files(Path(args.base), Path(args.ours), Path(args.theirs))
    _emit(args, merge_report(result), merge_message(result, args.path))
    return EXIT_OK


_COMMANDS = {
    "build": _cmd_build,
    "plan": _cmd_plan,
    "check": _cmd_check,
    "validate": _cmd_validate,
    "gc": _cmd_gc,
    "eject": _cmd_eject,
    "watch": _cmd_watch,
    "init": _cmd_init,
    "merge-lock": _cmd_merge_lock,
    "push": _cmd_transfer,
    "pull": _cmd_transfer,
}


_terminated = False


def _on_sigterm(signum: int, frame: object) -> None:
    """SIGTERM stops a build the way Ctrl-C does (finished work folded into the lock), then exits 143."""
    global _terminated
    _terminated = True
    raise KeyboardInterrupt


def _interrupted_code() -> int:
    return EXIT_TERMINATED if _terminated else EXIT_INTERRUPTED


def _wants_json(argv: Sequence[str]) -> bool:
    """Whether ``--json`` (or an abbreviation argparse accepts) is among the options, parsed or not."""
    options = argv[: argv.index("--")] if "--" in argv else argv
    return any(len(arg) >= 4 and "--json".startswith(arg) for arg in options)


def _fail(as_json: bool, error: BaseException | None, message: str, code: int, *, internal: bool = False) -> int:
    """Say an error: one paragraph on stderr and, with ``--json``, the error document on stdout."""
    message = one_paragraph(message)
    if as_json:
        _write_json({"ok": False, "error": error_document(error, message, code, internal=internal)})
    prefix = "pixelbuild: internal error" if internal else "pixelbuild: error"
    sys.stderr.write(f"{prefix}: {message}\n" if not internal else f"{prefix} {message}\n")
    return code


def main(argv: Sequence[str] | None = None, *, backend_factory: BackendFactory | None = None) -> int:
    """Run the command line; return the exit code. ``backend_factory`` makes the backends of ``build`` and
    ``watch`` instead of the manifest's named one (for embedding, and tests)."""
    global _terminated
    arguments = [str(arg) for arg in (sys.argv[1:] if argv is None else argv)]
    as_json = _wants_json(arguments)
    try:
        args = _parser(_command_named(arguments)).parse_args(arguments)
    except _ArgumentProblem as problem:
        if not as_json:
            sys.stderr.write(problem.usage)
        message = f"{problem.message} (see '{problem.prog} --help')"
        return _fail(as_json, UsageError(message), message, EXIT_BAD_INPUT)
    for name, default in _GLOBAL_DEFAULTS.items():
        if not hasattr(args, name):
            setattr(args, name, default)
    as_json = args.json
    args.backend_factory = backend_factory
    _terminated = False
    previous: Any = None
    with contextlib.suppress(ValueError):  # not the main thread (embedded use): leave signals alone
        previous = signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        _check_directory(args)
        if args.command not in _COMMANDS:
            from pixelbuild.review.commands import run

            return run(args)
        return _COMMANDS[args.command](args)
    except PixelbuildError as error:
        return _fail(as_json, error, str(error), error.exit_code)
    except KeyboardInterrupt:
        return _fail(as_json, None, "terminated" if _terminated else "interrupted", _interrupted_code())
    except BrokenPipeError:
        return EXIT_OK
    except Exception as error:  # a bug, unless the file system said no: say so plainly, the traceback behind a switch
        full = disk_full(error, getattr(error, "filename", None) or os.getcwd())
        if full is not None:
            return _fail(as_json, full, str(full), full.exit_code)
        if isinstance(error, OSError) and error.filename is not None and not os.environ.get("PIXELBUILD_DEBUG"):
            return _fail(as_json, None, describe_os_error(error), EXIT_FAILED)
        if os.environ.get("PIXELBUILD_DEBUG"):
            raise
        detail = f"{type(error).__name__}: {error}"
        message = f"({detail}); this is a bug. Run again with PIXELBUILD_DEBUG=1 for the traceback and report it."
        return _fail(as_json, None, message, EXIT_FAILED, internal=True)
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
