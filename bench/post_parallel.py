"""Post-processing throughput of whole builds: ``-j 1`` against ``-j 2`` (and more), in the same run.

    python bench/post_parallel.py [--sprites 1000] [--size 512] [--jobs 1 2] [--rounds 2]

Builds N placeholder sprites once (their raw generations are then cached), then times builds in which
only the post chain changed, so each build post-processes all N sprites from the cache and calls no
generator: a full typical chain (auto pixelate, 16-colour palette, background removal, trim, outline,
PNG). Each round uses fresh chain parameters, so nothing comes from the post cache. Prints seconds per
build, sprites per second and the speed-up over -j 1 (target: >= 1.8x with -j 2 on 2 cores), the ratio of
each round on its own (its builds ran back to back, under the same load), and the CPU seconds each build
took in all its processes: what -j 2 spends beyond -j 1 is the cost of running in parallel.

With ``--plain`` each round also times the bare function on the same sprites: ``post_process`` in a loop
against a plain 2-process pool (``ProcessPoolExecutor.map``, no build around it). That ratio is the
ceiling under the machine's load at that moment; a build's ratio near it means the build adds little
serial work. On a busy machine (load above the core count) neither reaches 2x.
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

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

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


def plain(root: Path, workers: int, scratch: Path) -> float:
    """Seconds to post-process every sprite of the project at ``root`` with the bare function: in this
    process when ``workers`` is 1, else in a plain pool of that many processes (started before timing)."""
    from concurrent.futures import ProcessPoolExecutor

    from pixelbuild.execute.worker import PostJob, post_process
    from pixelbuild.fsguard import OutputGuard
    from pixelbuild.local.layout import ProjectPaths
    from pixelbuild.post import load_ops
    from pixelbuild.project import open_session

    load_ops()  # imported before timing (and before the pool forks), as a build has it
    guard = OutputGuard(str(scratch))

    session = open_session(ProjectPaths.for_manifest(root / "pixelbuild.yaml"))
    jobs = [
        PostJob(
            store_root=str(session.store.root),
            generation_keys=session.keys[sprite.id].generations,
            chain=sprite.post,
            layout=sprite.layout,
            project_dir=str(root),
            post_key=session.keys[sprite.id].post,
            guard=guard,
            output=f"{sprite.id}.png",
        )
        for sprite in session.resolved.sprites
    ]
    if workers == 1:
        started = time.perf_counter()
        for job in jobs:
            post_process(job)
        return time.perf_counter() - started
    with ProcessPoolExecutor(workers) as pool:
        list(pool.map(abs, range(workers)))
        started = time.perf_counter()
        list(pool.map(post_process, jobs, chunksize=8))
        return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sprites", type=int, default=1000)
    parser.add_argument("--size", type=int, default=512, help="generated image size (default 512)")
    parser.add_argument("--jobs", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--rounds", type=int, default=2, help="timed builds per -j value (median is shown)")
    parser.add_argument("--plain", action="store_true", help="also time the bare function, in a loop and a pool")
    args = parser.parse_args()

    root = Path(tempfile.mkdtemp(prefix="pixelbuild-post-"))
    try:
        (root / "pixelbuild.yaml").write_text(manifest(args.sprites, args.size, 0x181425))
        seconds, _cpu, report = build(root, max(args.jobs))
        print(f"{args.sprites} sprites at {args.size}px: first build (generate + post) {seconds:.1f} s")
        times: dict[int, list[float]] = {jobs: [] for jobs in args.jobs}
        cpu: dict[int, list[float]] = {jobs: [] for jobs in args.jobs}
        bare: dict[int, list[float]] = {jobs: [] for jobs in args.jobs}
        outline = 0x181426
        for _round in range(args.rounds):
            for jobs in args.jobs:  # interleaved, so load changes on the machine hit every -j alike
                (root / "pixelbuild.yaml").write_text(manifest(args.sprites, args.size, outline))
                outline += 1
                seconds, used, report = build(root, jobs)
                assert report["generator_calls"] == 0 and report["post_processed"] == args.sprites, report
                times[jobs].append(seconds)
                cpu[jobs].append(used)
            for jobs in args.jobs if args.plain else ():
                (root / "pixelbuild.yaml").write_text(manifest(args.sprites, args.size, outline))
                outline += 1  # a chain no build has cached
                scratch = Path(tempfile.mkdtemp(prefix="plain-", dir=root))
                bare[jobs].append(plain(root, jobs, scratch))
                shutil.rmtree(scratch)
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
            if args.plain:
                rounds = [first / other for first, other in zip(bare[args.jobs[0]], bare[jobs], strict=True)]
                print(
                    f"plain function, {jobs} processes against a loop, per round: "
                    f"{', '.join(f'{ratio:.2f}x' for ratio in rounds)} "
                    f"(loop {statistics.median(bare[args.jobs[0]]):.2f} s, pool {statistics.median(bare[jobs]):.2f} s)"
                )
        load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
        print(f"machine: {os.cpu_count()} cores, load {load}; target: -j 2 at least 1.8x faster than -j 1")
    finally:
        shutil.rmtree(root)


if __name__ == "__main__":
    main()
