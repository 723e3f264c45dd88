"""The ``pixelbuild`` command: argument parsing, output for people (or ``--json``) and exit codes.

Exit codes: 0 success; 1 a build step failed, ``check`` found disagreements, or ``--frozen`` needed the
generator; 2 bad input (manifest, lock, referenced file, command line); 3 the backend is unreachable;
130 interrupted (Ctrl-C); 143 terminated (SIGTERM). Either way finished work is folded into the lock.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import sys
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from pixelbuild import __version__
from pixelbuild.errors import (
    EXIT_BAD_INPUT,
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_TERMINATED,
    PixelbuildError,
)

if TYPE_CHECKING:
    from pathlib import Path

    from pixelbuild.paths import ProjectPaths

MANIFEST_NAME = "pixelbuild.yaml"
_STARTED = time.perf_counter()


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-C", dest="directory", metavar="DIR", help="run as if started in DIR")
    common.add_argument("--manifest", metavar="PATH", help=f"manifest file (default: {MANIFEST_NAME})")
    common.add_argument("--json", action="store_true", help="print a JSON document instead of text")

    parser = argparse.ArgumentParser(
        prog="pixelbuild",
        description="Build AI-generated pixel art the way make builds code.",
        epilog=(
            "Exit codes: 0 ok, 1 failed/disagreement, 2 bad input, 3 backend unreachable, 130 interrupted, "
            "143 terminated."
        ),
    )
    parser.add_argument("--version", action="version", version=f"pixelbuild {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    build = commands.add_parser("build", parents=[common], help="generate and post-process what changed")
    build.add_argument("--only", action="append", default=[], metavar="ID|GLOB", help="build only these sprites")
    build.add_argument("-j", "--jobs", type=int, default=1, metavar="N", help="parallel jobs (default 1)")
    build.add_argument("--frozen", action="store_true", help="fail instead of calling the generator")
    build.add_argument(
        "--force", action="store_true", help="replace files at output paths that pixelbuild did not write"
    )
    build.add_argument("--server", action="append", default=[], metavar="URL", help="ComfyUI server (repeatable)")
    build.add_argument("--progress", choices=("auto", "bar", "lines", "none"), default="auto", help="progress display")

    plan = commands.add_parser("plan", parents=[common], help="show what a build would do, and why")
    plan.add_argument("--only", action="append", default=[], metavar="ID|GLOB", help="plan only these sprites")
    plan.add_argument("--all", action="store_true", help="list up-to-date sprites too")

    commands.add_parser("check", parents=[common], help="verify manifest, lock and files agree (never generates)")
    commands.add_parser("validate", parents=[common], help="parse and validate the manifest only")

    gc = commands.add_parser("gc", parents=[common], help="prune the local cache")
    gc.add_argument("--keep-days", type=float, default=0.0, metavar="N", help="also keep entries used in N days")

    eject = commands.add_parser(
        "eject", parents=[common], help="copy a generated sprite to a PNG and make the manifest read it (source:)"
    )
    eject.add_argument("sprite", metavar="ID", help="sprite id")
    eject.add_argument("-o", dest="output", metavar="PATH", help="the PNG to write (default: art/<id>.png)")
    eject.add_argument("--raw", action="store_true", help="the raw generation (the post chain stays) instead")

    from pixelbuild.review.commands import add_parsers

    add_parsers(commands, common)
    return parser


def _manifest_path(args: argparse.Namespace) -> Path:
    from pathlib import Path

    base = Path(args.directory) if args.directory else Path.cwd()
    if args.directory and not base.is_dir():
        raise PixelbuildError(f"-C {args.directory}: no such folder")
    return base / (args.manifest or MANIFEST_NAME)


def _emit(args: argparse.Namespace, document: dict[str, Any], text: str) -> None:
    if args.json:
        sys.stdout.write(json.dumps(document, indent=2, sort_keys=True) + "\n")
    elif text:
        sys.stdout.write(text + "\n")


def _progress(args: argparse.Namespace) -> Any:
    from pixelbuild.progress import BarProgress, LineProgress, QuietProgress

    mode = args.progress
    if args.json or mode == "none":
        return QuietProgress()
    if mode == "bar" or (mode == "auto" and sys.stderr.isatty() and os.environ.get("TERM") != "dumb"):
        return BarProgress(sys.stderr)
    return LineProgress(sys.stderr)


def _noop_build(args: argparse.Namespace) -> bool:
    """The no-op fast path: if the last build's stamp holds, report and return True (imports almost nothing)."""
    from pixelbuild.noop import check_stamp

    if args.only or args.force:
        return False
    base = args.directory or os.getcwd()
    up_to_date = check_stamp(os.path.abspath(os.path.join(base, args.manifest or MANIFEST_NAME)))
    if up_to_date is None:
        return False
    document = {
        "ok": True,
        "noop": True,
        "generated": 0,
        "generator_calls": 0,
        "post_processed": 0,
        "restored": 0,
        "removed": 0,
        "packed": 0,
        "up_to_date": up_to_date,
        "failures": {},
        "interrupted": False,
        "seconds": round(time.perf_counter() - _STARTED, 3),
    }
    _emit(args, document, f"0 generated, {up_to_date} up to date ({time.perf_counter() - _STARTED:.2f}s)")
    return True


