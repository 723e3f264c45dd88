"""Binding specs into workflow templates (pure functions): golden graphs, LoRA chains, bindings, errors."""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path
from typing import Any

import pytest

from pixelbuild.backends.comfyui.templates import builtin_names, builtin_template, workflows_dir
from pixelbuild.backends.comfyui.workflow import (
    Target,
    bind,
    check_graph,
    load_template,
    model_set,
    template_defaults,
)
from pixelbuild.errors import ManifestError
from tests.comfyui.util import FIXTURES, TINY_CKPT, TINY_LORA, fixture, lora, make_spec

GOLDEN = FIXTURES / "golden"
TEMPLATES = ["txt2img_sdxl", "img2img_sdxl", "batch_generation", "txt2img_sd15", "img2img_sd15"]


def _bind(name: str, **overrides: Any) -> Any:
    spec = make_spec(workflow=name, **overrides)
    return bind(load_template(builtin_template(name)), spec, template_name=name, output_prefix="pixelbuild/k123")


def test_builtin_templates_are_found() -> None:
    assert workflows_dir() == Path(__file__).resolve().parents[2] / "workflows"
    assert set(TEMPLATES) <= set(builtin_names())
    assert builtin_template("txt2img_sdxl").name == "txt2img_sdxl.json"
    with pytest.raises(FileNotFoundError, match="known: "):
        builtin_template("nope")


def test_wheel_layout_is_preferred(tmp_path: Path) -> None:
    # In a wheel the templates are force-included at pixelbuild/_data/workflows.
    package = tmp_path / "site-packages" / "pixelbuild"
    (package / "_data" / "workflows").mkdir(parents=True)
    (package / "_data" / "workflows" / "only_in_wheel.json").write_text("{}")
    assert workflows_dir(package) == package / "_data" / "workflows"
    assert builtin_names(package) == ["only_in_wheel"]
    nowhere = tmp_path / "nowhere" / "pixelbuild"
    with pytest.raises(FileNotFoundError, match="missing from this installation"):
        workflows_dir(nowhere)
    assert builtin_names(nowhere) == []


def test_template_defaults() -> None:
    sdxl = template_defaults(load_template(builtin_template("txt2img_sdxl")))
    assert sdxl == {
        "prompt": "pixel art character, 16-bit sprite",
        "negative_prompt": "blurry, photo, 3d render",
        "seed": 42,
        "steps": 20,
        "cfg": 8.0,
        "sampler": "euler",
        "scheduler": "normal",
        "denoise": 1.0,
        "checkpoint": "sd_xl_base_1.0.safetensors",
        "width": 1024,
        "height": 1024,
        "batch_size": 1,
    }
    assert template_defaults(load_template(builtin_template("batch_generation")))["batch_size"] == 4
    img2img = template_defaults(load_template(builtin_template("img2img_sdxl")))
    assert img2img["denoise"] == 0.75
    assert (img2img["width"], img2img["height"]) == (1024, 1024)


@pytest.mark.parametrize(
    ("name", "overrides"),
    [
        ("txt2img_sdxl", {}),
        ("txt2img_sd15", {"loras": [lora(weight=0.8), lora("other.safetensors", 0.25)]}),
        ("batch_generation", {"batch_size": 4}),
        ("img2img_sdxl", {"init_image": "in.png", "denoise": 0.6}),
        ("img2img_sd15", {"init_image": "in.png", "batch_size": 2, "loras": [lora()]}),
    ],
)
def test_bound_graphs_match_golden(name: str, overrides: dict[str, Any]) -> None:
    bound = _bind(name, **overrides)
    got = {
        "graph": bound.graph,
        "fields": {str(target): field for target, field in sorted(bound.fields.items(), key=lambda item: str(item[0]))},
        "output_node": bound.output_node,
        "checkpoint_node": bound.checkpoint_node,
        "init_targets": [str(target) for target in bound.init_targets],
        "inserted": list(bound.inserted),
    }
    path = GOLDEN / f"{name}.json"
    if os.environ.get("PIXELBUILD_UPDATE_GOLDEN"):
        path.parent.mkdir(exist_ok=True)
        path.write_text(json.dumps(got, indent=1, sort_keys=True) + "\n")
    assert got == json.loads(path.read_text())


