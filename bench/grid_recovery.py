"""Grid recovery on real pixel art degraded as diffusion models draw it: pixelbuild beside its peers.

Run from the repository root: ``python bench/grid_recovery.py [--quick] [--tools a,b]``. The 21
sprites of ``tests/fixtures/pixelart`` (real art from the ``pyxel`` and ``arcade`` packages, see the
README there) are each drawn at a non-integer scale with a partial cell cut off every side, then
degraded (blur, noise, colour shift, JPEG, JPEG with the grid on the 8x8 blocks, all together; see
``pixelbuild/testing/degrade.py``). Inputs without a grid: the clean originals (1:1), uniform noise, and
smooth photo-like noise, also as a JPEG. Each tool turns each input into its pixel art; the table
gives per degradation:

* cell err: median relative error of the effective cell size (input side / output side) against the
  truth (grid inputs only);
* size ok: outputs of exactly the original's size;
* colour ok: share of pixels whose nearest (shifted) original colour is the right one, over the
  outputs of the right size;
* no-grid ok: inputs without a grid left at their size (1:1 art also pixel for pixel unchanged);
* ms/call: median over inputs of the fastest of ``--repeats`` calls, on this process's one core.

Peers (``proper-pixel-art``, ``unfake``, ``ai2pixelart``) run when installed (``pip install
proper-pixel-art unfake ai2pixelart``; they are not project dependencies) and are skipped otherwise.
No assertions: the test slice is ``tests/post/test_grid_recovery.py``.
"""

from __future__ import annotations

import os

for _variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")

import argparse  # noqa: E402
import asyncio  # noqa: E402
import contextlib  # noqa: E402
import io  # noqa: E402
import logging  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
import zlib  # noqa: E402
from collections.abc import Callable  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pixelbuild.post import PostContext, load_ops, normalise_post_entry  # noqa: E402
from pixelbuild.testing.degrade import (  # noqa: E402
    DEGRADATIONS,
    Case,
    clean,
    colour_class_accuracy,
    degrade,
    load_sprites,
    noise_cases,
)

Tool = Callable[[Image.Image], Image.Image]


def pixelbuild_tool() -> Tool:
    """pixelbuild's ``pixelate`` op with its defaults (``mode: auto``)."""
    step = normalise_post_entry("pixelate")
    function = load_ops()["pixelate"].function
    context = PostContext(read_file=lambda ref: b"")

    def run(image: Image.Image) -> Image.Image:
        return function([image], step.params, context)[0]

    return run


def proper_pixel_art_tool() -> Tool | None:
    """proper-pixel-art's ``pixelate`` with its defaults."""
    try:
        from proper_pixel_art import pixelate
    except ImportError:
        return None
    return lambda image: pixelate(image).image


def unfake_tool() -> Tool | None:
    """unfake's ``process_image`` with its defaults (automatic scale and colour count)."""
    try:
        from unfake.pixel import process_image
    except ImportError:
        return None
    logging.getLogger("unfake").setLevel(logging.ERROR)
    logging.getLogger("unfake.pixel").setLevel(logging.ERROR)

    def run(image: Image.Image) -> Image.Image:
        result = asyncio.run(process_image(image.convert("RGBA")))
        output = result["image"]
        return output if isinstance(output, Image.Image) else Image.fromarray(np.asarray(output))

    return run


def ai2pixelart_tool() -> Tool | None:
    """ai2pixelart's ``clean`` with its defaults."""
    try:
        from ai2pixelart.pipeline import clean as ai_clean
    except ImportError:
        return None
    return lambda image: Image.fromarray(ai_clean(np.asarray(image.convert("RGB"))).image)


def cases(quick: bool) -> list[Case]:
    """Every input: each sprite under each degradation, the clean sprites, the noise images."""
    sprites = load_sprites(Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "pixelart")
    if quick:
        sprites = dict(list(sprites.items())[::3])
    result = []
    for name, sprite in sprites.items():
        for degradation in DEGRADATIONS:
            result.append(degrade(name, sprite, degradation, zlib.crc32(f"{name}/{degradation}".encode())))
        result.append(clean(name, sprite))
    return result + noise_cases()


