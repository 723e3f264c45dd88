"""Resource limits: the largest images, sprite counts and manifest files pixelbuild accepts.

Every value the schema allows must build in bounded memory, so a sprite's images are sized before any
op runs: the generation size times its frames, then each post op's largest possible output, then the
frame sheet. The limits come from what games ship (GPUs load textures up to 16,384 px a side) and are
far above what pixel art needs; past them a typo (``scale: {factor: 64}`` on a 8192 image) fails the
manifest check instead of exhausting a worker's memory.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import msgspec

#: Largest width or height of any image a sprite goes through, its frame sheet included.
MAX_SIDE = 16384
#: Largest number of pixels in all frames of a sprite at one step (one 8192x8192 frame, 256 MiB as RGBA).
MAX_PIXELS = 8192 * 8192
#: Sprites a manifest may expand to (matrices included) unless ``project.max_sprites`` says otherwise.
MAX_SPRITES = 100_000
#: YAML nodes one manifest file may hold once its aliases are expanded (a plain file of ~100,000
#: sprites has about 1.5 million): a few lines of nested aliases (an "alias bomb") can otherwise
#: stand for billions.
MAX_YAML_NODES = 2_000_000
#: Bytes of one manifest file.
MAX_MANIFEST_BYTES = 32 * 1024 * 1024

Size = tuple[int, int]
#: The largest output of an op for an input of the given size (an upper bound: ``trim`` may shrink).
SizeRule = Callable[[Mapping[str, Any], Size], Size]


class SizeProblem(msgspec.Struct, frozen=True):
    """An image of a sprite that would be too large: where it arises and why.

    ``step`` is the index of the post op that makes it, ``-1`` for the generated frames and
    ``len(chain)`` for the frame sheet.
    """

    step: int
    message: str


def _check(size: Size, frames: int, where: str, step: int) -> SizeProblem | None:
    width, height = size
    if width > MAX_SIDE or height > MAX_SIDE:
        return SizeProblem(
            step,
            f"{where} {'each frame is' if frames > 1 else 'the image is'} up to {width}x{height} pixels, over the "
            f"limit of {MAX_SIDE:,} pixels per side (see 'Limits' in the README)",
        )
    total = frames * width * height
    if total > MAX_PIXELS:
        each = f"{frames} frames of {width}x{height}" if frames > 1 else f"{width}x{height}"
        return SizeProblem(
            step,
            f"{where} the image{'s are' if frames > 1 else ' is'} up to {each} = {total:,} pixels, over the limit "
            f"of {MAX_PIXELS:,} pixels for all frames of a sprite at one step (see 'Limits' in the README)",
        )
    return None


def image_size_problem(
    size: Size,
    frames: int,
    chain: Sequence[tuple[str, Mapping[str, Any]]],
    rules: Mapping[str, SizeRule],
    sheet: Callable[[int, Size], Size],
) -> SizeProblem | None:
    """The first image of a sprite that would break a limit, or None.

    ``size`` is the generation size, ``frames`` the number of generated images, ``chain`` the post ops
    as (name, params), ``rules`` each op's size rule (an op without one keeps the size) and ``sheet``
    the size of the sheet laid out from ``frames`` frames of one size.
    """
    problem = _check(size, frames, "as generated", -1)
    if problem is not None:
        return problem
    for step, (name, params) in enumerate(chain):
        rule = rules.get(name)
        if rule is not None:
            size = rule(params, size)
        problem = _check(size, frames, f"after '{name}'", step)
        if problem is not None:
            return problem
    if frames > 1:
        return _check(sheet(frames, size), 1, "as a frame sheet", len(chain))
    return None