def test_txt2img_binding_values() -> None:
    bound = _bind("txt2img_sdxl", seed=7, cfg=5, width=96, height=32, sampler="dpmpp_2m", scheduler="karras")
    graph = bound.graph
    assert graph["5"]["inputs"] | {} == {
        "model": ["1", 0],
        "positive": ["2", 0],
        "negative": ["3", 0],
        "latent_image": ["4", 0],
        "seed": 7,
        "steps": 4,
        "cfg": 5.0,
        "sampler_name": "dpmpp_2m",
        "scheduler": "karras",
        "denoise": 1.0,
    }
    assert isinstance(graph["5"]["inputs"]["cfg"], float)
    assert graph["2"]["inputs"]["text"] == "pixel art knight, 16-bit sprite, side view"
    assert graph["3"]["inputs"]["text"] == "blurry, photo"
    assert graph["4"]["inputs"] == {"width": 96, "height": 32, "batch_size": 1}
    assert graph["1"]["inputs"]["ckpt_name"] == TINY_CKPT
    assert graph["7"]["inputs"]["filename_prefix"] == "pixelbuild/k123"
    assert bound.field_for("1", "ckpt_name") == "checkpoint"
    assert bound.field_for("4", "width") == "width"
    assert bound.output_node == "7"


def test_binding_does_not_modify_the_template() -> None:
    template = load_template(builtin_template("txt2img_sd15"))
    before = copy.deepcopy(template)
    bind(template, make_spec(loras=(lora(),)), template_name="t", output_prefix="p")
    assert template == before


def test_lora_chain_sits_between_loader_and_every_consumer() -> None:
    bound = _bind("txt2img_sd15", loras=[lora("a.safetensors", 0.5), lora("b.safetensors", -1.25)])
    graph = bound.graph
    first, second = bound.inserted
    assert graph[first]["class_type"] == graph[second]["class_type"] == "LoraLoader"
    assert graph[first]["inputs"] == {
        "model": ["1", 0],
        "clip": ["1", 1],
        "lora_name": "a.safetensors",
        "strength_model": 0.5,
        "strength_clip": 0.5,
    }
    assert graph[second]["inputs"]["model"] == [first, 0]
    assert graph[second]["inputs"]["clip"] == [first, 1]
    assert graph[second]["inputs"]["strength_model"] == graph[second]["inputs"]["strength_clip"] == -1.25
    assert graph["5"]["inputs"]["model"] == [second, 0]
    assert graph["2"]["inputs"]["clip"] == graph["3"]["inputs"]["clip"] == [second, 1]
    assert graph["6"]["inputs"]["vae"] == ["1", 2]  # the VAE does not go through LoRAs
    assert bound.field_for(second, "lora_name") == "loras[1]"
    assert bound.field_for(first) == "loras[0]"


def test_lora_chain_goes_before_loras_already_in_the_template() -> None:
    graph = fixture("lora_batch.json")["request"]["prompt"]  # recorded: a LoraLoader "8" in the template
    bound = bind(
        check_graph(graph, name="rec"),
        make_spec(loras=(lora("x.safetensors"),)),
        template_name="rec",
        output_prefix="p",
    )
    new = bound.inserted[0]
    assert bound.graph[new]["inputs"]["model"] == ["1", 0]
    assert bound.graph["8"]["inputs"]["model"] == [new, 0]
    assert bound.graph["8"]["inputs"]["clip"] == [new, 1]
    assert bound.checkpoint_node == "1"


def test_img2img_batch_inserts_latent_repeat() -> None:
    bound = _bind("img2img_sd15", init_image="in.png", batch_size=3)
    repeat = bound.inserted[0]
    assert bound.graph[repeat] == {
        "class_type": "RepeatLatentBatch",
        "inputs": {"samples": ["6", 0], "amount": 3},
        "_meta": {"title": "pixelbuild batch"},
    }
    assert bound.graph["7"]["inputs"]["latent_image"] == [repeat, 0]
    assert _bind("img2img_sd15", init_image="in.png").inserted == ()