def _cmd_build(args: argparse.Namespace) -> int:
    if args.jobs < 1:
        from pixelbuild.errors import UsageError

        raise UsageError(f"-j must be at least 1, got {args.jobs}")
    if _noop_build(args):
        return EXIT_OK
    from pixelbuild.builder import BuildOptions, build

    options = BuildOptions(
        only=tuple(args.only), jobs=args.jobs, frozen=args.frozen, servers=tuple(args.server), force=args.force
    )
    report = build(_manifest_path(args), options, _progress(args))
    for warning in report.warnings:
        sys.stderr.write(f"pixelbuild: warning: {warning}\n")
    lines = []
    for sprite_id, message in sorted(report.failures.items()):
        lines.append(f"FAILED {sprite_id}: {message}")
    if report.interrupted:
        lines.append("interrupted: finished sprites are in the lock; run the build again to continue")
    lines.append(f"{report.summary()} ({report.seconds:.2f}s)")
    document = {
        "ok": report.ok,
        "noop": report.noop,
        "generated": report.generated,
        "generator_calls": report.generator_calls,
        "post_processed": report.post_processed,
        "restored": report.restored,
        "removed": report.removed,
        "packed": report.packed,
        "up_to_date": report.up_to_date,
        "failures": report.failures,
        "warnings": report.warnings,
        "interrupted": report.interrupted,
        "seconds": round(report.seconds, 3),
    }
    _emit(args, document, "\n".join(lines))
    if report.interrupted:
        return _interrupted_code()
    return EXIT_OK if report.ok else EXIT_FAILED


def _cmd_plan(args: argparse.Namespace) -> int:
    from pixelbuild.paths import ProjectPaths
    from pixelbuild.plan import Action
    from pixelbuild.project import open_session, read_current_lock

    paths = ProjectPaths.for_manifest(_manifest_path(args))
    session = open_session(paths)
    plan = session.select(session.plan(read_current_lock(paths)), tuple(args.only))
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
    lines = [f"{p.kind:<9} {p.subject}: {p.detail}" for p in report.problems]
    lines.extend(f"note: {note}" for note in report.notes)
    if report.ok:
        lines.append(f"ok: {report.sprites} sprites, manifest, lock and files agree")
    else:
        lines.append(f"{len(report.problems)} problem(s); run 'pixelbuild build' to fix them, then commit the lock")
    document = {
        "ok": report.ok,
        "sprites": report.sprites,
        "problems": [{"kind": p.kind, "subject": p.subject, "detail": p.detail} for p in report.problems],
        "notes": report.notes,
    }
    _emit(args, document, "\n".join(lines))
    return EXIT_OK if report.ok else EXIT_FAILED


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
    from pixelbuild.paths import ProjectPaths

    paths = ProjectPaths.for_manifest(_manifest_path(args))
    # -C DIR means "run in DIR": a relative -o PATH is relative to it.
    output = os.path.join(args.directory or os.curdir, args.output) if args.output else None
    done = eject(paths, args.sprite, output, args.raw)
    document = {"sprite": done.sprite, "file": done.file, "manifest": done.manifest, "line": done.line}
    _emit(args, {**document, "source": done.source, "raw": done.raw}, done.text())
    return EXIT_OK


