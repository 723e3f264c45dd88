"""Post-processing: an ordered chain of pure image ops applied to a sprite's generated frames.

Each op is a pure function ``(frames, params, ctx) -> frames`` over a list of RGBA images (one per
frame, so ops that must agree across frames, such as a shared palette, see them all). Ops live in the
modules of this package and register themselves in ``OPS``; this module stays light to import.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pixelbuild.spec import PostOp

if TYPE_CHECKING:
    from PIL import Image

#: Bumped whenever an op's output changes for the same input and params: part of every post key.
POST_VERSION = "1"

#: Modules that define ops; imported on first use so that a no-op build never pays for numpy.
_OP_MODULES = ("pixelbuild.post.geometry",)

#: Parameters that name a project file (its content hash enters the post key), per op.
FILE_PARAMS: Mapping[str, tuple[str, ...]] = {}


@dataclass(frozen=True, slots=True)
class PostContext:
    """What an op may read besides its input: project files named in its params (palette files)."""

    read_file: Callable[[str], bytes]


OpFunction = Callable[[list["Image.Image"], Mapping[str, Any], PostContext], list["Image.Image"]]
ParamCheck = Callable[[Mapping[str, Any]], None]


@dataclass(frozen=True, slots=True)
class OpDef:
    """A registered op: its function and an optional semantic check of its params."""

    name: str
    function: OpFunction
    check: ParamCheck | None = None


OPS: dict[str, OpDef] = {}
_loaded: list[bool] = []


def register(name: str, check: ParamCheck | None = None) -> Callable[[OpFunction], OpFunction]:
    """Class-free decorator that registers ``function`` as op ``name``."""

    def decorate(function: OpFunction) -> OpFunction:
        OPS[name] = OpDef(name, function, check)
        return function

    return decorate


def normalise_post_entry(entry: str | Mapping[str, Any]) -> PostOp:
    """Turn a manifest ``post:`` entry (``- trim`` or ``- resize: {size: 32}``) into a ``PostOp``."""
    if isinstance(entry, str):
        return PostOp(entry, {})
    ((name, params),) = entry.items()
    return PostOp(name, dict(params or {}))


def load_ops() -> dict[str, OpDef]:
    """Import every op module (once) and return the registry."""
    if not _loaded:
        for module in _OP_MODULES:
            importlib.import_module(module)
        _loaded.append(True)
    return OPS


def check_params(op: PostOp) -> None:
    """Raise ``ValueError`` (with a user-facing message) when ``op``'s params make no sense."""
    ops = load_ops()
    definition = ops.get(op.op)
    if definition is None:
        raise ValueError(f"unknown post-processing op '{op.op}'")
    if definition.check is not None:
        definition.check(op.params)


def apply_chain(frames: Sequence[Image.Image], chain: Sequence[PostOp], ctx: PostContext) -> list[Image.Image]:
    """Run ``chain`` over ``frames`` (converted to RGBA first) and return the resulting frames."""
    ops = load_ops()
    current = [frame if frame.mode == "RGBA" else frame.convert("RGBA") for frame in frames]
    for step in chain:
        current = ops[step.op].function(current, step.params, ctx)
    return current


def assemble_frames(frames: Sequence[Image.Image], layout: Mapping[str, Any]) -> Image.Image:
    """Lay frames out as a strip (one row) or a grid of ``columns``, ``padding`` pixels apart, on transparency."""
    from PIL import Image

    count = len(frames)
    columns = count if layout.get("type", "strip") == "strip" else (layout.get("columns") or _square_columns(count))
    columns = max(1, min(columns, count))
    rows = (count + columns - 1) // columns
    padding = int(layout.get("padding", 0))
    cell_width = max(frame.width for frame in frames)
    cell_height = max(frame.height for frame in frames)
    canvas = Image.new(
        "RGBA",
        (columns * cell_width + (columns - 1) * padding, rows * cell_height + (rows - 1) * padding),
        (0, 0, 0, 0),
    )
    for index, frame in enumerate(frames):
        row, column = divmod(index, columns)
        canvas.paste(frame, (column * (cell_width + padding), row * (cell_height + padding)))
    return canvas


def _square_columns(count: int) -> int:
    columns = 1
    while columns * columns < count:
        columns += 1
    return columns
