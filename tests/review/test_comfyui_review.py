"""``workflow`` and ``explore`` against the fake ComfyUI server: the graph ``workflow`` writes is the one the
build submitted, and explore's candidates go through the same backend (and are reused after ``pin``)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from pixelbuild.testing import FakeComfyServer
from tests.conftest import Result
from tests.review.helpers import write_project


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeComfyServer]:
    monkeypatch.delenv("PIXELBUILD_COMFYUI_URL", raising=False)
    server = FakeComfyServer().start()
    yield server
    server.close()


def submitted(fake: FakeComfyServer) -> list[dict[str, Any]]:
    """The graphs the server ran, in order."""
    entries = sorted(fake.history.values(), key=lambda entry: entry["prompt"][0])
    return [entry["prompt"][2] for entry in entries]


def sampler_seed(graph: dict[str, Any]) -> int:
    return next(node["inputs"]["seed"] for node in graph.values() if node["class_type"] == "KSampler")


def test_workflow_is_what_the_build_submitted_and_explore_uses_the_backend(
    cli: Callable[..., Result], tmp_path: Path, fake: FakeComfyServer
) -> None:
    manifest = f"""\
    version: 1
    project:
      backend: comfyui
      comfyui: {{servers: ["{fake.url}"], timeout: 5, retries: 1}}
    defaults:
      size: 64
      steps: 4
      checkpoint: tiny-sd15.safetensors
      workflow: txt2img_sd15
      loras: [{{name: tiny-sd15-lora.safetensors, weight: 0.5}}]
      post: [{{resize: {{size: 16, filter: nearest}}}}]
    sprites:
      - id: hero
        prompt: blue knight
        seed: 10
    """
    root = write_project(tmp_path / "p", manifest)
    assert cli("build", "-C", root).code == 0
    [built] = submitted(fake)
    assert json.loads(cli("workflow", "hero", "-C", root).out) == built

    result = cli("explore", "hero", "--seeds", "3", "-C", root, "--json")
    assert result.code == 0, result.err
    assert (result.json["generated"], result.json["reused"]) == (2, 1)
    assert [sampler_seed(graph) for graph in submitted(fake)] == [10, 11, 12]
    assert cli("pin", "hero", "12", "-C", root).code == 0
    accepted = fake.accepted
    report = json.loads(cli("build", "-C", root, "--json").out)
    assert report["generator_calls"] == 0 and fake.accepted == accepted
    # After the pin, `workflow` gives the graph that made the pinned candidate.
    assert json.loads(cli("workflow", "hero", "-C", root).out) == submitted(fake)[2]