def test_img2img_without_resize_node_gets_one() -> None:
    graph = {node_id: node for node_id, node in fixture("lora_batch.json")["request"]["prompt"].items()}
    graph = json.loads(json.dumps(check_graph(graph, name="x")))
    # Recorded img2img shape: LoadImage -> VAEEncode -> KSampler (no ImageScale).
    graph["10"] = {"class_type": "LoadImage", "inputs": {"image": "slime.png"}}
    graph["11"] = {"class_type": "VAEEncode", "inputs": {"pixels": ["10", 0], "vae": ["1", 2]}}
    graph["5"]["inputs"]["latent_image"] = ["11", 0]
    del graph["4"]
    bound = bind(graph, make_spec(init_image="a.png", width=48, height=80), template_name="x", output_prefix="p")
    scale = bound.inserted[0]
    assert bound.graph[scale]["class_type"] == "ImageScale"
    assert bound.graph[scale]["inputs"] | {} == {
        "image": ["10", 0],
        "upscale_method": "nearest-exact",
        "width": 48,
        "height": 80,
        "crop": "disabled",
    }
    assert bound.graph["11"]["inputs"]["pixels"] == [scale, 0]
    assert bound.init_targets == (Target("10", "image"),)
    assert bound.with_init_image("pixelbuild/abc.png")["10"]["inputs"]["image"] == "pixelbuild/abc.png"
    assert bound.graph["10"]["inputs"]["image"] == "slime.png"  # with_init_image copies


def test_explicit_bindings_by_id_title_and_list() -> None:
    template = load_template(builtin_template("txt2img_sdxl"))
    template["5"]["class_type"] = "MySampler"  # auto-binding cannot find a sampler any more
    bindings = {
        "seed": ["5.seed"],
        "steps": "KSampler.steps",
        "cfg": "5.cfg",
        "sampler": "5.sampler_name",
        "scheduler": "5.scheduler",
        "prompt": "CLIP Text Encode (Positive).text",
        "negative_prompt": "CLIP Text Encode (Negative).text",
        "width": "4.width",
        "height": "4.height",
        "checkpoint": "Load Checkpoint.ckpt_name",
    }
    spec = make_spec(bindings=bindings, seed=5, negative_prompt="ugly")
    bound = bind(template, spec, template_name="custom", output_prefix="p")
    assert bound.graph["5"]["inputs"]["seed"] == 5
    assert bound.graph["3"]["inputs"]["text"] == "ugly"
    assert bound.field_for("5", "steps") == "steps"
    assert bound.output_node == "7"


def test_explicit_binding_takes_the_input_from_auto() -> None:
    template = load_template(builtin_template("txt2img_sd15"))
    spec = make_spec(bindings={"prompt": ["2.text", "3.text"]}, negative_prompt="")
    bound = bind(template, spec, template_name="t", output_prefix="p")
    assert bound.graph["2"]["inputs"]["text"] == bound.graph["3"]["inputs"]["text"] == spec.prompt
    assert bound.field_for("3", "text") == "prompt"
    with pytest.raises(ManifestError, match=r"3.text \(bound to prompt\) is taken") as caught:
        bind(
            template,
            make_spec(bindings={"prompt": ["2.text", "3.text"]}),
            template_name="t",
            output_prefix="p",
        )
    assert caught.value.field == "negative_prompt"
    with pytest.raises(ManifestError, match=r"both name 5\.seed"):
        bind(
            template,
            make_spec(bindings={"seed": "5.seed", "steps": "5.seed"}),
            template_name="t",
            output_prefix="p",
        )


@pytest.mark.parametrize(
    ("bindings", "match"),
    [
        ({"colour": "5.seed"}, "unknown field 'colour'"),
        ({"seed": "5seed"}, "must look like"),
        ({"seed": "99.seed"}, "no node with id or title '99'"),
        ({"seed": 5}, "must be"),
        ({"seed": "5.model"}, "that input is a link"),
    ],
)
def test_bad_bindings(bindings: dict[str, Any], match: str) -> None:
    template = load_template(builtin_template("txt2img_sd15"))
    with pytest.raises(ManifestError, match=match) as caught:
        bind(template, make_spec(bindings=bindings), template_name="t", output_prefix="p", sprite="hero")
    assert caught.value.sprite == "hero"


def test_ambiguous_title() -> None:
    template = load_template(builtin_template("txt2img_sd15"))
    template["3"]["_meta"]["title"] = template["2"]["_meta"]["title"]
    spec = make_spec(bindings={"prompt": "CLIP Text Encode (Positive).text"})
    with pytest.raises(ManifestError, match="several nodes"):
        bind(template, spec, template_name="t", output_prefix="p")


