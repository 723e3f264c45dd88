"""Preflight against a server's catalog (recorded object_info) and sha256 pins of local model files."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from pixelbuild.backends.comfyui.preflight import Catalog, PreflightError, check_bound, check_pins
from pixelbuild.backends.comfyui.templates import builtin_template
from pixelbuild.backends.comfyui.workflow import BoundWorkflow, bind, load_template
from pixelbuild.errors import GenerationError
from pixelbuild.local.filehashes import FileHashCache
from pixelbuild.local.layout import model_hashes_path
from pixelbuild.local.seal import seal, unseal
from tests.comfyui.util import TINY_CKPT, TINY_LORA, load_object_info, lora, make_spec

TEMPLATES = ["txt2img_sdxl", "img2img_sdxl", "batch_generation", "txt2img_sd15", "img2img_sd15"]


def _catalog(**models: tuple[str, ...]) -> Catalog:
    return Catalog(
        "http://gpu:8188",
        "0.8.0",
        load_object_info(),
        {"checkpoints": (TINY_CKPT, "sd_xl_base_1.0.safetensors"), "loras": (TINY_LORA,), **models},
    )


def _bound(name: str = "txt2img_sd15", graph_edit: Any = None, **overrides: Any) -> BoundWorkflow:
    template = load_template(builtin_template(name))
    if graph_edit:
        graph_edit(template)
    spec = make_spec(workflow=name, **overrides)
    return bind(template, spec, template_name=name, output_prefix="pixelbuild/k")


def _problems(bound: BoundWorkflow) -> list[GenerationError]:
    return check_bound(bound, _catalog(), sprite="hero")


@pytest.mark.parametrize("name", TEMPLATES)
def test_builtin_templates_pass(name: str) -> None:
    # Node classes and inputs exactly as the recorded /object_info has them.
    init = {"init_image": "slime.png"} if name.startswith("img2img") else {}
    assert _problems(_bound(name, loras=(lora(),), **init)) == []


def test_unknown_checkpoint_and_lora_name_the_field_and_suggest() -> None:
    problems = _problems(_bound(checkpoint="tiny-sd16.safetensors", loras=(lora(), lora("tiny-sd15-lorra"))))
    assert [problem.field for problem in problems] == ["checkpoint", "loras[1]"]
    assert str(problems[0]) == (
        "sprite 'hero': field 'checkpoint': ComfyUI at http://gpu:8188 has no checkpoint "
        "'tiny-sd16.safetensors' (did you mean 'tiny-sd15.safetensors'?); it has 'tiny-sd15.safetensors', "
        "'sd_xl_base_1.0.safetensors'"
    )
    assert "has no LoRA 'tiny-sd15-lorra' (did you mean 'tiny-sd15-lora.safetensors'?)" in str(problems[1])


def test_values_are_checked_against_object_info() -> None:
    problems = _problems(_bound(sampler="eulr", scheduler="karras", width=8, steps=0, cfg=101.0))
    by_field = {problem.field: str(problem) for problem in problems}
    assert set(by_field) == {"sampler", "width", "steps", "cfg"}
    assert "'eulr' is not a sampler ComfyUI at http://gpu:8188 knows (did you mean 'euler'?)" in by_field["sampler"]
    assert "width 8 is below the minimum 16 of node 4 (EmptyLatentImage" in by_field["width"]
    assert "cfg 101.0 is above the maximum 100.0" in by_field["cfg"]


def test_unknown_node_type_and_missing_inputs() -> None:
    def edit(graph: dict[str, Any]) -> None:
        graph["6"]["class_type"] = "VAEDecodeTiled2"
        del graph["2"]["inputs"]["clip"]

    problems = _problems(_bound(graph_edit=edit))
    texts = [str(problem) for problem in problems]
    assert any("has no node type 'VAEDecodeTiled2'" in text and "custom node" in text for text in texts)
    assert any("lacks the required input 'clip'" in text for text in texts)
    assert all(problem.field == "workflow" for problem in problems)


def test_bound_input_that_the_node_does_not_have() -> None:
    spec_bindings = {"seed": ["5.seed", "4.seed"]}
    problems = _problems(_bound(bindings=spec_bindings))
    assert len(problems) == 1 and problems[0].field == "seed"
    assert "node 4 (EmptyLatentImage" in str(problems[0]) and "has no input 'seed'" in str(problems[0])


def test_link_types_and_slots() -> None:
    def edit(graph: dict[str, Any]) -> None:
        graph["6"]["inputs"]["samples"] = ["2", 0]  # CONDITIONING into LATENT
        graph["7"]["inputs"]["images"] = ["6", 3]  # VAEDecode has one output

    texts = [str(problem) for problem in _problems(_bound(graph_edit=edit))]
    assert any("needs LATENT but gets a CONDITIONING output of node 2" in text for text in texts)
    assert any("uses output 3 of node 6, which has 1" in text for text in texts)


def test_combo_in_new_style() -> None:
    info = load_object_info()
    config = info["KSampler"]["input"]["required"]["sampler_name"]
    info["KSampler"]["input"]["required"]["sampler_name"] = ["COMBO", {"options": config[0]}]
    catalog = Catalog("http://s", "0.8.0", info, {"checkpoints": (TINY_CKPT,), "loras": ()})
    assert check_bound(_bound(), catalog, sprite="s") == []
    assert [p.field for p in check_bound(_bound(sampler="nope"), catalog, sprite="s")] == ["sampler"]


def test_preflight_error_lists_the_others() -> None:
    problems = [GenerationError(f"problem {n}", sprite=f"s{n}", field="checkpoint") for n in range(7)]
    text = str(PreflightError(problems))
    assert text.startswith("sprite 's0': field 'checkpoint': problem 0 (also: sprite 's1'")
    assert text.endswith("; and 2 more)")
    assert isinstance(PreflightError(problems), GenerationError)


def _write(path: Path, data: bytes) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return hashlib.sha256(data).hexdigest()


def _hashes(project: Path) -> FileHashCache:
    """The preflight's sha256 cache of a project, judged by a clock far ahead (no file is racily clean)."""
    return FileHashCache(model_hashes_path(project), clock=lambda: 1 << 62, algorithm="sha256")


