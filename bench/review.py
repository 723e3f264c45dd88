"""Review pages at scale: ``gallery`` and ``diff`` times, the gallery's load time in Chromium, diff.png size.

    python bench/review.py [--sprites 2000] [--changed 20] [--runs 3] [--keep DIR]

Builds a project of N sprites (every 40th a 4-frame animation, 200 of them in an atlas) with the
placeholder backend, commits it to a fresh git repository, then edits the prompt of ``--changed`` sprites
and builds again. Prints, as medians of ``--runs`` fresh processes:

* ``pixelbuild check`` (reads the manifest and the lock, hashes every output): the baseline of this run;
* ``pixelbuild gallery``: the first run (every image copied) and a re-run (images already there), and
  their ratios to the baseline;
* ``pixelbuild diff`` against HEAD, its ratio to the baseline, and the size of ``diff.png``;
* in Chromium (system ``chromium`` through Playwright): the gallery's DOMContentLoaded and load event
  times, against an empty page; the time the search box takes to filter every card.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

_SCRIPT = Path(sys.executable).with_name("pixelbuild")
PIXELBUILD = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "pixelbuild"]
# As users run it: with bytecode caching (some shells here set PYTHONDONTWRITEBYTECODE, which makes every
# process compile pixelbuild again and blurs the figures).
_ENV = {name: value for name, value in os.environ.items() if name != "PYTHONDONTWRITEBYTECODE"}
_GIT_ENV = {
    **os.environ,
    "GIT_AUTHOR_NAME": "bench",
    "GIT_AUTHOR_EMAIL": "bench@example.com",
    "GIT_COMMITTER_NAME": "bench",
    "GIT_COMMITTER_EMAIL": "bench@example.com",
}


def write_project(root: Path, sprites: int) -> None:
    """A manifest of ``sprites`` sprites and one atlas of 200 of them."""
    lines = [
        textwrap.dedent(
            """\
            version: 1
            project: {output: assets, backend: placeholder}
            defaults:
              size: 64
              negative_prompt: blurry
              post:
                - resize: {size: 16, filter: nearest}
                - remove_background: {mode: flood, tolerance: 40}
            sprites:
            """
        )
    ]
    colours = ["red", "green", "blue", "gold", "purple", "teal", "pink", "grey"]
    things = ["knight", "slime", "coin", "potion", "bat", "tree", "gem", "wizard"]
    for index in range(sprites):
        prompt = f"pixel art {colours[index % 8]} {things[(index // 8) % 8]} number {index}"
        lines.append(f"  - id: set{index // 100:02d}/sprite{index:05d}\n    prompt: {prompt}\n")
        if index % 40 == 0:
            lines.append("    frames: 4\n")
    lines.append("atlases:\n  - id: set00\n    sprites: ['set00/*', 'set01/*']\n    formats: [texturepacker-hash]\n")
    (root / "pixelbuild.yaml").write_text("".join(lines))


def run(root: Path, *args: str) -> float:
    """Seconds one fresh ``pixelbuild`` process takes."""
    started = time.perf_counter()
    subprocess.run([*PIXELBUILD, *args, "-C", str(root)], check=True, stdout=subprocess.DEVNULL, env=_ENV)
    return time.perf_counter() - started


def git(root: Path, *args: str) -> None:
    """Run git quietly in ``root``."""
    subprocess.run(["git", *args], cwd=root, env=_GIT_ENV, check=True, stdout=subprocess.DEVNULL)


def median(root: Path, runs: int, *args: str) -> float:
    """The median of ``runs`` timings of ``pixelbuild ARGS``."""
    return statistics.median(run(root, *args) for _ in range(runs))


def chromium_load(index: Path, runs: int) -> dict[str, float] | None:
    """DOMContentLoaded and load times (ms) of ``index`` and of an empty page, and the search time."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        return None
    executable = shutil.which("chromium") or shutil.which("chromium-browser")
    if executable is None:
        return None
    empty = index.parent / "empty.html"
    empty.write_text("<!doctype html><title>empty</title><p>empty</p>")
    # The same number of bytes as plain paragraphs: what parsing a page that size costs here.
    plain = index.parent / "plain.html"
    paragraph = "<p>" + "lorem ipsum dolor sit amet " * 48 + "</p>"
    plain.write_text("<!doctype html><title>plain</title>" + paragraph * (index.stat().st_size // len(paragraph)))
    timing = (
        "() => { const n = performance.getEntriesByType('navigation')[0];"
        " return [n.domContentLoadedEventEnd, n.loadEventEnd]; }"
    )
    figures: dict[str, list[float]] = {"empty_load": [], "plain_load": [], "dom_ready": [], "load": [], "search": []}
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        for _ in range(runs):
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.goto(empty.as_uri(), wait_until="load")
            figures["empty_load"].append(page.evaluate(timing)[1])
            page.goto(plain.as_uri(), wait_until="load")
            figures["plain_load"].append(page.evaluate(timing)[1])
            page.close()
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.goto(index.as_uri(), wait_until="load")
            dom_ready, load = page.evaluate(timing)
            figures["dom_ready"].append(dom_ready)
            figures["load"].append(load)
            figures["search"].append(
                page.evaluate(
                    "() => { const q = document.getElementById('q'); const t = performance.now();"
                    " q.value = 'gold'; q.dispatchEvent(new Event('input'));"
                    " document.body.offsetHeight; return performance.now() - t; }"
                )
            )
            page.close()
        browser.close()
    empty.unlink()
    plain.unlink()
    return {name: statistics.median(values) for name, values in figures.items()}


def main() -> None:
    """Run the benchmark and print its figures."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sprites", type=int, default=2000)
    parser.add_argument("--changed", type=int, default=20)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--keep", type=Path, help="build the project in DIR and keep it")
    options = parser.parse_args()
    root = options.keep or Path(tempfile.mkdtemp(prefix="pixelbuild-bench-review-"))
    try:
        root.mkdir(parents=True, exist_ok=True)
        write_project(root, options.sprites)
        started = time.perf_counter()
        run(root, "build", "-j", "2", "--progress", "none")
        print(f"setup: {options.sprites} sprites built in {time.perf_counter() - started:.1f}s")
        print(f"load average: {' '.join(f'{value:.1f}' for value in os.getloadavg())} on {os.cpu_count()} CPUs")
        git(root, "init", "-q")
        git(root, "add", "-A")
        git(root, "commit", "-q", "-m", "base")
        manifest = root / "pixelbuild.yaml"
        text = manifest.read_text()
        step = max(1, options.sprites // options.changed)
        for index in range(0, step * options.changed, step):
            text = text.replace(f" number {index}\n", f" number {index} shiny\n", 1)
        manifest.write_text(text)
        run(root, "build", "-j", "2", "--progress", "none")

        baseline = median(root, options.runs, "check")
        first = run(root, "gallery")
        again = median(root, options.runs, "gallery")
        diff = median(root, options.runs, "diff")
        sheet = root / ".pixelbuild/diff/diff.png"
        print(f"pixelbuild check (baseline):    {baseline:6.2f}s")
        print(f"pixelbuild gallery, first run:  {first:6.2f}s  ({first / baseline:.2f}x check)")
        print(f"pixelbuild gallery, re-run:     {again:6.2f}s  ({again / baseline:.2f}x check)")
        print(f"pixelbuild diff ({options.changed} changed):  {diff:6.2f}s  ({diff / baseline:.2f}x check)")
        print(f"diff.png for {options.changed} changed sprites + 1 atlas: {sheet.stat().st_size / 1024:.1f} KiB")
        html = root / ".pixelbuild/gallery/index.html"
        print(f"gallery index.html: {html.stat().st_size / 1e6:.2f} MB")
        figures = chromium_load(html, options.runs)
        if figures is None:
            print("chromium: not measured (needs playwright and the system chromium)")
        else:
            print(
                f"chromium, gallery of {options.sprites}: DOMContentLoaded {figures['dom_ready']:.0f} ms, "
                f"load {figures['load']:.0f} ms ({figures['load'] / figures['plain_load']:.2f}x a plain page of the "
                f"same size: {figures['plain_load']:.0f} ms; empty page: {figures['empty_load']:.0f} ms); "
                f"search filters every card in {figures['search']:.0f} ms"
            )
    finally:
        if options.keep is None:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