def test_two_samplers_need_bindings() -> None:
    template = load_template(builtin_template("txt2img_sd15"))
    template["8"] = copy.deepcopy(template["5"])
    with pytest.raises(ManifestError) as caught:
        bind(template, make_spec(), template_name="hires", output_prefix="p", sprite="hero")
    error = caught.value
    assert error.field == "prompt"
    assert "workflow template 'hires'" in str(error)
    assert "several samplers (5, 8)" in str(error)
    assert "bindings" in str(error)


def test_missing_negative_encoder_only_matters_with_a_negative_prompt() -> None:
    template = load_template(builtin_template("txt2img_sd15"))
    template["5"]["inputs"]["negative"] = ["2", 0]  # both sides from the positive encoder
    del template["3"]
    graph = bind(template, make_spec(negative_prompt=""), template_name="t", output_prefix="p").graph
    assert "3" not in graph
    template["5"]["inputs"]["negative"] = 0.0  # no encoder at all
    with pytest.raises(ManifestError, match="'negative' input is not linked") as caught:
        bind(template, make_spec(), template_name="t", output_prefix="p")
    assert caught.value.field == "negative_prompt"


def test_advanced_sampler_has_no_denoise() -> None:
    template = load_template(builtin_template("txt2img_sd15"))
    inputs = template["5"]["inputs"]
    template["5"]["class_type"] = "KSamplerAdvanced"
    inputs["noise_seed"] = inputs.pop("seed")
    del inputs["denoise"]
    bound = bind(template, make_spec(seed=9), template_name="adv", output_prefix="p")
    assert bound.graph["5"]["inputs"]["noise_seed"] == 9
    with pytest.raises(ManifestError, match="no literal 'denoise'") as caught:
        bind(template, make_spec(denoise=0.5), template_name="adv", output_prefix="p")
    assert caught.value.field == "denoise"


def test_init_image_must_match_the_template() -> None:
    with pytest.raises(ManifestError, match="no LoadImage") as caught:
        _bind("txt2img_sd15", init_image="x.png")
    assert caught.value.field == "init_image"
    with pytest.raises(ManifestError, match="starts from an init image") as caught:
        _bind("img2img_sd15")
    assert caught.value.field == "init_image"


def test_no_save_image() -> None:
    template = load_template(builtin_template("txt2img_sd15"))
    template["7"]["class_type"] = "PreviewImage"
    with pytest.raises(ManifestError, match="no SaveImage") as caught:
        bind(template, make_spec(), template_name="t", output_prefix="p")
    assert caught.value.field == "output"


def test_loras_need_a_checkpoint_loader_with_clip() -> None:
    template = load_template(builtin_template("txt2img_sd15"))
    template["1"]["class_type"] = "ImageOnlyCheckpointLoader"
    with pytest.raises(ManifestError, match="LoRAs cannot be chained") as caught:
        bind(template, make_spec(loras=(lora(),)), template_name="t", output_prefix="p")
    assert caught.value.field == "loras"


def test_ui_format_and_broken_files(tmp_path: Path) -> None:
    ui = tmp_path / "ui.json"
    ui.write_text(json.dumps({"nodes": [], "links": [], "version": 0.4}))
    with pytest.raises(ManifestError, match="Save \\(API Format\\)"):
        load_template(ui)
    broken = tmp_path / "broken.json"
    broken.write_text("{")
    with pytest.raises(ManifestError, match="not valid JSON"):
        load_template(broken)
    with pytest.raises(ManifestError, match="does not exist"):
        load_template(tmp_path / "missing.json")
    dangling = tmp_path / "dangling.json"
    dangling.write_text(json.dumps({"1": {"class_type": "VAEDecode", "inputs": {"samples": ["9", 0]}}}))
    with pytest.raises(ManifestError, match="links to node 9"):
        load_template(dangling)
    saved = tmp_path / "saved.json"  # a saved POST /prompt body is accepted as well
    saved.write_text(json.dumps(fixture("txt2img.json")["request"]))
    assert set(load_template(saved)) == {"1", "2", "3", "4", "5", "6", "7"}


def test_model_set_groups_by_checkpoint_and_weighted_loras() -> None:
    assert model_set(make_spec()) == (TINY_CKPT, ())
    assert model_set(make_spec(loras=(lora(weight=1),))) == (TINY_CKPT, ((TINY_LORA, 1.0),))
    assert model_set(make_spec(loras=(lora(weight=1),))) != model_set(make_spec(loras=(lora(weight=0.5),)))