def _table(path: Path) -> dict[str, Any]:
    payload = unseal("hashes", path.name, path.read_bytes())
    assert payload is not None
    table: dict[str, Any] = json.loads(payload)
    return table


def test_sha256_pins(tmp_path: Path) -> None:
    models = tmp_path / "models"
    good = _write(models / "loras" / TINY_LORA, b"lora bytes")
    ckpt = _write(models / "checkpoints" / TINY_CKPT, b"checkpoint bytes")
    hashes = _hashes(tmp_path)
    specs = [("hero", make_spec(loras=(lora(sha256=good),)))]
    assert check_pins(specs, models, hashes, {TINY_CKPT: ckpt}) == []
    cache = _table(model_hashes_path(tmp_path))["files"]
    assert {entry[4] for entry in cache.values()} == {good, ckpt}

    bad = [("hero", make_spec(loras=(lora(sha256="0" * 64),)))]
    problems = check_pins(bad, models, hashes, {TINY_CKPT: "f" * 64})
    assert [problem.field for problem in problems] == ["checkpoint", "loras[0]"]
    assert "a different file than the manifest expects" in str(problems[1])

    missing = [("hero", make_spec(loras=(lora("gone.safetensors", sha256=good),)))]
    assert "does not exist" in str(check_pins(missing, models, hashes)[0])
    assert check_pins(bad, None, hashes) == []  # no models_dir: nothing to check against


def test_hash_cache_is_trusted_while_size_and_mtime_hold(tmp_path: Path) -> None:
    models = tmp_path / "models"
    digest = _write(models / "loras" / TINY_LORA, b"lora bytes")
    specs = [("hero", make_spec(loras=(lora(sha256=digest),)))]
    assert check_pins(specs, models, _hashes(tmp_path)) == []
    path = model_hashes_path(tmp_path)
    table = _table(path)
    key = next(iter(table["files"]))
    table["files"][key][4] = "1" * 64  # a stale entry with the same signature wins: no rehash
    path.write_bytes(seal("hashes", path.name, json.dumps(table).encode()))
    assert len(check_pins(specs, models, _hashes(tmp_path))) == 1
    path.write_text(json.dumps(table))  # not sealed by this user's pixelbuild: ignored, the file is hashed
    assert check_pins(specs, models, _hashes(tmp_path)) == []
    _write(models / "loras" / TINY_LORA, b"lora bytes!")  # size changes: rehashed
    new = [("hero", make_spec(loras=(lora(sha256=hashlib.sha256(b"lora bytes!").hexdigest()),)))]
    assert check_pins(new, models, _hashes(tmp_path)) == []


def test_missing_lora_loader_class_names_the_lora() -> None:
    info = load_object_info()
    del info["LoraLoader"]
    catalog = Catalog("http://s", "0.8.0", info, {"checkpoints": (TINY_CKPT,), "loras": (TINY_LORA,)})
    problems = check_bound(_bound(loras=(lora(),)), catalog, sprite="s")
    assert [problem.field for problem in problems] == ["loras[0]"]
    assert "no node type 'LoraLoader'" in str(problems[0])
