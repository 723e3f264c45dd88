"""The review pages in a real browser: Debian's Chromium, driven by Playwright through its executable path.

For the gallery, diff and explore pages: no console error and no failed request, every ``<img>`` decoded
(each scrolled into view: they load lazily), an animation that advances frames, a search box that
filters. A full-page screenshot of each is saved under the test's temporary folder and its path printed.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.review.helpers import built, commit_all, edit, git_project

sync_api = pytest.importorskip(
    "playwright.sync_api", reason="playwright is in the 'test' extra: pip install -e '.[test]'"
)


def chromium_path() -> str | None:
    """The system Chromium (``PIXELBUILD_CHROMIUM`` overrides)."""
    named = os.environ.get("PIXELBUILD_CHROMIUM")
    if named:
        return named
    return next((path for name in ("chromium", "chromium-browser") if (path := shutil.which(name))), None)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    executable = chromium_path()
    if executable is None:
        pytest.skip("Debian's chromium is not installed (apt-get install -y chromium; .ci/run installs it)")
    with sync_api.sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        yield instance
        instance.close()


@pytest.fixture(scope="module")
def pages(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A project with an animation and an atlas, committed, then edited and rebuilt; its three pages."""
    from pixelbuild.cli import main

    root = git_project(tmp_path_factory.mktemp("browser") / "repo")
    edit(root, "prompt: gold coin", "prompt: silver coin")
    edit(root, "    seed: 7\n", "    seed: 8\n")
    built(root)
    commit_all(root, "edit")
    edit(root, "prompt: purple bat", "prompt: red bat")
    built(root)
    for argv in (["gallery"], ["diff"], ["explore", "monsters/bat", "--seeds", "4"]):
        assert main([*argv, "-C", str(root)]) == 0
    state = root / ".pixelbuild"
    return {
        "gallery": state / "gallery/index.html",
        "diff": state / "diff/index.html",
        "explore": state / "explore/monsters_bat/index.html",
    }


_WAIT_IMAGES = """async () => {
  const out = [];
  for (const img of Array.from(document.images)) {
    img.scrollIntoView({block: 'center'});
    if (!(img.complete && img.naturalWidth)) {
      await new Promise(done => {
        img.addEventListener('load', done, {once: true});
        img.addEventListener('error', done, {once: true});
        setTimeout(done, 5000);
      });
    }
    out.push([img.getAttribute('src'), img.naturalWidth]);
  }
  window.scrollTo(0, 0);
  return out;
}"""


def check_page(
    browser: Any, path: Path, folder: Path, name: str, query: str, expected: Callable[[list[str]], bool]
) -> None:
    """Load ``path`` and check it as the module docstring says; ``expected`` judges the ids left by ``query``."""
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    problems: list[str] = []
    page.on(
        "console",
        lambda message: (
            problems.append(f"console {message.type}: {message.text}") if message.type in ("error", "warning") else None
        ),
    )
    page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    page.on("requestfailed", lambda request: problems.append(f"failed request: {request.url}"))
    page.goto(path.as_uri(), wait_until="load")
    decoded = page.evaluate(_WAIT_IMAGES)
    assert decoded, f"{name}: no images"
    assert all(width > 0 for _src, width in decoded), [src for src, width in decoded if not width]

    # An animation advances: sample its frame until it moves (a loaded machine may delay frames: up to 3 s).
    assert page.locator(".anim").count() > 0, f"{name}: no animation"
    first = page.locator(".anim").first
    first.scroll_into_view_if_needed()
    seen = set()
    for _ in range(30):
        seen.add(first.get_attribute("data-frame"))
        if len(seen) > 1:
            break
        page.wait_for_timeout(100)
    assert len(seen) > 1, f"{name}: the animation stayed on frame {seen}"

    # The search box filters.
    cards = page.locator(".card[data-search]")
    total = cards.count()
    page.fill("#q", query)
    visible = [cards.nth(i).get_attribute("data-search") or "" for i in range(total) if cards.nth(i).is_visible()]
    assert 0 < len(visible) < total and expected(visible), (name, query, visible)
    assert page.locator("#shown").inner_text() == f"{len(visible)} of {total}"
    page.fill("#q", "")
    assert sum(1 for i in range(total) if cards.nth(i).is_visible()) == total

    shot = folder / f"{name}.png"
    page.screenshot(path=str(shot), full_page=True)
    print(f"screenshot of the {name} page: {shot}")
    page.close()
    assert not problems, problems


def test_gallery_page(browser: Any, pages: dict[str, Path], tmp_path: Path) -> None:
    check_page(browser, pages["gallery"], tmp_path, "gallery", "slime", lambda ids: all("slime" in i for i in ids))


def test_gallery_search_matches_prompts_and_tags(browser: Any, pages: dict[str, Path]) -> None:
    page = browser.new_page()
    page.goto(pages["gallery"].as_uri())
    cards = page.locator(".card[data-search]")
    for query, expected in (("red bat", {"monsters/bat"}), ("atlas:sprites items", {"items/coin"})):
        page.fill("#q", query)
        shown = {cards.nth(i).get_attribute("id") for i in range(cards.count()) if cards.nth(i).is_visible()}
        assert shown == expected, (query, shown)
    page.close()


def test_diff_page(browser: Any, pages: dict[str, Path], tmp_path: Path) -> None:
    check_page(browser, pages["diff"], tmp_path, "diff", "bat", lambda ids: all("monsters/bat" in i for i in ids))


def test_explore_page(browser: Any, pages: dict[str, Path], tmp_path: Path) -> None:
    check_page(browser, pages["explore"], tmp_path, "explore", "current", lambda ids: len(ids) == 1)
