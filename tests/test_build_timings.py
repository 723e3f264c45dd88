"""``build --json``'s ``timings``: the seconds of image work (generating, post-processing, packing), apart
from the build's own work, and only for work that was done."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path

from pixelbuild.backends import BackendRequest, GenerationJob, GenerationResult, ProgressCallback
from pixelbuild.backends.placeholder import PlaceholderBackend
from tests.conftest import Result, build_json

MANIFEST = """\
version: 1
project:
  output: assets
defaults:
  size: 32
  post:
    - resize: {size: 8, filter: box}
sprites:
  - id: hero
    prompt: blue knight
  - id: slime
    prompt: green slime
atlases:
  - id: all
    sprites: ["*"]
    formats: [texturepacker-hash]
"""

#: How long the slow backend takes per result.
PAUSE = 0.05


class SlowBackend:
    """The placeholder's pixels, each result after a pause: time the generator spends."""

    name = "slow"

    def __init__(self) -> None:
        self.inner = PlaceholderBackend()

    def ordered(self, jobs: Sequence[GenerationJob]) -> list[GenerationJob]:
        return list(jobs)

    def set_progress_callback(self, callback: ProgressCallback | None) -> None:
        self.inner.set_progress_callback(callback)

    def start(self, jobs: Sequence[GenerationJob]) -> None:
        self.inner.start(jobs)

    def result(self, key: str) -> GenerationResult:
        time.sleep(PAUSE)
        return self.inner.result(key)

    def settled(self, key: str) -> None:
        self.inner.settled(key)

    def cancel(self) -> None:
        self.inner.cancel()

    def close(self) -> None:
        self.inner.close()


def _slow(_request: BackendRequest) -> SlowBackend:
    return SlowBackend()


def test_each_stage_is_timed_apart_from_the_build(
    cli: Callable[..., Result], make_project: Callable[..., Path]
) -> None:
    project = make_project(MANIFEST)
    result = cli("build", "-C", project, "--json", "-j", "1", backend_factory=_slow)
    assert result.code == 0, result.out + result.err
    document = result.json
    timings = document["timings"]
    assert set(timings) == {"generating", "post_processing", "packing"}
    # The generator's time is the generating stage's: both pauses are in it.
    assert timings["generating"] >= 2 * PAUSE
    assert timings["post_processing"] > 0 and timings["packing"] > 0
    # In one thread the stages are disjoint parts of the build (each figure is rounded to milliseconds).
    assert sum(timings.values()) <= document["seconds"] + 0.002


def test_work_that_is_not_image_work_is_not_timed(
    cli: Callable[..., Result], make_project: Callable[..., Path]
) -> None:
    project = make_project(MANIFEST)
    build_json(cli, project)
    assert build_json(cli, project)["timings"] == {"generating": 0, "post_processing": 0, "packing": 0}  # no-op
    # Restored from the cache: written back, neither generated, post-processed nor packed again.
    (project / "assets" / "hero.png").unlink()
    restored = build_json(cli, project)
    assert restored["restored"] == 1 and restored["generated"] == 0
    assert restored["timings"] == {"generating": 0, "post_processing": 0, "packing": 0}
    # A new post chain: post-processed from the cached generation, nothing generated.
    manifest = project / "pixelbuild.yaml"
    manifest.write_text(manifest.read_text().replace("size: 8,", "size: 4,"))
    posted = build_json(cli, project)
    assert posted["post_processed"] == 2 and posted["generated"] == 0 and posted["packed"] == 1
    assert posted["timings"]["generating"] == 0
    assert posted["timings"]["post_processing"] > 0 and posted["timings"]["packing"] > 0
