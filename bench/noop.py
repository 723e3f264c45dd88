"""No-op and one-change build times for a large project, against the floor, measured in the same run.

    python bench/noop.py [--sprites 10000] [--files 100] [--runs 7] [--keep DIR]

Generates a manifest of N sprites split over F included files (~350 bytes of YAML per sprite), builds it
once with the placeholder backend, then prints:

* the *floor*: a whole Python process that hashes the manifest bytes, looks that digest up in the lock
  file and stats every output (the least any no-op check can do);
* the median no-op ``pixelbuild build`` (a fresh process each time) and its ratio to the floor
  (target: within 3x);
* the median one-change build (one sprite's prompt edited: one file re-parsed, one sprite generated), split
  into *the generation* (the seconds ``build --json`` reports in ``timings``: the backend producing the
  sprite and the post-processing chain, with the imports only they need, numpy and PIL among them) and *the
  rest* (the wall-clock time less the generation, per run: start-up, the build's own work; target: 300 ms);
  and where it goes: imports (``-X importtime`` summed over the top-level imports, lazy ones included, in
  extra runs of their own) against the rest, with the costliest top-level imports;
* a fresh clone (manifest, lock and assets only: no ``.pixelbuild/``, an empty per-user cache): the
  median ``pixelbuild check`` (target: 1.5 s at 10,000 sprites) and the ``build`` that follows it;
* the cost of parsing + validating the whole manifest as one file with the YAML loader in use;
* the one-change build's CPU time (user + system) beside its wall-clock time: other processes on a shared
  machine stretch the wall clock more than the CPU time;
* peak memory (max RSS) of the no-op and one-change processes (target: under 150 MB);
* the load average before and after (the machine is shared: read every figure beside it).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

# The console script, as users run it (python -m would add runpy's start-up to every figure).
_SCRIPT = Path(sys.executable).with_name("pixelbuild")
PIXELBUILD = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "pixelbuild"]
# As users run it: with bytecode caching (a shell that sets PYTHONDONTWRITEBYTECODE makes every process
# compile pixelbuild again, ~0.3 s that no user pays).
_ENV = {name: value for name, value in os.environ.items() if name != "PYTHONDONTWRITEBYTECODE"}

FLOOR_SCRIPT = textwrap.dedent(
    """
    import os, sys, xxhash
    root = sys.argv[1]
    digest = xxhash.xxh3_128()
    manifests = [os.path.join(root, "pixelbuild.yaml")]
    parts = os.path.join(root, "sprites")
    manifests += sorted(os.path.join(parts, name) for name in os.listdir(parts))
    for path in manifests:
        with open(path, "rb") as handle:
            digest.update(handle.read())
    with open(os.path.join(root, "pixelbuild.lock"), "rb") as handle:
        lock = handle.read()
    lock.find(digest.hexdigest().encode())
    outputs = os.path.join(root, "assets")
    for folder, _dirs, files in os.walk(outputs):
        for name in files:
            os.stat(os.path.join(folder, name))
    """
)


def write_project(root: Path, sprites: int, files: int) -> None:
    """A manifest of ``sprites`` sprites over ``files`` included files."""
    (root / "sprites").mkdir(parents=True)
    (root / "pixelbuild.yaml").write_text(
        textwrap.dedent(
            """\
            version: 1
            project:
              output: assets
              backend: placeholder
            include: [sprites/*.yaml]
            defaults:
              size: 32
              negative_prompt: blurry, photo, 3d render, text, watermark, jpeg artifacts
              steps: 20
              cfg: 7.5
              checkpoint: sd_xl_base_1.0.safetensors
              post:
                - resize: {size: 16, filter: box}
            """
        )
    )
    per_file = (sprites + files - 1) // files
    colours = ["red", "blue", "green", "gold", "purple", "orange", "teal", "pink"]
    kinds = ["slime", "knight", "bat", "coin", "potion", "wizard", "beast", "gem"]
    for part in range(files):
        lines = ["sprites:"]
        for index in range(part * per_file, min(sprites, (part + 1) * per_file)):
            colour, kind = colours[index % 8], kinds[(index // 8) % 8]
            lines += [
                f"  - id: set{part:03d}/{kind}_{index:05d}",
                f"    prompt: pixel art {colour} {kind}, 16-bit game sprite, side view, clean outline, number {index}",
                f"    seed: {index * 7919 % 100000}",
                "    loras:",
                f"      - {{name: pixel-art-xl.safetensors, weight: {0.5 + (index % 5) / 10}}}",
                "    post:",
                f"      - resize: {{size: {16 + (index % 3) * 8}, filter: box}}",
            ]
        (root / "sprites" / f"part{part:03d}.yaml").write_text("\n".join(lines) + "\n")


def timed(
    command: list[str], cwd: Path | None = None, env: dict[str, str] | None = None, cpu: list[float] | None = None
) -> tuple[float, int, str]:
    """Run ``command``; return (seconds, max RSS in MB, stdout); append its CPU seconds (user + system) to
    ``cpu``: a figure the other processes on a shared machine disturb less than the wall-clock time."""
    started = time.perf_counter()
    process = subprocess.Popen(command, cwd=cwd, env=env or _ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    _pid, status, usage = os.wait4(process.pid, 0)
    elapsed = time.perf_counter() - started
    out = process.stdout.read().decode() if process.stdout else ""
    err = process.stderr.read().decode() if process.stderr else ""
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{out}\n{err}")
    if cpu is not None:
        cpu.append(usage.ru_utime + usage.ru_stime)
    return elapsed, usage.ru_maxrss // 1024, out


def generation_seconds(document: dict[str, Any]) -> float:
    """The seconds a build's report gives the generation: the generator backend and post-processing (atlas
    packing, the other stage it times, is not the generation's)."""
    timings = document["timings"]
    return float(timings["generating"] + timings["post_processing"])


#: Top-level imports that only the generation and post-processing need (timed in the generation).
GENERATION_IMPORTS = ("numpy", "PIL")


def import_breakdown(
    root: Path, part: Path, original: str, runs: int
) -> tuple[float, float, float, list[tuple[str, float]]]:
    """One-change builds under ``-X importtime``: median (wall seconds, import seconds, import seconds of
    ``GENERATION_IMPORTS``) and the costliest other top-level imports (median seconds each, over the runs)."""
    walls: list[float] = []
    totals: list[float] = []
    generation_totals: list[float] = []
    per_module: dict[str, list[float]] = {}
    env = {**_ENV, "PYTHONPROFILEIMPORTTIME": "1"}
    for run in range(runs):
        part.write_text(original.replace("number 0\n", f"number 0 edit imports {run} {time.time_ns()}\n", 1))
        started = time.perf_counter()
        command = [*PIXELBUILD, "build", "-C", str(root), "--json"]
        done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
        walls.append(time.perf_counter() - started)
        if done.returncode != 0 or json.loads(done.stdout)["generator_calls"] != 1:
            raise SystemExit(f"the one-change build under -X importtime failed:\n{done.stdout}\n{done.stderr}")
        total = generation = 0.0
        # "import time: self [us] | cumulative | name": one leading space before the name marks a top-level
        # import (nested ones are indented further), so the cumulative figures of those add up to the whole.
        for match in re.finditer(r"^import time:\s+\d+ \|\s+(\d+) \| (\S.*)$", done.stderr, re.MULTILINE):
            seconds, name = int(match.group(1)) / 1e6, match.group(2)
            total += seconds
            if name.split(".")[0] in GENERATION_IMPORTS:
                generation += seconds
            else:
                per_module.setdefault(name, []).append(seconds)
        totals.append(total)
        generation_totals.append(generation)
    medians = [(name, statistics.median(v + [0.0] * (runs - len(v)))) for name, v in per_module.items()]
    top = sorted(medians, key=lambda item: -item[1])
    return statistics.median(walls), statistics.median(totals), statistics.median(generation_totals), top[:6]


def fresh_clone(root: Path, runs: int) -> tuple[list[float], list[float]]:
    """``check`` then ``build`` in ``runs`` fresh copies of the committed files (new mtimes, as a clone has),
    each with an empty per-user cache; return both lists of seconds."""
    checks, builds = [], []
    for _ in range(runs):
        clone = Path(tempfile.mkdtemp(prefix="pixelbuild-clone-"))
        for name in ("pixelbuild.yaml", "pixelbuild.lock"):
            shutil.copy(root / name, clone / name)
        for folder in ("sprites", "assets"):
            shutil.copytree(root / folder, clone / folder, copy_function=shutil.copy)
        env = {**_ENV, "XDG_CACHE_HOME": str(clone / ".user-cache")}
        seconds, _rss, out = timed([*PIXELBUILD, "check", "-C", str(clone), "--json"], env=env)
        assert json.loads(out)["ok"], out
        checks.append(seconds)
        seconds, _rss, out = timed([*PIXELBUILD, "build", "-C", str(clone), "--json"], env=env)
        assert json.loads(out)["generator_calls"] == 0, out
        builds.append(seconds)
        shutil.rmtree(clone)
    return checks, builds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sprites", type=int, default=10_000)
    parser.add_argument("--files", type=int, default=100)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--jobs", type=int, default=2, help="-j for the initial build")
    parser.add_argument("--keep", type=Path, help="build in this folder and keep it")
    args = parser.parse_args()

    load_before = os.getloadavg()
    root = args.keep or Path(tempfile.mkdtemp(prefix="pixelbuild-bench-"))
    if not (root / "pixelbuild.lock").exists():
        if root.exists() and any(root.iterdir()):
            shutil.rmtree(root)
        write_project(root, args.sprites, args.files)
        yaml_bytes = sum(p.stat().st_size for p in root.rglob("*.yaml"))
        print(f"project: {args.sprites} sprites in {args.files} files, {yaml_bytes / 1e6:.1f} MB of YAML ({root})")
        seconds, rss, out = timed([*PIXELBUILD, "build", "-C", str(root), "-j", str(args.jobs), "--progress", "none"])
        print(f"initial build (-j {args.jobs}): {seconds:.1f} s, peak {rss} MB: {out.strip()}")
    else:
        print(f"project: reusing {root}")

    floor = [timed([sys.executable, "-c", FLOOR_SCRIPT, str(root)])[0] for _ in range(args.runs)]
    noop_runs = [timed([*PIXELBUILD, "build", "-C", str(root), "--json"]) for _ in range(args.runs)]
    assert all(json.loads(out)["noop"] for _s, _r, out in noop_runs), "the no-op build was not a no-op"
    noop = [seconds for seconds, _rss, _out in noop_runs]
    noop_rss = max(rss for _s, rss, _out in noop_runs)

    part = root / "sprites" / "part000.yaml"
    original = re.sub(r"number 0 edit .*\n", "number 0\n", part.read_text(), count=1)
    change_runs = []
    change_cpu: list[float] = []
    for run in range(max(3, args.runs // 2)):
        part.write_text(original.replace("number 0\n", f"number 0 edit {run} {time.time_ns()}\n", 1))
        seconds, rss, out = timed([*PIXELBUILD, "build", "-C", str(root), "--json"], cpu=change_cpu)
        document = json.loads(out)
        assert document["generator_calls"] == 1, document
        change_runs.append((seconds, rss, generation_seconds(document)))
    wall, imports, generation_imports, costliest = import_breakdown(root, part, original, len(change_runs))
    part.write_text(original)
    timed([*PIXELBUILD, "build", "-C", str(root)])  # back to the built state (restored from cache)
    clone_checks, clone_builds = fresh_clone(root, max(3, args.runs // 2))

    # Parse + validate the whole manifest as one file, as an edit of an unsplit manifest would.
    single = Path(tempfile.mkdtemp(prefix="pixelbuild-single-"))
    body = (root / "pixelbuild.yaml").read_text().replace("include: [sprites/*.yaml]\n", "")
    body += "sprites:\n" + "".join(
        p.read_text().removeprefix("sprites:\n") for p in sorted((root / "sprites").glob("*.yaml"))
    )
    (single / "pixelbuild.yaml").write_text(body)
    parse_script = textwrap.dedent(
        f"""
        import time, yaml
        from pathlib import Path
        from pixelbuild.manifest import load_manifest
        t = time.perf_counter()
        load_manifest(Path({str(single / "pixelbuild.yaml")!r}))
        print(time.perf_counter() - t, "C" if hasattr(yaml, "CSafeLoader") else "pure-Python")
        """
    )
    parse_out = subprocess.run(
        [sys.executable, "-c", parse_script], capture_output=True, text=True, check=True, env=_ENV
    )
    parse_seconds, loader = parse_out.stdout.split()
    shutil.rmtree(single)

    floor_median = statistics.median(floor)
    noop_median = statistics.median(noop)
    change_median = statistics.median(seconds for seconds, _rss, _generation in change_runs)
    generation_median = statistics.median(generation for _seconds, _rss, generation in change_runs)
    rest_median = statistics.median(seconds - generation for seconds, _rss, generation in change_runs)
    print(f"floor (hash manifests, find digest in lock, stat outputs): median {floor_median * 1000:.0f} ms")
    print(
        f"no-op pixelbuild build: median {noop_median * 1000:.0f} ms = {noop_median / floor_median:.2f}x the floor "
        f"(target <= 3x), peak {noop_rss} MB"
    )
    print(
        f"one sprite changed: median {change_median * 1000:.0f} ms (1 file re-parsed, 1 generated; CPU time "
        f"median {statistics.median(change_cpu) * 1000:.0f} ms), peak {max(rss for _s, rss, _g in change_runs)} MB "
        "(target < 150 MB)"
    )
    print(
        f"  the generation (build --json timings: generating + post-processing, their imports included): median "
        f"{generation_median * 1000:.0f} ms; the rest (wall less the generation, per run): median "
        f"{rest_median * 1000:.0f} ms = {rest_median / 0.3:.2f}x the 300 ms target ({rest_median / floor_median:.2f}x "
        "the floor measured in the same run, which a busy machine slows down alike)"
    )
    listing = ", ".join(f"{name} {seconds * 1000:.0f}" for name, seconds in costliest)
    print(
        f"  where it goes (-X importtime, {len(change_runs)} more runs): median {wall * 1000:.0f} ms, of which imports "
        f"{imports * 1000:.0f} ms ({' and '.join(GENERATION_IMPORTS)}, which only the generation needs: "
        f"{generation_imports * 1000:.0f} ms) and the rest {(wall - imports) * 1000:.0f} ms (start-up and work); "
        f"costliest other top-level imports (ms): {listing}"
    )
    print(
        f"fresh clone: check median {statistics.median(clone_checks) * 1000:.0f} ms (target <= 1500 ms), "
        f"then build median {statistics.median(clone_builds) * 1000:.0f} ms ({len(clone_checks)} clones)"
    )
    print(f"parse + validate the whole manifest as one file ({loader} YAML loader): {float(parse_seconds):.2f} s")
    load_after = os.getloadavg()
    print(
        f"runs: {args.runs} no-op, {len(change_runs)} one-change; machine: {os.cpu_count()} cores, load average "
        f"{load_before[0]:.2f} before, {load_after[0]:.2f} after"
    )
    if args.keep is None:
        shutil.rmtree(root)


if __name__ == "__main__":
    main()