def _cmd_gc(args: argparse.Namespace) -> int:
    from pixelbuild.builder import ProjectLock
    from pixelbuild.paths import ProjectPaths

    paths = ProjectPaths.for_manifest(_manifest_path(args))
    # A running build relies on the cache entries its plan found: gc refuses to run beside it.
    with ProjectLock(paths, "gc"):
        return _gc_locked(args, paths)


def _gc_locked(args: argparse.Namespace, paths: ProjectPaths) -> int:
    from pixelbuild.project import read_current_lock
    from pixelbuild.store import Store

    lock = read_current_lock(paths)
    live = {("post", entry.post_key) for entry in lock.sprites.values()}
    live |= {("gen", key) for entry in lock.sprites.values() for key in entry.generation_keys}
    live |= {("pack", entry.pack_key) for entry in lock.atlases.values()}
    try:  # also keep what the current manifest wants (built or not), when it loads
        from pixelbuild.project import open_session

        session = open_session(paths)
        for keys in session.keys.values():
            live.add(("post", keys.post))
            live.update(("gen", key) for key in keys.generations)
        live.update(("pack", key) for key in session.atlas_keys.values())
    except PixelbuildError:
        pass
    report = Store(paths.cache).gc(live, keep_seconds=args.keep_days * 86400)
    text = f"removed {report.actions} cache entries and {report.blobs} files ({report.bytes / 1e6:.1f} MB)"
    _emit(args, {"actions": report.actions, "blobs": report.blobs, "bytes": report.bytes}, text)
    return EXIT_OK


_COMMANDS = {
    "build": _cmd_build,
    "plan": _cmd_plan,
    "check": _cmd_check,
    "validate": _cmd_validate,
    "gc": _cmd_gc,
    "eject": _cmd_eject,
}


_terminated = False


def _on_sigterm(signum: int, frame: object) -> None:
    """SIGTERM stops a build the way Ctrl-C does (finished work folded into the lock), then exits 143."""
    global _terminated
    _terminated = True
    raise KeyboardInterrupt


def _interrupted_code() -> int:
    return EXIT_TERMINATED if _terminated else EXIT_INTERRUPTED


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit code."""
    global _terminated
    args = _parser().parse_args(argv)
    _terminated = False
    previous: Any = None
    with contextlib.suppress(ValueError):  # not the main thread (embedded use): leave signals alone
        previous = signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        if args.command not in _COMMANDS:
            from pixelbuild.review.commands import run

            return run(args)
        return _COMMANDS[args.command](args)
    except PixelbuildError as error:
        sys.stderr.write(f"pixelbuild: error: {error}\n")
        return error.exit_code
    except KeyboardInterrupt:
        sys.stderr.write("pixelbuild: interrupted\n")
        return _interrupted_code()
    except BrokenPipeError:
        return EXIT_OK
    except Exception as error:  # a bug: say so plainly, keep the traceback behind a switch
        if os.environ.get("PIXELBUILD_DEBUG"):
            raise
        sys.stderr.write(
            f"pixelbuild: internal error ({type(error).__name__}: {error}); this is a bug. "
            "Run again with PIXELBUILD_DEBUG=1 for the traceback and report it.\n"
        )
        return EXIT_BAD_INPUT if isinstance(error, OSError) else EXIT_FAILED
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
