"""examples/dungeon as shipped (SDXL size 1024) against the fake ComfyUI: first build and no-op (prints figures).

Each run copies the example to a fresh folder and starts a fake server with the example's checkpoint and
LoRA, then times, as separate ``pixelbuild`` processes (what a user waits for):

1. the first build (``-j 2``): 46 generations (70 images of 1024²) through the server, post chains, two atlases;
2. a no-op build (median of 5), against ``pixelbuild --version`` as the baseline of starting Python;
3. a post-only rebuild after repainting the hand-drawn heart (no generator call, no server needed).

The fake server draws noise, so generation cost here is its PNG encoding and the transfer, not a GPU's.

Run: ``python bench/dungeon.py [RUNS]`` (default 3 runs; about a minute each on 2 cores).
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from pixelbuild.testing import FakeComfyServer  # noqa: E402

EXAMPLE = REPO / "examples" / "dungeon"


def _timed(*args: str | Path) -> float:
    started = time.perf_counter()
    env = {name: value for name, value in os.environ.items() if name != "PIXELBUILD_COMFYUI_URL"}
    subprocess.run([sys.executable, "-m", "pixelbuild", *map(str, args)], check=True, env=env, capture_output=True)
    return time.perf_counter() - started


def one_run() -> tuple[float, float, float, float]:
    """First build, median no-op, median interpreter start and the post-only rebuild, in seconds."""
    server = FakeComfyServer(checkpoints=("sd_xl_base_1.0.safetensors",), loras=("pixel-art-xl.safetensors",)).start()
    try:
        with tempfile.TemporaryDirectory() as folder:
            project = Path(folder) / "dungeon"
            shutil.copytree(EXAMPLE, project, ignore=shutil.ignore_patterns(".pixelbuild", "assets", "*.lock"))
            first = _timed("build", "-C", project, "--server", server.url, "-j", "2", "--progress", "none")
            noops = [_timed("build", "-C", project, "--server", server.url) for _ in range(5)]
            starts = [_timed("--version") for _ in range(5)]
            heart = project / "items/art/heart.png"
            with Image.open(heart) as image:
                repainted = image.convert("RGBA")
            repainted.putpixel((7, 7), (0xF4, 0xF4, 0xF4, 255))
            repainted.save(heart)
            post_only = _timed("build", "-C", project, "--server", "http://127.0.0.1:9", "--progress", "none")
            return first, statistics.median(noops), statistics.median(starts), post_only
    finally:
        server.close()


def main() -> None:
    """Print the figures of each run and their medians."""
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    print(f"examples/dungeon (38 sprites, 46 generations = 70 images at 1024², 2 atlases x 5 formats), {runs} runs")
    if hasattr(os, "getloadavg"):
        print(f"load average before: {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
    results = []
    for index in range(runs):
        first, noop, start, post_only = one_run()
        results.append((first, noop, start, post_only))
        print(
            f"run {index + 1}: first build {first:.2f} s · no-op {noop * 1000:.0f} ms "
            f"(python start {start * 1000:.0f} ms, ratio {noop / start:.2f}) · heart repainted {post_only:.2f} s"
        )
    first, noop, start, post_only = (statistics.median(column) for column in zip(*results, strict=True))
    print(
        f"median: first build {first:.2f} s, no-op {noop * 1000:.0f} ms = {noop / start:.2f}x python start, "
        f"post-only rebuild {post_only:.2f} s"
    )


if __name__ == "__main__":
    main()
