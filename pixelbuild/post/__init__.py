"""Post-processing: an ordered chain of pure image ops applied to a sprite's generated frames.

Each op is a pure function ``(frames, params, ctx) -> frames`` over a list of RGBA images (one per
frame, so ops that must agree across frames, such as a shared palette, see them all). Ops live in the
modules of this package and register themselves in ``OPS`` with their declared params
(``pixelbuild.post.params``); this module stays light to import. Frame sheets are not an op: they are
laid out after the chain, by ``pixelbuild.sheets``.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import msgspec

from pixelbuild.spec import PostOp

if TYPE_CHECKING:
    from PIL import Image

    from pixelbuild.limits import SizeRule
    from pixelbuild.post.params import Param, Signature

#: Bumped whenever an op's output changes for the same input and params: part of every post key.
POST_VERSION = "2"

#: Modules that define ops; imported on first use so that a no-op build never pays for numpy.
_OP_MODULES = (
    "pixelbuild.post.geometry",
    "pixelbuild.post.pixelate",
    "pixelbuild.post.palette",
    "pixelbuild.post.background",
    "pixelbuild.post.outline",
)


class PostContext(msgspec.Struct, frozen=True):
    """What an op may read besides its input: project files named in its params (palette files)."""

    read_file: Callable[[str], bytes]


OpFunction = Callable[[list["Image.Image"], Mapping[str, Any], PostContext], list["Image.Image"]]
ParamCheck = Callable[[Mapping[str, Any]], None]
ParamNormaliser = Callable[[dict[str, Any]], dict[str, Any]]
FileCheck = Callable[[Mapping[str, Any], Callable[[str], bytes]], None]


class OpDef(msgspec.Struct, frozen=True):
    """A registered op: its function, what it does, its declared params and its semantic extras.

    ``signature`` declares every param once (type, range, default, when it applies); checking,
    default-filling and the JSON Schema read it. ``check`` holds only what declarations cannot say
    (``min_cell < max_cell``); ``normalise`` rewrites a shorthand after defaults (pad's ``amount``).
    ``check_files`` validates the content of the project files named in the params. ``output_size``
    gives the largest output for an input size (None: the size does not change), so that a sprite's
    images are sized against the limits before anything runs.
    """

    name: str
    function: OpFunction
    description: str
    signature: Signature
    check: ParamCheck | None = None
    normalise: ParamNormaliser | None = None
    check_files: FileCheck | None = None
    output_size: SizeRule | None = None


OPS: dict[str, OpDef] = {}
_loaded: list[bool] = []
_file_params: dict[str, tuple[str, ...]] = {}


def register(
    name: str,
    description: str,
    *params: Param,
    exactly_one: tuple[tuple[str, ...], ...] = (),
    at_most_one: tuple[tuple[str, ...], ...] = (),
    check: ParamCheck | None = None,
    normalise: ParamNormaliser | None = None,
    check_files: FileCheck | None = None,
    output_size: SizeRule | None = None,
) -> Callable[[OpFunction], OpFunction]:
    """Decorator that registers ``function`` as op ``name`` with its declared ``params``."""
    from pixelbuild.post.params import Signature  # the op modules import it anyway; POST_VERSION readers need not

    signature = Signature(name, params, exactly_one, at_most_one)

    def decorate(function: OpFunction) -> OpFunction:
        OPS[name] = OpDef(name, function, description, signature, check, normalise, check_files, output_size)
        return function

    return decorate


def load_ops() -> dict[str, OpDef]:
    """Import every op module (once) and return the registry."""
    if not _loaded:
        for module in _OP_MODULES:
            importlib.import_module(module)
        _loaded.append(True)
    return OPS


class _FileParams(Mapping[str, tuple[str, ...]]):
    """Per op, the params that name a project file (their content hash enters the post key)."""

    def _table(self) -> dict[str, tuple[str, ...]]:
        if not _file_params:  # once the ops are loaded: the resolver asks for every sprite
            ops = load_ops()
            _file_params.update({name: files for name, op in ops.items() if (files := op.signature.file_params())})
        return _file_params

    def __getitem__(self, name: str) -> tuple[str, ...]:
        return self._table()[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._table())

    def __len__(self) -> int:
        return len(self._table())


#: Parameters that name a project file, per op (read from the declarations).
FILE_PARAMS: Mapping[str, tuple[str, ...]] = _FileParams()


def normalise_post_entry(entry: str | Mapping[str, Any], *, check: bool = False) -> PostOp:
    """Turn a manifest ``post:`` entry (``- trim`` or ``- resize: {size: 32}``) into a ``PostOp``.

    Defaults are filled in and equivalent spellings unified, so the post key sees complete params.
    Raises ``ValueError`` for an unknown op or a malformed entry; values are checked by ``check_params``,
    or here with ``check`` (which spares completing the params twice).
    """
    ops = load_ops()
    if isinstance(entry, str):
        name, raw = entry, None
    elif isinstance(entry, Mapping) and len(entry) == 1:
        ((name, raw),) = entry.items()
    else:
        raise ValueError(
            "a post step is an op name (e.g. '- trim') or a mapping with exactly one key, the op name "
            "(e.g. '- resize: {size: 32}')"
        )
    definition = ops.get(str(name))
    if definition is None:
        known = ", ".join(sorted(ops))
        raise ValueError(f"unknown post-processing op '{name}' (known ops: {known})")
    if raw is None:
        raw = {}
    if not isinstance(raw, Mapping):
        raise ValueError(f"the parameters of op '{name}' must be a mapping, got {raw!r}")
    params = _complete(definition, raw)
    if check:
        _check_complete(definition, params)
    return PostOp(definition.name, params)


def _complete(definition: OpDef, params: Mapping[str, Any]) -> dict[str, Any]:
    """``params`` with the op's defaults filled in and its spellings unified (idempotent)."""
    complete = definition.signature.complete(params)
    if definition.normalise is not None:
        complete = definition.normalise(complete)
    return complete


def check_params(op: PostOp) -> None:
    """Raise ``ValueError`` (with a user-facing message) when ``op``'s params make no sense.

    Params need not be normalised: defaults are filled in before checking.
    """
    ops = load_ops()
    definition = ops.get(op.op)
    if definition is None:
        raise ValueError(f"unknown post-processing op '{op.op}'")
    _check_complete(definition, _complete(definition, op.params))


def _check_complete(definition: OpDef, params: Mapping[str, Any]) -> None:
    """Check completed ``params`` against the declarations, then the op's semantic check."""
    definition.signature.check(params)
    if definition.check is not None:
        definition.check(params)


def is_bare(definition: OpDef) -> bool:
    """Whether the op may be written by its name alone: its defaults alone pass every check."""
    try:
        check_params(PostOp(definition.name, {}))
    except ValueError:
        return False
    return True


def check_files(op: PostOp, read_file: Callable[[str], bytes]) -> None:
    """Validate the project files ``op`` names (``FILE_PARAMS``), e.g. parse a palette file, so that a
    malformed file is reported when the manifest is checked; raises ``ManifestError`` (file:line)."""
    definition = load_ops().get(op.op)
    if definition is not None and definition.check_files is not None:
        definition.check_files(op.params, read_file)


#: What to change when an op leaves a frame empty or a single pixel, per op.
_DEGENERATE_HINTS: Mapping[str, str] = {
    "remove_background": "lower 'tolerance', give the background 'color', or use mode: flood",
    "pixelate": "set 'min_cell' and 'max_cell' around the art's cell size, or give 'size'",
    "resize": "give a larger 'size'",
    "canvas": "give a larger 'size'",
    "trim": "check the ops before it: the frame had no visible pixel",
}


def _visible(frame: Image.Image) -> bool:
    """Whether any pixel of the RGBA ``frame`` has alpha above 0."""
    return frame.getchannel("A").getbbox() is not None


def check_not_degenerate(
    before: Sequence[Image.Image], after: Sequence[Image.Image], op: str, params: Mapping[str, Any]
) -> None:
    """Raise ``PostError`` if ``op`` turned a frame with visible pixels into one with none, or a frame
    of several pixels into a single one (unless its ``size`` asks for that): a build must not write
    such a sprite as a success."""
    from pixelbuild.errors import PostError

    hint = _DEGENERATE_HINTS.get(op, f"check the parameters of '{op}'")
    if len(before) == len(after):
        pairs = list(zip(before, after, strict=True))
    else:  # an op that changes the frame count: judge its output as a whole
        pairs = [(before[0], frame) for frame in after]
    many = len(after) > 1
    for index, (source, result) in enumerate(pairs):
        which = f"frame {index + 1}" if many else "the image"
        if result.width * result.height == 0:
            raise PostError(f"{op} left {which} with no pixels; {hint}")
        shrunk = result.width * result.height == 1 < source.width * source.height
        # trim only crops to what is visible: a one-pixel result means one pixel was left before it.
        if shrunk and op != "trim" and params.get("size") != [1, 1]:
            raise PostError(f"{op} reduced {which} to a single pixel ({source.width}x{source.height} before); {hint}")
        if not _visible(result) and _visible(source):
            raise PostError(f"{op} left no visible pixel in {which}; {hint}")


def apply_chain(frames: Sequence[Image.Image], chain: Sequence[PostOp], ctx: PostContext) -> list[Image.Image]:
    """Run ``chain`` over ``frames`` (converted to RGBA first) and return the resulting frames.

    An op that empties a frame (no visible pixel left) or shrinks it to one pixel raises ``PostError``
    naming the op and the parameter to change.
    """
    ops = load_ops()
    current = [frame if frame.mode == "RGBA" else frame.convert("RGBA") for frame in frames]
    for step in chain:
        result = ops[step.op].function(current, step.params, ctx)
        check_not_degenerate(current, result, step.op, step.params)
        current = result
    if current and not any(_visible(frame) for frame in current):
        from pixelbuild.errors import PostError

        raise PostError("the sprite has no visible pixel: its generated frames are fully transparent")
    return current
