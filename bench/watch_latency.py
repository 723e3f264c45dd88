"""``pixelbuild watch``: time from saving a post-only edit to the rebuilt file on disk.

    python bench/watch_latency.py [--runs 10] [--debounce 100]

Copies examples/quickstart (5 placeholder sprites at 256 px, the full post chain, an atlas), builds it,
starts ``pixelbuild watch`` on it, then per run saves the manifest with a new outline colour (a post-only
edit with fresh parameters, so nothing comes from the post cache) and polls until the first sprite's PNG
and the atlas PNG are replaced. Baseline, measured in the same run for the same kind of edit: running
``pixelbuild build`` by hand after the save (process start, imports and the build). Prints the median,
min and max of each and the ratio watch / by hand.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
_SCRIPT = Path(sys.executable).with_name("pixelbuild")
PIXELBUILD = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "pixelbuild"]
OUTLINE = re.compile(r'outline: \{color: "#[0-9a-f]{6}"\}')


def signature(path: Path) -> tuple[int, int] | None:
    """(inode, mtime) of ``path``: both change when a build replaces it."""
    try:
        stat = path.stat()
    except FileNotFoundError:
        return None
    return stat.st_ino, stat.st_mtime_ns


def save_edit(manifest: Path, colour: int) -> float:
    """Save the manifest with outline ``colour`` as an editor does (write, rename); return the time."""
    text = OUTLINE.sub(f'outline: {{color: "#{colour:06x}"}}', manifest.read_text())
    temp = manifest.with_name(".pixelbuild.yaml.saving")
    temp.write_text(text)
    now = time.perf_counter()
    os.replace(temp, manifest)
    return now


def wait_replaced(paths: list[Path], before: list[tuple[int, int] | None], started: float) -> list[float]:
    """Seconds from ``started`` until each of ``paths`` differs from ``before`` (60 s at most)."""
    done: list[float | None] = [None] * len(paths)
    deadline = time.perf_counter() + 60
    while None in done:
        if time.perf_counter() > deadline:
            raise SystemExit("watch did not rebuild within 60 s")
        for index, path in enumerate(paths):
            if done[index] is None and signature(path) != before[index]:
                done[index] = time.perf_counter() - started
        time.sleep(0.001)
    return [value for value in done if value is not None]


def main() -> None:
    """Run the benchmark and print its figures."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--debounce", type=int, default=100, help="watch --debounce MS (default: its default)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as temp:
        project = Path(temp) / "quickstart"
        shutil.copytree(REPO / "examples/quickstart", project, ignore=shutil.ignore_patterns(".pixelbuild", "assets"))
        (project / "pixelbuild.lock").unlink(missing_ok=True)
        manifest = project / "pixelbuild.yaml"
        manifest.write_text(manifest.read_text().replace('outline: {color: "#181425"}', 'outline: {color: "#000001"}'))
        subprocess.run([*PIXELBUILD, "build", "-C", str(project), "--progress", "none"], check=True)
        watched = [project / "assets/characters/knight.png", project / "assets/atlases/sprites.png"]
        colour = 2

        by_hand: list[float] = []
        for _ in range(args.runs):
            started = save_edit(manifest, colour)
            colour += 1
            subprocess.run(
                [*PIXELBUILD, "build", "-C", str(project), "--progress", "none"], check=True, stdout=subprocess.DEVNULL
            )
            by_hand.append(time.perf_counter() - started)

        process = subprocess.Popen(
            [*PIXELBUILD, "watch", "-C", str(project), "--progress", "none", "--debounce", str(args.debounce)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert process.stderr is not None
        for line in process.stderr:  # the first build (a no-op) is done once it watches
            if line.startswith("watching"):
                break
        first: list[float] = []
        last: list[float] = []
        try:
            for _ in range(args.runs):
                before = [signature(path) for path in watched]
                started = save_edit(manifest, colour)
                colour += 1
                sprite, atlas = wait_replaced(watched, before, started)
                first.append(sprite)
                last.append(atlas)
                time.sleep(0.3)  # let the watch settle before the next save
        finally:
            process.send_signal(signal.SIGINT)
            process.wait(timeout=30)

    def line(name: str, values: list[float]) -> str:
        return (
            f"{name:<34} median {statistics.median(values) * 1000:7.1f} ms   "
            f"min {min(values) * 1000:7.1f}   max {max(values) * 1000:7.1f}"
        )

    print(
        f"post-only edit of examples/quickstart (5 sprites + atlas), {args.runs} runs, watch --debounce {args.debounce}"
    )
    print(line("watch: save -> first sprite", first))
    print(line("watch: save -> atlas (build done)", last))
    print(line("by hand: save + pixelbuild build", by_hand))
    ratio = statistics.median(last) / statistics.median(by_hand)
    print(f"watch / by hand (whole build, medians): {ratio:.2f}")


if __name__ == "__main__":
    main()
