"""``pixelbuild watch`` as a user runs it: a real process, real saves, real signals.

Every wait is bounded (a deadline, never a fixed sleep that the assertion depends on).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.conftest import REPO

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")

MANIFEST = """\
version: 1
project:
  output: assets
include:
  - more/*.yaml
defaults:
  size: 32
  post:
    - resize: {size: 16, filter: box}
    - palette: {file: colours.hex}
sprites:
  - id: hero
    prompt: blue knight
"""
INCLUDED = """\
sprites:
  - id: slime
    prompt: green slime
"""
PALETTE = "000000\nffffff\nff0000\n00ff00\n0000ff\n"
DEADLINE = 60.0


class Watcher:
    """A ``pixelbuild watch`` process whose output is collected in files."""

    def __init__(self, project: Path, *extra: str, cwd: Path | None = None) -> None:
        self.project = project
        folder = ((cwd or Path.cwd()) / project).parent
        self.out_path = folder / "watch.out"
        self.err_path = folder / "watch.err"
        env = {k: v for k, v in os.environ.items() if k != "PIXELBUILD_COMFYUI_URL"}
        env["PYTHONPATH"] = str(REPO)
        with self.out_path.open("wb") as out, self.err_path.open("wb") as err:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "pixelbuild", "watch", "-C", str(project), "--progress", "none", *extra],
                env=env,
                stdout=out,
                stderr=err,
                cwd=cwd,
            )

    @property
    def out(self) -> str:
        return self.out_path.read_text()

    @property
    def err(self) -> str:
        return self.err_path.read_text()

    def wait_for(self, what: str, condition: Callable[[], bool]) -> None:
        deadline = time.monotonic() + DEADLINE
        while time.monotonic() < deadline:
            if condition():
                return
            assert self.process.poll() is None, f"watch exited ({self.process.returncode}):\n{self.out}\n{self.err}"
            time.sleep(0.02)
        raise AssertionError(f"timed out waiting for {what}:\n{self.out}\n{self.err}")

    def wait_for_text(self, text: str, count: int = 1) -> None:
        self.wait_for(repr(text), lambda: (self.out + self.err).count(text) >= count)

    def wait_for_new_bytes(self, path: Path, old: bytes) -> bytes:
        self.wait_for(f"{path.name} to change", lambda: path.exists() and path.read_bytes() != old)
        return path.read_bytes()

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
        return self.process.wait(timeout=30)


@pytest.fixture
def watcher(tmp_path: Path) -> Iterator[Callable[..., Watcher]]:
    started: list[Watcher] = []

    def start(project: Path, *extra: str, cwd: Path | None = None) -> Watcher:
        watcher = Watcher(project, *extra, cwd=cwd)
        started.append(watcher)
        return watcher

    yield start
    for watcher in started:
        if watcher.process.poll() is None:
            watcher.process.kill()
            watcher.process.wait()


def save(path: Path, text: str) -> None:
    """Save as editors do: a new file renamed over the old one."""
    temp = path.with_name(path.name + ".saving")
    temp.write_text(text)
    os.replace(temp, path)


def test_watch_rebuilds_on_saves_survives_errors_and_stops_on_ctrl_c(
    make_project: Callable[..., Path], watcher: Callable[..., Watcher]
) -> None:
    project = make_project(MANIFEST, {"more/slime.yaml": INCLUDED, "colours.hex": PALETTE})
    hero, slime = project / "assets/hero.png", project / "assets/slime.png"
    watch = watcher(project, "--debounce", "50")
    watch.wait_for_text("watching")
    assert "2 generated" in watch.out
    first_hero, first_slime = hero.read_bytes(), slime.read_bytes()

    # A file nobody reads: no build.
    (project / "notes.txt").write_text("todo")
    # A post-only edit of the manifest: rebuilt without the generator.
    manifest = project / "pixelbuild.yaml"
    save(manifest, manifest.read_text().replace("size: 16", "size: 12"))
    second_hero = watch.wait_for_new_bytes(hero, first_hero)
    watch.wait_for_text("changed: pixelbuild.yaml")
    watch.wait_for_text("0 generated, 2 post-processed")
    assert "notes.txt" not in watch.err

    # The palette file and an included file are inputs too.
    save(project / "colours.hex", PALETTE.replace("ff0000", "ffff00"))
    watch.wait_for_text("changed: colours.hex")
    watch.wait_for_text("0 generated, 2 post-processed", count=2)  # both sprites read the palette
    save(project / "more/slime.yaml", INCLUDED.replace("green slime", "red slime"))
    watch.wait_for_text("changed: more/slime.yaml")
    watch.wait_for_new_bytes(slime, first_slime)
    watch.wait_for_text("1 generated")

    # A bad edit: the error is shown, the watch goes on.
    good = manifest.read_text()
    save(manifest, good + "  - id: [\n")
    watch.wait_for_text("pixelbuild.yaml:15:1: YAML syntax error")
    assert watch.process.poll() is None
    # The fix is picked up.
    save(manifest, good.replace("size: 12", "size: 10"))
    watch.wait_for_new_bytes(hero, second_hero)

    # A new file that an include picks up.
    save(project / "more/coin.yaml", "sprites:\n  - id: coin\n    prompt: gold coin\n")
    watch.wait_for_text("1 generated", count=2)  # the slime, then the coin: that build is over
    assert (project / "assets/coin.png").is_file()

    assert watch.stop() == 0
    assert "Traceback" not in watch.err
    assert "internal error" not in watch.err


def test_the_builds_own_writes_do_not_trigger_builds(
    make_project: Callable[..., Path], watcher: Callable[..., Watcher]
) -> None:
    project = make_project(MANIFEST, {"more/slime.yaml": INCLUDED, "colours.hex": PALETTE})
    watch = watcher(project, "--debounce", "20")
    watch.wait_for_text("watching")
    manifest = project / "pixelbuild.yaml"
    save(manifest, manifest.read_text().replace("size: 16", "size: 12"))
    watch.wait_for_text("post-processed")
    # One build per save: a build triggered by its own outputs or lock would print a second summary.
    save(manifest, manifest.read_text().replace("size: 12", "size: 11"))
    watch.wait_for_text("post-processed", count=2)
    save(manifest, manifest.read_text().replace("blue knight", "red knight"))
    watch.wait_for_text("1 generated")
    assert watch.out.count(" up to date (") == 4  # the first build and one per save
    assert watch.stop() == 0


def test_a_missing_manifest_is_an_error(make_project: Callable[..., Path], watcher: Callable[..., Watcher]) -> None:
    project = make_project()
    (project / "pixelbuild.yaml").unlink()
    watch = watcher(project)
    assert watch.process.wait(timeout=60) == 2
    assert "no manifest here" in watch.err


def test_a_project_reached_through_a_symbolic_link(
    make_project: Callable[..., Path], watcher: Callable[..., Watcher]
) -> None:
    project = make_project(MANIFEST, {"more/slime.yaml": INCLUDED, "colours.hex": PALETTE})
    link = project.parent / "linked"
    link.symlink_to(project, target_is_directory=True)
    watch = watcher(link)
    watch.wait_for_text("watching")
    assert "error" not in watch.err, watch.err  # the first build worked
    save(link / "colours.hex", PALETTE.replace("ff0000", "ffff00"))
    watch.wait_for_text("changed: colours.hex")
    watch.wait_for_text("0 generated, 2 post-processed")
    assert watch.stop() == 0


def test_an_error_in_a_newly_included_file_is_shown_and_its_fix_rebuilds(
    make_project: Callable[..., Path], watcher: Callable[..., Watcher]
) -> None:
    project = make_project(MANIFEST, {"more/slime.yaml": INCLUDED, "colours.hex": PALETTE})
    (project / "bat.yaml").write_text("sprites:\n  - id: bat\n    prompt: [\n")  # broken, not included yet
    # From the project's parent folder, as `pixelbuild watch -C game` is often run: messages name
    # files relative to the working folder.
    watch = watcher(Path(project.name), cwd=project.parent)
    watch.wait_for_text("watching")
    manifest = project / "pixelbuild.yaml"
    save(manifest, manifest.read_text().replace("  - more/*.yaml\n", "  - more/*.yaml\n  - bat.yaml\n"))
    watch.wait_for_text(f"{project.name}/bat.yaml:4:1: YAML syntax error")
    save(project / "bat.yaml", "sprites:\n  - id: bat\n    prompt: purple bat\n")
    watch.wait_for_text("changed: bat.yaml")
    watch.wait_for_text("1 generated")
    assert (project / "assets/bat.png").is_file()
    assert watch.stop() == 0


def test_json_prints_one_document_per_build(make_project: Callable[..., Path], watcher: Callable[..., Watcher]) -> None:
    project = make_project(MANIFEST, {"more/slime.yaml": INCLUDED, "colours.hex": PALETTE})
    watch = watcher(project, "--json")
    watch.wait_for_text("watching")
    manifest = project / "pixelbuild.yaml"
    save(manifest, manifest.read_text().replace("size: 16", "size: 12"))
    watch.wait_for("two documents", lambda: watch.out.endswith("\n") and len(watch.out.splitlines()) == 2)
    assert watch.stop() == 0
    first, second = (json.loads(line) for line in watch.out.splitlines())
    assert (first["generated"], second["generated"], second["post_processed"]) == (2, 0, 2)


def test_sigterm_between_builds_ends_the_watch_cleanly(
    make_project: Callable[..., Path], watcher: Callable[..., Watcher]
) -> None:
    project = make_project()
    watch = watcher(project)
    watch.wait_for_text("watching")
    watch.process.send_signal(signal.SIGTERM)
    assert watch.process.wait(timeout=30) == 0
    assert "Traceback" not in watch.err


def _png(colour: tuple[int, int, int]) -> bytes:
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (16, 16), colour).save(buffer, format="PNG")
    return buffer.getvalue()


def test_saving_a_hand_drawn_source_rebuilds_its_sprite(
    make_project: Callable[..., Path], watcher: Callable[..., Watcher]
) -> None:
    manifest = MANIFEST + "  - id: heart\n    source: art/heart.png\n"
    project = make_project(
        manifest, {"more/slime.yaml": INCLUDED, "colours.hex": PALETTE, "art/heart.png": _png((255, 0, 0))}
    )
    watch = watcher(project)
    watch.wait_for_text("watching")
    heart = project / "assets/heart.png"
    before = heart.read_bytes()
    temp = project / "art/heart.png.saving"
    temp.write_bytes(_png((0, 0, 255)))
    os.replace(temp, project / "art/heart.png")
    watch.wait_for_text("changed: art/heart.png")
    watch.wait_for_new_bytes(heart, before)
    # The sprite is written before the lock and the stamp: stopping only once the build has said its
    # summary (a second "... up to date" line) never interrupts it.
    watch.wait_for_text("up to date", count=2)
    assert watch.stop() == 0


def test_json_prints_an_error_document_for_a_bad_edit(
    make_project: Callable[..., Path], watcher: Callable[..., Watcher]
) -> None:
    project = make_project(MANIFEST, {"more/slime.yaml": INCLUDED, "colours.hex": PALETTE})
    watch = watcher(project, "--json")
    watch.wait_for_text("watching")
    manifest = project / "pixelbuild.yaml"
    save(manifest, manifest.read_text().replace("size: 16", "size: sixteen"))
    watch.wait_for("two documents", lambda: watch.out.endswith("\n") and len(watch.out.splitlines()) == 2)
    assert watch.stop() == 0
    first, second = (json.loads(line) for line in watch.out.splitlines())
    assert first["ok"] is True
    assert second["ok"] is False
    assert second["error"]["kind"] == "bad_input" and second["error"]["exit_code"] == 2
    assert second["error"]["file"].endswith("pixelbuild.yaml") and second["error"]["line"]
