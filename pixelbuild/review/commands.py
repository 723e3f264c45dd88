"""The review subcommands of ``pixelbuild``: ``gallery``, ``diff``, ``explore``, ``pin`` and ``workflow``.

Kept apart from ``pixelbuild.cli`` (which only registers them) and light to import: the parser is built
on every run, including no-op builds, so the work modules load only when a review command runs.
"""

from __future__ import annotations

import argparse
from typing import Any

from pixelbuild.errors import EXIT_FAILED, EXIT_OK, UsageError
from pixelbuild.local.layout import review_default


def add_parsers(commands: Any, common: argparse.ArgumentParser) -> None:
    """Register the review subcommands on the ``pixelbuild`` subparsers ``commands``."""
    gallery = commands.add_parser("gallery", parents=[common], help="write a static gallery of every sprite")
    gallery.add_argument(
        "-o", dest="output", metavar="DIR", help=f"output folder (default {review_default('gallery')})"
    )

    diff = commands.add_parser("diff", parents=[common], help="show what changed since a git revision, visually")
    diff.add_argument(
        "rev", nargs="?", default="HEAD", metavar="REV", help="git revision to compare with (default HEAD)"
    )
    diff.add_argument("-o", dest="output", metavar="DIR", help=f"output folder (default {review_default('diff')})")
    diff.add_argument("--exit-code", action="store_true", help="exit 1 when there are changes (like git diff)")

    explore = commands.add_parser("explore", parents=[common], help="generate seed candidates of one sprite")
    explore.add_argument("sprite", metavar="ID", help="sprite id")
    explore.add_argument("--seeds", type=int, default=8, metavar="N", help="number of candidates (default 8)")
    explore.add_argument("--start", type=int, default=None, metavar="SEED", help="first seed (default: the sprite's)")
    explore.add_argument(
        "-o", dest="output", metavar="DIR", help=f"output folder (default {review_default('explore')}/ID)"
    )
    explore.add_argument("--server", action="append", default=[], metavar="URL", help="ComfyUI server (repeatable)")

    pin = commands.add_parser("pin", parents=[common], help="write a seed into a sprite's manifest entry")
    pin.add_argument("sprite", metavar="ID", help="sprite id")
    pin.add_argument("seed", type=int, metavar="SEED", help="the seed to pin")

    workflow = commands.add_parser("workflow", parents=[common], help="write the ComfyUI graph of one sprite")
    workflow.add_argument("sprite", metavar="ID", help="sprite id")
    workflow.add_argument("-o", dest="output", metavar="FILE", help="output file (default: standard output)")
    workflow.add_argument("--frame", type=int, default=0, metavar="N", help="which frame's generation (default 0)")
    workflow.add_argument("--ui", action="store_true", help="ComfyUI's UI (graph) format instead of the API format")
    workflow.add_argument("--object-info", metavar="FILE", help="node definitions for --ui (saved GET /object_info)")
    workflow.add_argument("--server", action="append", default=[], metavar="URL", help="ComfyUI server for --ui")


def run(args: argparse.Namespace) -> int:
    """Run the review subcommand ``args.command``; return the exit code."""
    handlers = {"gallery": _gallery, "diff": _diff, "explore": _explore, "pin": _pin, "workflow": _workflow}
    return handlers[args.command](args)


def _paths(args: argparse.Namespace) -> Any:
    from pixelbuild.cli import _manifest_path
    from pixelbuild.local.layout import ProjectPaths

    return ProjectPaths.for_manifest(_manifest_path(args))


def _emit(args: argparse.Namespace, document: dict[str, Any], text: str) -> None:
    from pixelbuild.cli import _emit as emit

    emit(args, document, text)


def _out_dir(args: argparse.Namespace, paths: Any, command: str) -> Any:
    from pathlib import Path

    if args.output:
        return Path(args.output).absolute()
    return paths.review(command)


def _gallery(args: argparse.Namespace) -> int:
    from pixelbuild.project import open_session, read_current_lock
    from pixelbuild.review.gallery import write_gallery

    paths = _paths(args)
    session = open_session(paths)
    report = write_gallery(session, read_current_lock(paths), _out_dir(args, paths, "gallery"))
    session.hashes.save()
    document = {
        "index": str(report.index),
        "sprites": report.sprites,
        "atlases": report.atlases,
        "not_built": report.missing,
        "seconds": round(report.seconds, 3),
    }
    note = f" ({report.missing} not built yet)" if report.missing else ""
    _emit(args, document, f"{report.index}\n{report.sprites} sprites, {report.atlases} atlas(es){note}")
    return EXIT_OK


def _diff(args: argparse.Namespace) -> int:
    from pixelbuild.review.diff import run_diff

    paths = _paths(args)
    result = run_diff(paths, args.rev, _out_dir(args, paths, "diff"))
    _emit(args, result.document(), result.text())
    return EXIT_FAILED if args.exit_code and result.changed else EXIT_OK


def _explore(args: argparse.Namespace) -> int:
    from pixelbuild.review.explore import explore

    if args.seeds < 1:
        raise UsageError(f"--seeds must be at least 1, got {args.seeds}")
    paths = _paths(args)
    result = explore(paths, args.sprite, args.seeds, start=args.start, folder=args.output, servers=tuple(args.server))
    document = {
        "index": str(result.index),
        "sprite": args.sprite,
        "candidates": [{"seed": seed, "image": str(path)} for seed, path in result.candidates],
        "generated": result.generated,
        "reused": result.reused,
    }
    lines = [
        str(result.index),
        f"{len(result.candidates)} candidates: {result.generated} generated, {result.reused} from the cache",
    ]
    lines.append(f"pin one with: pixelbuild pin {args.sprite} SEED")
    _emit(args, document, "\n".join(lines))
    return EXIT_OK


def _pin(args: argparse.Namespace) -> int:
    from pixelbuild.review.pin import pin

    paths = _paths(args)
    change = pin(paths, args.sprite, args.seed)
    _emit(
        args,
        {"file": change.file, "line": change.line, "sprite": args.sprite, "seed": args.seed, "changed": change.changed},
        change.text(),
    )
    return EXIT_OK


def _workflow(args: argparse.Namespace) -> int:
    from pixelbuild.review.workflow import write_workflow

    paths = _paths(args)
    text = write_workflow(
        paths, args.sprite, frame=args.frame, ui=args.ui, object_info=args.object_info, servers=tuple(args.server)
    )
    if args.output:
        from pathlib import Path

        from pixelbuild.fsutil import atomic_write_bytes

        target = Path(args.output).absolute()
        atomic_write_bytes(target, text.encode("utf-8"))
        _emit(args, {"file": str(target)}, str(target))
    else:
        import sys

        sys.stdout.write(text)
    return EXIT_OK
