"""Time Floyd-Steinberg dithering at 256x256 and 1024x1024, next to plain palette mapping.

Run from the repository root: ``python bench/dither.py [--runs N]``. It prints, with no assertions,
the median time per image of ``map_to_palette`` with ``dither: floyd-steinberg`` and with no dither
(the baseline, measured in the same run) onto the 16-colour PICO-8 palette, for a colour gradient
with noise (every pixel a distinct colour, the worst case for per-colour caches).
"""

from __future__ import annotations

import os

for _variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")

import argparse  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from functools import partial  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pixelbuild.post.palette import map_to_palette  # noqa: E402
from pixelbuild.post.palette_files import BUILTIN_PALETTES  # noqa: E402


def image(side: int) -> np.ndarray:
    """An opaque RGB gradient with noise, ``side`` pixels square."""
    rng = np.random.default_rng(side)
    yy, xx = np.mgrid[0:side, 0:side] * (256 / side)
    pixels = np.stack([xx, yy, (xx + yy) / 2], axis=-1) + rng.normal(0, 8, (side, side, 3))
    alpha = np.full((side, side, 1), 255)
    return np.concatenate([np.clip(pixels, 0, 255), alpha], axis=-1).astype(np.uint8)


def median_time(function: Callable[[], object], runs: int) -> float:
    """Median wall time of ``runs`` calls, in seconds (after one warm-up call)."""
    function()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    """Print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    palette = np.array(BUILTIN_PALETTES["pico-8"], dtype=np.int64)
    print(f"{'size':>10} {'floyd-steinberg':>16} {'plain mapping':>14} {'ratio':>6}   ({args.runs} runs, median)")
    for side in (256, 1024):
        pixels = image(side)
        dither = median_time(partial(map_to_palette, pixels, palette, "floyd-steinberg"), args.runs)
        plain = median_time(partial(map_to_palette, pixels, palette, "none"), args.runs)
        label = f"{side}x{side}"
        print(f"{label:>10} {dither * 1e3:13.2f} ms {plain * 1e3:11.2f} ms {dither / plain:6.2f}")


if __name__ == "__main__":
    main()
