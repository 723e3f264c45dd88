"""Checking and normalising post chains, as validation does for 10,000 sprites, against a baseline.

    python bench/post_params.py [--sprites 10000] [--runs 7]

Each sprite has its own chain (three ops drawn from a fixed list of representative entries, as a
manifest that writes ``post:`` per sprite has), so nothing is shared between sprites. Prints the median
time of ``normalise_post_entry`` + ``check_params`` over all chains, per op, and its ratio to a baseline
measured in the same run: the canonical JSON of the same raw entries (the least that reads every param).
Run it against another checkout with ``PYTHONPATH=that/checkout`` to compare versions.
"""

from __future__ import annotations

import argparse
import copy
import inspect
import random
import statistics
import time
from typing import Any

from pixelbuild.hashing import canonical_json
from pixelbuild.post import check_params, load_ops, normalise_post_entry
from pixelbuild.spec import PostOp

ENTRIES: list[Any] = [
    "trim",
    "pixelate",
    "outline",
    {"resize": {"size": 16, "filter": "box"}},
    {"pixelate": {"size": 32, "mode": "box"}},
    {"pixelate": {"max_size": 64, "min_cell": 4.5, "square": False}},
    {"palette": {"colors": 16}},
    {"palette": {"preset": "pico-8", "dither": "ordered"}},
    {"palette": {"colors": ["#000000", [255, 255, 255], "#ff000080"]}},
    {"remove_background": {"mode": "key", "color": "#00ff00", "tolerance": 12, "cleanup": True}},
    {"remove_background": {"mode": "alpha"}},
    {"pad": {"amount": 2, "fill": "#ffffff"}},
    {"canvas": {"size": [32, 48], "anchor": "bottom-center"}},
    {"outline": {"color": [0, 0, 0], "mode": "inner"}},
    {"scale": {"factor": 4}},
    {"rotate": {"angle": 90}},
]


#: Whether this version normalises and checks in one call (older ones: normalise, then check_params).
_ONE_CALL = "check" in inspect.signature(normalise_post_entry).parameters


def validate(entry: Any) -> PostOp:
    """What the resolver does with one ``post:`` entry."""
    if _ONE_CALL:
        return normalise_post_entry(entry, check=True)
    op = normalise_post_entry(entry)
    check_params(op)
    return op


def chains(sprites: int) -> list[list[Any]]:
    """One fresh chain of three entries per sprite (deep copies: no object is shared)."""
    rng = random.Random(1)
    return [copy.deepcopy(rng.sample(ENTRIES, 3)) for _ in range(sprites)]


def main() -> None:
    """Print the figures."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sprites", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    load_ops()
    work = chains(args.sprites)
    ops = sum(len(chain) for chain in work)
    checks, baselines = [], []
    for _ in range(args.runs):
        started = time.perf_counter()
        for chain in work:
            for entry in chain:
                validate(entry)
        checks.append(time.perf_counter() - started)
        started = time.perf_counter()
        for chain in work:
            canonical_json(chain)
        baselines.append(time.perf_counter() - started)
    check, baseline = statistics.median(checks), statistics.median(baselines)
    print(f"{args.sprites:,} sprites, {ops:,} ops, median of {args.runs} runs")
    print(f"  normalise + check: {check * 1000:8.1f} ms  ({check / ops * 1e6:.2f} us per op)")
    print(f"  baseline (canonical JSON of the raw chains): {baseline * 1000:8.1f} ms")
    print(f"  ratio to baseline: {check / baseline:.2f}x")


if __name__ == "__main__":
    main()
