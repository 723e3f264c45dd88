"""The remote cache at 1,000 sprites: pull from a real S3-compatible server (moto's standalone server as its
own process on 127.0.0.1, through the same client as users), against copying the same files locally,
measured in the same run.

    python bench/remote.py [--sprites 1000] [--runs 3] [--transfers N]

Builds a project of N sprites once (placeholder backend, no remote), pushes its lock's stages (raw
generations and post-processed outputs: 2 per sprite) to a fresh prefix, then, each run:

* *copy*: the same files (every record and blob of the local cache) copied one by one into an empty
  folder: the floor of any transfer that writes them one by one;
* *pull*: ``pixelbuild pull`` into a fresh clone (the lock only) from the moto server, in-process,
  at the default concurrency: time, ratio to the copy, download throughput;
* *push*: the same stages to a fresh prefix: upload throughput.

Prints the medians, each run's figures and the load average (the machine is shared: read ratios).
Then checks the pulled clone builds with no generator call (a build with the generator off).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from pixelbuild.builder import BuildOptions, build
from pixelbuild.local.layout import ProjectPaths
from pixelbuild.local.store import Store
from pixelbuild.project import read_current_lock
from pixelbuild.remote import sync
from pixelbuild.remote.config import DEFAULT_TRANSFERS, RemoteConfig
from pixelbuild.testing.s3server import environment, s3_server

BUCKET = "bench"


def write_project(root: Path, sprites: int) -> None:
    """A manifest of ``sprites`` sprites (64 px generations, 32 px outputs)."""
    root.mkdir(parents=True)
    lines = [
        "version: 1",
        "project: {output: assets}",
        "defaults:",
        "  size: 64",
        "  post: [{resize: {size: 32, filter: box}}]",
        "sprites:",
    ]
    lines += [f"  - {{id: s{index:05d}, prompt: bench sprite {index}}}" for index in range(sprites)]
    (root / "pixelbuild.yaml").write_text("\n".join(lines) + "\n")


def cache_files(cache: Path) -> list[Path]:
    """Every file of a local cache."""
    return [path for path in cache.rglob("*") if path.is_file()]


def copy_files(files: list[Path], source: Path, target: Path) -> float:
    """Copy ``files`` (under ``source``) one by one into ``target``; seconds taken."""
    started = time.perf_counter()
    made: set[Path] = set()
    for path in files:
        destination = target / path.relative_to(source)
        if destination.parent not in made:
            destination.parent.mkdir(parents=True, exist_ok=True)
            made.add(destination.parent)
        shutil.copyfile(path, destination)
    return time.perf_counter() - started


def fresh_clone(source: Path, target: Path) -> Path:
    """The manifest and the lock of ``source`` in ``target`` (no assets, no cache)."""
    target.mkdir(parents=True)
    for name in ("pixelbuild.yaml", "pixelbuild.lock"):
        shutil.copyfile(source / name, target / name)
    return target


def main() -> int:
    """Run the benchmark; print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sprites", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--transfers", type=int, default=DEFAULT_TRANSFERS)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="pixelbuild-bench-remote-") as temporary, s3_server(process=True) as server:
        server.create_bucket(BUCKET)
        work = Path(temporary)
        origin = work / "origin"
        write_project(origin, args.sprites)
        started = time.perf_counter()
        report = build(origin / "pixelbuild.yaml", BuildOptions(jobs=os.cpu_count() or 1, no_remote=True))
        assert report.ok, report.failures
        print(f"built {args.sprites} sprites in {time.perf_counter() - started:.1f}s (not timed below)")
        paths = ProjectPaths.for_manifest(origin / "pixelbuild.yaml")
        stages = sync.lock_stages(read_current_lock(paths))
        files = cache_files(paths.cache)
        size = sum(path.stat().st_size for path in files)
        print(f"{len(stages)} stages, {len(files)} files, {size / 1e6:.1f} MB; {args.transfers} transfers in flight")

        copies, pulls, pushes, down, up = [], [], [], [], []
        with environment(server.env):
            first = RemoteConfig(f"s3://{BUCKET}/seed", transfers=args.transfers)
            seeded = sync.push(first, Store(paths.cache), stages)
            assert seeded.failed == 0 and seeded.missing == 0, seeded
            for run in range(args.runs):
                copies.append(copy_files(files, paths.cache, work / f"copy{run}"))
                clone = fresh_clone(origin, work / f"clone{run}")
                clone_paths = ProjectPaths.for_manifest(clone / "pixelbuild.yaml")
                clone_paths.check_state()
                pulled = sync.pull(first, Store(clone_paths.cache), stages)
                assert pulled.done == len(stages), pulled
                pulls.append(pulled.seconds)
                down.append(pulled.bytes / pulled.seconds)
                target = RemoteConfig(f"s3://{BUCKET}/push{run}", transfers=args.transfers)
                pushed = sync.push(target, Store(paths.cache), stages)
                assert pushed.done == len(stages), pushed
                pushes.append(pushed.seconds)
                up.append(pushed.bytes / pushed.seconds)
                load = os.getloadavg()[0]
                print(
                    f"run {run + 1}: copy {copies[-1]:.3f}s, pull {pulls[-1]:.3f}s "
                    f"({pulls[-1] / copies[-1]:.1f}x copy, {down[-1] / 1e6:.1f} MB/s, "
                    f"{len(stages) / pulls[-1]:.0f} stages/s), push {pushes[-1]:.3f}s ({up[-1] / 1e6:.1f} MB/s, "
                    f"{len(stages) / pushes[-1]:.0f} stages/s); load {load:.1f}"
                )
        check = build(clone / "pixelbuild.yaml", BuildOptions(no_remote=True, backend_factory=_no_generator))
        assert check.ok and check.generator_calls == 0, check.failures

    copy, pull, push = statistics.median(copies), statistics.median(pulls), statistics.median(pushes)
    print(
        f"median of {args.runs}: pull of {args.sprites} sprites {pull:.2f}s = {pull / copy:.1f}x a local copy of the "
        f"same files ({copy:.3f}s); download {statistics.median(down) / 1e6:.1f} MB/s, "
        f"upload {statistics.median(up) / 1e6:.1f} MB/s ({len(stages) / push:.0f} stages/s)"
    )
    print(f"the pulled clone built with 0 generator calls ({check.restored} restored)")
    return 0


def _no_generator(request: object) -> object:
    raise AssertionError("the pulled clone must not need the generator")


if __name__ == "__main__":
    sys.exit(main())