def evaluate(tool: Tool, case: Case, repeats: int = 1) -> tuple[dict[str, float], float]:
    """Run ``tool`` on ``case``: its scores and the time taken (the least of ``repeats`` runs)."""
    with (
        warnings.catch_warnings(),
        contextlib.redirect_stdout(io.StringIO()),
        contextlib.redirect_stderr(io.StringIO()),
    ):
        warnings.simplefilter("ignore")
        elapsed = float("inf")
        for _ in range(repeats):
            start = time.perf_counter()
            try:
                output = tool(case.image)
            except Exception:  # a peer crashing on an input counts as a miss
                return {"crashed": 1.0}, time.perf_counter() - start
            elapsed = min(elapsed, time.perf_counter() - start)
    width, height = case.image.size
    scores: dict[str, float] = {}
    if case.scale:
        true_cell = (width / case.original.shape[1] + height / case.original.shape[0]) / 2
        cell = (width / output.width + height / output.height) / 2
        scores["cell_error"] = abs(cell - true_cell) / true_cell
        right = (output.width, output.height) == (case.original.shape[1], case.original.shape[0])
        scores["size_ok"] = float(right)
        if right:
            scores["colour_ok"] = colour_class_accuracy(np.asarray(output.convert("RGB")), case)
    else:
        unchanged = output.size == case.image.size
        if unchanged and case.degradation == "1:1 clean":
            unchanged = np.array_equal(np.asarray(output.convert("RGB")), case.original)
        scores["no_grid_ok"] = float(unchanged)
    return scores, elapsed


def main() -> None:
    """Run every available tool on every input and print one table per tool."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a third of the sprites")
    parser.add_argument("--tools", default="", help="comma-separated subset of the tool names")
    parser.add_argument("--repeats", type=int, default=3, help="runs per input; the fastest is timed")
    args = parser.parse_args()
    factories: dict[str, Callable[[], Tool | None]] = {
        "pixelbuild": pixelbuild_tool,
        "proper-pixel-art": proper_pixel_art_tool,
        "unfake": unfake_tool,
        "ai2pixelart": ai2pixelart_tool,
    }
    wanted = [name for name in args.tools.split(",") if name] or list(factories)
    inputs = cases(args.quick)
    groups = list(dict.fromkeys(case.degradation for case in inputs))
    with_grid = sum(1 for case in inputs if case.scale)
    print(f"{len(inputs)} inputs ({with_grid} with a grid); timing: fastest of {args.repeats}\n")
    header = f"{'tool':<17} {'degradation':<13} {'n':>3} {'cell err':>9} {'size ok':>9} {'colour ok':>9} "
    header += f"{'no-grid ok':>10} {'ms/call':>8}"
    print(header)
    for name in wanted:
        factory = factories.get(name)
        tool = factory() if factory else None
        if tool is None:
            print(f"{name:<17} skipped: not installed")
            continue
        everything: list[tuple[dict[str, float], float]] = []
        for group in [*groups, "ALL"]:
            if group == "ALL":
                results = everything
            else:
                results = [evaluate(tool, case, args.repeats) for case in inputs if case.degradation == group]
                everything.extend(results)
            print(row(name, group, [scores for scores, _ in results], [elapsed for _, elapsed in results]))
        print()


def row(name: str, group: str, scored: list[dict[str, float]], times: list[float]) -> str:
    """One table line."""

    def values(key: str) -> list[float]:
        return [scores[key] for scores in scored if key in scores]

    cell, size, colour, none = values("cell_error"), values("size_ok"), values("colour_ok"), values("no_grid_ok")
    crashed = sum(1 for scores in scored if "crashed" in scores)
    grid_inputs = len(cell) + (crashed if group not in ("1:1 clean", "pure noise") else 0)
    cell_text = f"{100 * statistics.median(cell):7.2f} %" if cell else "-"
    size_text = f"{int(sum(size))}/{grid_inputs}" if grid_inputs else "-"
    colour_text = f"{100 * statistics.mean(colour):7.1f} %" if colour else "-"
    no_grid = len(none) + (crashed if group in ("1:1 clean", "pure noise") else 0)
    none_text = f"{int(sum(none))}/{no_grid}" if no_grid else "-"
    line = f"{name:<17} {group:<13} {len(scored):>3} {cell_text:>9} {size_text:>9} {colour_text:>9} {none_text:>10}"
    line += f" {1e3 * statistics.median(times):8.1f}"
    return line + (f"  ({crashed} crashed)" if crashed else "")


if __name__ == "__main__":
    main()
