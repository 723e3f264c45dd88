"""``pixelbuild workflow ID``: the bound API graph, and the UI format derived from ``/object_info``."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from pixelbuild.errors import UsageError
from pixelbuild.hashing import hash_bytes
from pixelbuild.review.comfyui_ui import to_ui
from tests.conftest import REPO, Result
from tests.review.helpers import write_project

OBJECT_INFO = REPO / "pixelbuild/testing/fakecomfy/object_info.json"  # recorded from ComfyUI 0.8.0

MANIFEST = """\
version: 1
project:
  backend: comfyui
  comfyui: {servers: ["http://127.0.0.1:9"], output_prefix: game}
defaults:
  size: 512
  checkpoint: tiny-sd15.safetensors
  workflow: txt2img_sd15
  steps: 4
  cfg: 6.5
sprites:
  - id: hero
    prompt: blue knight
    negative_prompt: blurry
    seed: 31337
    loras: [{name: tiny-sd15-lora.safetensors, weight: 0.7}, {name: other.safetensors, weight: 0.3}]
  - id: hero_b
    prompt: blue knight, brighter
    workflow: img2img_sd15
    init_image: refs/hero.png
    denoise: 0.6
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = write_project(tmp_path / "p", MANIFEST)
    (root / "refs").mkdir()
    Image.new("RGB", (32, 32), (200, 40, 40)).save(root / "refs/hero.png")
    return root


def nodes_of(graph: dict[str, Any], class_type: str) -> list[tuple[str, dict[str, Any]]]:
    return [(node_id, node) for node_id, node in graph.items() if node["class_type"] == class_type]


def test_api_graph_carries_every_bound_value(cli: Callable[..., Result], project: Path, tmp_path: Path) -> None:
    out = tmp_path / "hero.json"
    result = cli("workflow", "hero", "-C", project, "-o", out)
    assert result.code == 0, result.err
    graph = json.loads(out.read_text())
    [(_sid, sampler)] = nodes_of(graph, "KSampler")
    assert sampler["inputs"]["seed"] == 31337 and sampler["inputs"]["steps"] == 4 and sampler["inputs"]["cfg"] == 6.5
    texts = {node["inputs"]["text"] for _id, node in nodes_of(graph, "CLIPTextEncode")}
    assert texts == {"blue knight", "blurry"}
    [(_lid, latent)] = nodes_of(graph, "EmptyLatentImage")
    assert (latent["inputs"]["width"], latent["inputs"]["height"]) == (512, 512)
    loras = nodes_of(graph, "LoraLoader")
    assert [(n["inputs"]["lora_name"], n["inputs"]["strength_model"]) for _i, n in loras] == [
        ("tiny-sd15-lora.safetensors", 0.7),
        ("other.safetensors", 0.3),
    ]
    # The chain is wired: the sampler's model comes from the last LoRA, which reads the first.
    assert sampler["inputs"]["model"] == [loras[1][0], 0] and loras[1][1]["inputs"]["model"] == [loras[0][0], 0]
    [(_oid, save)] = nodes_of(graph, "SaveImage")
    assert save["inputs"]["filename_prefix"].startswith("game/")
    # Every node's class and required inputs exist in the recorded server's /object_info.
    info = json.loads(OBJECT_INFO.read_text())
    for node in graph.values():
        required = info[node["class_type"]]["input"].get("required", {})
        assert set(required) <= set(node["inputs"]), node
    # Standard output, the same document.
    assert json.loads(cli("workflow", "hero", "-C", project).out) == graph


def test_api_graph_names_the_uploaded_init_image(cli: Callable[..., Result], project: Path) -> None:
    graph = json.loads(cli("workflow", "hero_b", "-C", project).out)
    [(_id, load)] = nodes_of(graph, "LoadImage")
    digest = hash_bytes((project / "refs/hero.png").read_bytes())
    assert load["inputs"]["image"] == f"pixelbuild/{digest}.png"
    [(_sid, sampler)] = nodes_of(graph, "KSampler")
    assert sampler["inputs"]["denoise"] == 0.6


def test_ui_format_from_object_info(cli: Callable[..., Result], project: Path) -> None:
    api = json.loads(cli("workflow", "hero_b", "-C", project).out)
    result = cli("workflow", "hero_b", "-C", project, "--ui", "--object-info", OBJECT_INFO)
    assert result.code == 0, result.err
    ui = json.loads(result.out)
    info = json.loads(OBJECT_INFO.read_text())
    assert ui["version"] == 0.4 and {n["id"] for n in ui["nodes"]} == {int(i) for i in api}
    by_id = {node["id"]: node for node in ui["nodes"]}
    sampler = next(n for n in ui["nodes"] if n["type"] == "KSampler")
    s = api[str(sampler["id"])]["inputs"]
    assert sampler["widgets_values"] == [
        s["seed"],
        "fixed",
        s["steps"],
        s["cfg"],
        s["sampler_name"],
        s["scheduler"],
        s["denoise"],
    ]
    load = next(n for n in ui["nodes"] if n["type"] == "LoadImage")
    assert load["widgets_values"] == [api[str(load["id"])]["inputs"]["image"], "image"]
    # Links: every API link is one table entry, both ends agree, and the types match the definitions.
    api_links = {
        (int(value[0]), int(value[1]), int(node_id), name)
        for node_id, node in api.items()
        for name, value in node["inputs"].items()
        if isinstance(value, list)
    }
    seen = set()
    for link_id, origin, slot, target, target_slot, kind in ui["links"]:
        socket = by_id[target]["inputs"][target_slot]
        assert socket["link"] == link_id and socket["type"] == kind
        assert link_id in by_id[origin]["outputs"][slot]["links"]
        assert info[by_id[origin]["type"]]["output"][slot] == kind
        seen.add((origin, slot, target, socket["name"]))
    assert seen == api_links
    # Laid out left to right: every link goes rightwards.
    for _link, origin, _slot, target, _ts, _kind in ui["links"]:
        assert by_id[origin]["pos"][0] < by_id[target]["pos"][0]


def test_ui_format_needs_node_definitions(cli: Callable[..., Result], project: Path, tmp_path: Path) -> None:
    result = cli("workflow", "hero", "-C", project, "--ui")
    assert result.code == 2 and "needs the node definitions" in result.err and "--object-info" in result.err
    partial = tmp_path / "partial.json"
    info = json.loads(OBJECT_INFO.read_text())
    del info["LoraLoader"]
    partial.write_text(json.dumps(info))
    result = cli("workflow", "hero", "-C", project, "--ui", "--object-info", partial)
    assert result.code == 2 and "LoraLoader" in result.err and "cannot be derived faithfully" in result.err
    with pytest.raises(UsageError, match="cycle"):
        to_ui({"1": {"class_type": "VAEDecode", "inputs": {"samples": ["1", 0]}}}, info)


def test_workflow_unknown_sprite_and_frame(cli: Callable[..., Result], project: Path) -> None:
    assert "did you mean 'hero'" in cli("workflow", "heroo", "-C", project).err
    assert cli("workflow", "hero", "--frame", "3", "-C", project).code == 2
