"""Post-processing throughput of whole builds: ``-j 1`` against ``-j 2`` (and more), in the same run.

    python bench/post_parallel.py [--sprites 1000] [--size 512] [--jobs 1 2] [--rounds 2]

Builds N placeholder sprites once (their raw generations are then cached), then times builds in which
only the post chain changed, so each build post-processes all N sprites from the cache and calls no
generator: a full typical chain (auto pixelate, 16-colour palette, background removal, trim, outline,
PNG). Each round uses fresh chain parameters, so nothing comes from the post cache. Prints seconds per
build, sprites per second and the speed-up over -j 1 (target: >= 1.8x with -j 2 on 2 cores), the ratio of
each round on its own (its builds ran back to back, under the same load), and the CPU seconds each build
took in all its processes: what -j 2 spends beyond -j 1 is the cost of running in parallel, a figure the
machine's load hardly moves.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

_SCRIPT = Path(sys.executable).with_name("pixelbuild")
PIXELBUILD = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "pixelbuild"]

CHAIN = """\
  post:
    - pixelate
    - remove_background: {{mode: flood, tolerance: 24}}
    - palette: {{colors: 16}}
    - trim
    - outline: {{color: "#{outline:06x}"}}
"""


def manifest(sprites: int, size: int, outline: int) -> str:
    """A manifest of ``sprites`` sprites whose post chain differs by ``outline`` colour only."""
    kinds = ["slime", "knight", "bat", "coin", "potion", "wizard", "beast", "gem"]
    colours = ["red", "blue", "green", "gold", "purple", "orange", "teal", "pink"]
    body = f"version: 1\ndefaults:\n  size: {size}\n" + CHAIN.format(outline=outline) + "sprites:\n"
    body += "".join(
        f"  - id: s{i:04d}\n    prompt: pixel art {colours[i % 8]} {kinds[(i // 8) % 8]} {i}\n" for i in range(sprites)
    )
    return body


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def build(root: Path, jobs: int) -> tuple[float, float, dict[str, object]]:
    """Run one build; return its wall time, the CPU time of its processes (workers too) and its --json report."""
    cpu = _children_cpu()
    started = time.perf_counter()
    done = subprocess.run(
        [*PIXELBUILD, "build", "-C", str(root), "-j", str(jobs), "--json"], capture_output=True, text=True
    )
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(done.stdout + done.stderr)
    report: dict[str, object] = json.loads(done.stdout)
    return elapsed, _children_cpu() - cpu, report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sprites", type=int, default=1000)
    parser.add_argument("--size", type=int, default=512, help="generated image size (default 512)")
    parser.add_argument("--jobs", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--rounds", type=int, default=2, help="timed builds per -j value (median is shown)")
    args = parser.parse_args()

    root = Path(tempfile.mkdtemp(prefix="pixelbuild-post-"))
    try:
        (root / "pixelbuild.yaml").write_text(manifest(args.sprites, args.size, 0x181425))
        seconds, _cpu, report = build(root, max(args.jobs))
        print(f"{args.sprites} sprites at {args.size}px: first build (generate + post) {seconds:.1f} s")
        times: dict[int, list[float]] = {jobs: [] for jobs in args.jobs}
        cpu: dict[int, list[float]] = {jobs: [] for jobs in args.jobs}
        outline = 0x181426
        for _round in range(args.rounds):
            for jobs in args.jobs:  # interleaved, so load changes on the machine hit every -j alike
                (root / "pixelbuild.yaml").write_text(manifest(args.sprites, args.size, outline))
                outline += 1
                seconds, used, report = build(root, jobs)
                assert report["generator_calls"] == 0 and report["post_processed"] == args.sprites, report
                times[jobs].append(seconds)
                cpu[jobs].append(used)
        base = statistics.median(times[args.jobs[0]])
        for jobs in args.jobs:
            median = statistics.median(times[jobs])
            print(
                f"-j {jobs}: {median:.2f} s per build ({args.sprites / median:.0f} sprites/s), "
                f"{base / median:.2f}x the -j {args.jobs[0]} time "
                f"(runs: {', '.join(f'{t:.2f}' for t in times[jobs])}); CPU {statistics.median(cpu[jobs]):.2f} s"
            )
        for jobs in args.jobs[1:]:
            rounds = [first / other for first, other in zip(times[args.jobs[0]], times[jobs], strict=True)]
            print(f"-j {jobs} per round: {', '.join(f'{ratio:.2f}x' for ratio in rounds)}")
        load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
        print(f"machine: {os.cpu_count()} cores, load {load}; target: -j 2 at least 1.8x faster than -j 1")
    finally:
        shutil.rmtree(root)


if __name__ == "__main__":
    main()
