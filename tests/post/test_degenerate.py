"""A chain never yields an empty or single-pixel sprite silently: the op that did it fails the sprite."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from PIL import Image

from pixelbuild.errors import GenerationError, PostError
from pixelbuild.post import check_not_degenerate
from tests.conftest import Result
from tests.post.helpers import picture, rows_of, run


def test_an_op_that_removes_every_pixel_fails_naming_the_op_and_the_knob() -> None:
    image = picture(["RRRR", "RGGR", "RRRR"])
    with pytest.raises(PostError) as caught:
        run([{"remove_background": {"mode": "key", "color": "#ff0000", "tolerance": 255}}], [image])
    assert isinstance(caught.value, GenerationError) and caught.value.field == "post"
    assert "remove_background left no visible pixel in the image" in str(caught.value)
    assert "lower 'tolerance'" in str(caught.value)


def test_the_failing_frame_is_named() -> None:
    frames = [picture(["RGR"]), picture(["RRR"])]
    with pytest.raises(PostError, match="no visible pixel in frame 2"):
        run([{"remove_background": {"mode": "key", "color": "#ff0000"}}], frames)


def test_an_op_that_shrinks_a_frame_to_one_pixel_fails_unless_asked() -> None:
    before, after = [Image.new("RGBA", (40, 30), (1, 2, 3, 255))], [Image.new("RGBA", (1, 1), (1, 2, 3, 255))]
    with pytest.raises(PostError, match=r"pixelate reduced the image to a single pixel \(40x30 before\)"):
        check_not_degenerate(before, after, "pixelate", {"mode": "auto"})
    check_not_degenerate(before, after, "resize", {"size": [1, 1]})  # asked for: fine
    check_not_degenerate(before, after, "trim", {})  # trim crops to what is there: fine


def test_frames_that_stay_visible_pass() -> None:
    (result,) = run([{"remove_background": {"mode": "key", "color": "#ff0000"}}, "trim"], [picture(["RRR", "RGR"])])
    assert rows_of(result) == ["G"]


def test_a_fully_transparent_input_fails_at_the_end_of_the_chain() -> None:
    with pytest.raises(PostError, match="fully transparent"):
        run(["trim"], [picture(["...", "..."])])


def test_a_build_reports_the_emptied_sprite_and_writes_nothing_for_it(
    cli: Callable[..., Result], make_project: Callable[..., Path]
) -> None:
    project = make_project(
        """\
        version: 1
        project:
          output: assets
        defaults:
          size: 64
        sprites:
          - id: ghost
            prompt: a ghost
            post:
              - remove_background: {mode: key, tolerance: 255}
          - id: hero
            prompt: a hero
            post:
              - resize: {size: 16}
        """
    )
    result = cli("build", "-C", project)
    assert result.code == 1
    # Said once, as it failed, by the progress lines (stderr); the summary does not repeat it.
    failed = [line for line in (result.out + result.err).splitlines() if line.startswith("FAILED")]
    assert len(failed) == 1
    assert "ghost:" in failed[0] and "pixelbuild.yaml:" in failed[0]
    assert "remove_background left no visible pixel" in failed[0] and "tolerance" in failed[0]
    assert not (project / "assets/ghost.png").exists()
    assert (project / "assets/hero.png").exists()
    lock = json.loads((project / "pixelbuild.lock").read_text())
    assert "hero" in lock["sprites"] and "ghost" not in lock["sprites"]


def test_the_error_survives_a_worker_process() -> None:
    """Post-processing may run in a pool: the exception must cross a pickle with its field intact."""
    import pickle

    error = pickle.loads(pickle.dumps(PostError("x left no visible pixel")))
    assert isinstance(error, PostError) and error.field == "post" and error.message == "x left no visible pixel"
