"""ComfyUI API-format workflow templates: loading, binding a ``GenerationSpec`` into them, LoRA injection.

Everything here is pure: a template graph and a spec in, a new graph out. Binding finds its targets by
walking the graph from the sampler (no hard-coded node ids), so any template shaped like ComfyUI's
default txt2img / img2img graphs binds without configuration; an explicit ``bindings`` map
(``{field: "node_id_or_title.input_name"}``, or a list of such targets) overrides or completes it.

Bindable fields: the ``GenerationSpec`` fields ``prompt``, ``negative_prompt``, ``seed``, ``width``,
``height``, ``steps``, ``cfg``, ``sampler``, ``scheduler``, ``denoise``, ``checkpoint``, ``batch_size``,
``init_image``, plus ``output`` (the ``filename_prefix`` of the SaveImage node whose images we keep).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pixelbuild.errors import ManifestError
from pixelbuild.spec import GenerationSpec

Graph = dict[str, dict[str, Any]]

FIELDS = (
    "prompt",
    "negative_prompt",
    "seed",
    "width",
    "height",
    "steps",
    "cfg",
    "sampler",
    "scheduler",
    "denoise",
    "checkpoint",
    "batch_size",
    "init_image",
    "output",
)

SAMPLERS = {"KSampler": "seed", "KSamplerAdvanced": "noise_seed"}
# Loaders whose outputs 0 and 1 are MODEL and CLIP: the LoRA chain goes right behind them.
MODEL_CLIP_LOADERS = {"CheckpointLoaderSimple", "CheckpointLoader", "unCLIPCheckpointLoader"}
OUTPUT_CLASSES = {"SaveImage"}
_MAX_WALK = 32  # longest chain of pass-through nodes we follow before giving up


@dataclass(frozen=True, slots=True)
class Target:
    """One input of one node: where a field's value goes."""

    node: str
    input: str

    def __str__(self) -> str:
        return f"{self.node}.{self.input}"


@dataclass(frozen=True, slots=True)
class BoundWorkflow:
    """A template with a spec's values bound in, ready to submit (after ``with_init_image``).

    ``fields`` maps each bound input back to the manifest field it came from, so server errors about an
    input can name the field; ``init_targets`` are the LoadImage inputs that receive the uploaded name.
    """

    graph: Graph
    template: str
    fields: Mapping[Target, str]
    output_node: str
    checkpoint_node: str
    init_targets: tuple[Target, ...] = ()
    inserted: tuple[str, ...] = field(default=())

    def field_for(self, node: str, input_name: str | None = None) -> str | None:
        """The manifest field bound to ``node.input_name`` (or to any input of ``node``), if any."""
        if input_name is not None:
            return self.fields.get(Target(node, input_name))
        found = {name for target, name in self.fields.items() if target.node == node}
        return found.pop() if len(found) == 1 else None

    def node_label(self, node: str) -> str:
        """``node 5 (KSampler "title")`` for messages."""
        entry = self.graph.get(node, {})
        class_type = entry.get("class_type", "?")
        title = entry.get("_meta", {}).get("title") if isinstance(entry.get("_meta"), Mapping) else None
        suffix = f' "{title}"' if title and title != class_type else ""
        return f"node {node} ({class_type}{suffix})"

    def with_init_image(self, server_name: str) -> Graph:
        """A copy of the graph with the uploaded init image's server-side name filled in."""
        graph = copy_graph(self.graph)
        for target in self.init_targets:
            graph[target.node]["inputs"][target.input] = server_name
        return graph


def copy_graph(graph: Graph) -> Graph:
    """A deep copy of JSON data (dicts, lists, scalars): several times faster than ``copy.deepcopy``,
    which matters when thousands of jobs are bound before the first prompt goes out."""
    copied: Graph = _copy_json(graph)
    return copied


def _copy_json(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _copy_json(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_copy_json(item) for item in value]
    return value


def load_template(path: Path, *, sprite: str | None = None) -> Graph:
    """Read and check an API-format workflow file; raise ``ManifestError`` if it is not one."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ManifestError(f"workflow file '{path}' does not exist", sprite=sprite, field="workflow") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ManifestError(
            f"workflow file '{path}' is not valid JSON: {error}", sprite=sprite, field="workflow"
        ) from None
    return check_graph(data, name=path.name, sprite=sprite)


def check_graph(data: Any, *, name: str, sprite: str | None = None) -> Graph:
    """Check that ``data`` is an API-format graph ``{id: {class_type, inputs}}`` and return it."""
    if isinstance(data, Mapping) and "nodes" in data and "links" in data:
        raise ManifestError(
            f"workflow '{name}' is in ComfyUI's UI format; export it with 'Save (API Format)' instead",
            sprite=sprite,
            field="workflow",
        )
    if isinstance(data, Mapping) and isinstance(data.get("prompt"), Mapping):
        data = data["prompt"]  # a saved POST /prompt body
    if not isinstance(data, Mapping) or not data:
        raise ManifestError(
            f"workflow '{name}' must be a JSON object of nodes {{id: {{class_type, inputs}}}}",
            sprite=sprite,
            field="workflow",
        )
    graph: Graph = {}
    for node_id, node in data.items():
        if (
            not isinstance(node, Mapping)
            or not isinstance(node.get("class_type"), str)
            or not isinstance(node.get("inputs", {}), Mapping)
        ):
            raise ManifestError(
                f"workflow '{name}': node {node_id} needs a 'class_type' string and an 'inputs' object",
                sprite=sprite,
                field="workflow",
            )
        graph[str(node_id)] = {
            **copy.deepcopy(dict(node)),
            "inputs": copy.deepcopy(dict(node.get("inputs", {}))),
        }
    for node_id, node in graph.items():
        for input_name, value in node["inputs"].items():
            if _is_link(value) and str(value[0]) not in graph:
                raise ManifestError(
                    f"workflow '{name}': input {node_id}.{input_name} links to node {value[0]}, "
                    "which is not in the workflow",
                    sprite=sprite,
                    field="workflow",
                )
    return graph


def bind(
    template: Graph,
    spec: GenerationSpec,
    *,
    template_name: str,
    output_prefix: str,
    sprite: str | None = None,
) -> BoundWorkflow:
    """Bind ``spec`` into a copy of ``template``; LoRAs become a chain of LoraLoader nodes.

    ``output_prefix`` becomes the SaveImage ``filename_prefix``. The LoadImage input (img2img) keeps a
    placeholder until ``BoundWorkflow.with_init_image``. Raises ``ManifestError`` naming the field and the
    template when a field cannot be placed.
    """
    graph = copy_graph(template)
    explicit = _explicit_targets(graph, spec.bindings, template_name, sprite)
    auto, reasons = _auto_targets(graph)
    claimed: dict[Target, str] = {}
    for name, found in explicit.items():
        for target in found:
            if claimed.setdefault(target, name) != name:
                raise ManifestError(
                    f"bindings.{claimed[target]} and bindings.{name} both name {target}",
                    sprite=sprite,
                    field="bindings",
                )
    # An input claimed by an explicit binding is taken away from whatever field found it automatically.
    targets: dict[str, list[Target]] = {}
    for name, found in auto.items():
        kept = [target for target in found if target not in claimed]
        if len(kept) < len(found):
            taken = ", ".join(f"{target} (bound to {claimed[target]})" for target in found if target in claimed)
            reasons[name] = f"its input {taken} is taken by an explicit binding"
        if kept:
            targets[name] = kept
    targets.update({name: list(found) for name, found in explicit.items()})
    inserted: list[str] = []

    def fail(name: str, reason: str) -> ManifestError:
        return ManifestError(
            f"cannot bind it into workflow template '{template_name}': {reason}. Add a 'bindings' entry "
            f'such as {name}: "<node id or title>.<input name>"',
            sprite=sprite,
            field=name,
        )

    # img2img graphs get what a plain LoadImage -> VAEEncode chain lacks: a resize (so width/height
    # hold) and a latent repeat (so batch_size holds). Only when the field is not explicitly bound.
    vae_encode = reasons.pop("_vae_encode", None)
    load_image = reasons.pop("_load_image", None)
    if vae_encode is not None and load_image is not None:
        if "width" not in targets and "height" not in targets:
            scale_id = _insert_image_scale(graph, load_image, vae_encode)
            inserted.append(scale_id)
            targets["width"] = [Target(scale_id, "width")]
            targets["height"] = [Target(scale_id, "height")]
        if spec.batch_size != 1 and "batch_size" not in targets:
            repeat_id = _insert_latent_repeat(graph, vae_encode)
            inserted.append(repeat_id)
            targets["batch_size"] = [Target(repeat_id, "amount")]

    values: dict[str, Any] = {
        "prompt": spec.prompt,
        "negative_prompt": spec.negative_prompt,
        "seed": spec.seed,
        "width": spec.width,
        "height": spec.height,
        "steps": spec.steps,
        "cfg": float(spec.cfg),
        "sampler": spec.sampler,
        "scheduler": spec.scheduler,
        "denoise": float(spec.denoise),
        "checkpoint": spec.checkpoint,
        "batch_size": spec.batch_size,
        "output": output_prefix,
    }
    required = {
        "prompt": True,
        "negative_prompt": spec.negative_prompt != "",
        "seed": True,
        "width": True,
        "height": True,
        "steps": True,
        "cfg": True,
        "sampler": True,
        "scheduler": True,
        "denoise": float(spec.denoise) != 1.0,
        "checkpoint": True,
        "batch_size": spec.batch_size != 1,
        "output": True,
    }
    for name, needed in required.items():
        if needed and not targets.get(name):
            raise fail(name, reasons.get(name, "no input for it was found"))

    init_targets = tuple(targets.get("init_image", ()))
    if spec.init_image and not init_targets:
        raise fail("init_image", reasons.get("init_image", "the template has no LoadImage node"))
    if init_targets and not spec.init_image:
        raise ManifestError(
            f"workflow template '{template_name}' starts from an init image "
            f"({', '.join(map(str, init_targets))}); set 'init_image' or use a txt2img template",
            sprite=sprite,
            field="init_image",
        )

    fields: dict[Target, str] = {}
    for name, value in values.items():
        for target in targets.get(name, ()):
            _set_input(graph, target, value, name, template_name, sprite)
            fields[target] = name
    for target in init_targets:
        fields[target] = "init_image"

    outputs = targets["output"]
    if len({target.node for target in outputs}) != 1:
        raise fail("output", "it must name exactly one SaveImage node")
    checkpoint_node = targets["checkpoint"][0].node

    if spec.loras:
        inserted.extend(_inject_loras(graph, checkpoint_node, spec, fields, template_name, sprite))

    return BoundWorkflow(
        graph=graph,
        template=template_name,
        fields=fields,
        output_node=outputs[0].node,
        checkpoint_node=checkpoint_node,
        init_targets=init_targets,
        inserted=tuple(inserted),
    )


def template_defaults(template: Graph) -> dict[str, Any]:
    """The literal values a template holds for each field it binds automatically (e.g. its batch size)."""
    auto, _ = _auto_targets(template)
    out: dict[str, Any] = {}
    for name, found in auto.items():
        if name in ("output", "init_image") or not found:
            continue
        value = template[found[0].node]["inputs"].get(found[0].input)
        if value is not None and not _is_link(value):
            out[name] = value
    return out


def model_set(spec: GenerationSpec) -> tuple[str, tuple[tuple[str, float], ...]]:
    """What the server must have loaded to run ``spec``: the checkpoint and the weighted LoRA chain."""
    return (spec.checkpoint, tuple((lora.name, float(lora.weight)) for lora in spec.loras))


# --- explicit bindings -------------------------------------------------------------------------------


def _explicit_targets(
    graph: Graph, bindings: Mapping[str, Any], template_name: str, sprite: str | None
) -> dict[str, list[Target]]:
    out: dict[str, list[Target]] = {}
    for name, spec_value in (bindings or {}).items():
        if name not in FIELDS:
            raise ManifestError(
                f"unknown field '{name}' in bindings (bindable: {', '.join(FIELDS)})",
                sprite=sprite,
                field="bindings",
            )
        items = [spec_value] if isinstance(spec_value, str) else spec_value
        if not isinstance(items, list | tuple) or not items or not all(isinstance(item, str) for item in items):
            raise ManifestError(
                f'bindings.{name} must be "<node id or title>.<input name>" or a list of them',
                sprite=sprite,
                field="bindings",
            )
        out[name] = [_resolve_target(graph, item, name, template_name, sprite) for item in items]
    return out


def _resolve_target(graph: Graph, text: str, name: str, template_name: str, sprite: str | None) -> Target:
    node_ref, dot, input_name = text.rpartition(".")
    if not dot or not node_ref or not input_name:
        raise ManifestError(
            f"bindings.{name}: '{text}' must look like \"<node id or title>.<input name>\"",
            sprite=sprite,
            field="bindings",
        )
    if node_ref in graph:
        return Target(node_ref, input_name)
    titled = [node_id for node_id, node in graph.items() if _title(node) == node_ref]
    if len(titled) == 1:
        return Target(titled[0], input_name)
    if len(titled) > 1:
        raise ManifestError(
            f"bindings.{name}: several nodes of workflow template '{template_name}' are titled '{node_ref}' "
            f"({', '.join(titled)}); use a node id",
            sprite=sprite,
            field="bindings",
        )
    raise ManifestError(
        f"bindings.{name}: workflow template '{template_name}' has no node with id or title '{node_ref}'",
        sprite=sprite,
        field="bindings",
    )


# --- automatic discovery -----------------------------------------------------------------------------


def _auto_targets(graph: Graph) -> tuple[dict[str, list[Target]], dict[str, Any]]:
    """Targets found by walking from the sampler, and why the others were not found.

    The reasons dict also carries two private entries, ``_vae_encode`` and ``_load_image``, naming the
    img2img nodes when the latent comes from an encoded image.
    """
    found: dict[str, list[Target]] = {}
    reasons: dict[str, Any] = {}
    sampler_ids = [node_id for node_id, node in graph.items() if node["class_type"] in SAMPLERS]

    save_ids = [node_id for node_id, node in graph.items() if node["class_type"] in OUTPUT_CLASSES]
    if len(sampler_ids) == 1 and len(save_ids) > 1:
        downstream = _downstream(graph, sampler_ids[0])
        save_ids = [node_id for node_id in save_ids if node_id in downstream]
    if len(save_ids) == 1:
        found["output"] = [Target(save_ids[0], "filename_prefix")]
    else:
        reasons["output"] = (
            "the template has no SaveImage node"
            if not save_ids
            else f"it has several SaveImage nodes ({', '.join(save_ids)})"
        )

    sampler_fields = (
        "prompt",
        "negative_prompt",
        "seed",
        "steps",
        "cfg",
        "sampler",
        "scheduler",
        "denoise",
        "width",
        "height",
        "batch_size",
        "checkpoint",
        "init_image",
    )
    if len(sampler_ids) != 1:
        why = (
            "the template has no KSampler or KSamplerAdvanced node"
            if not sampler_ids
            else f"it has several samplers ({', '.join(sampler_ids)}), so it is not clear which one to use"
        )
        for name in sampler_fields:
            reasons[name] = why
        return found, reasons

    sampler_id = sampler_ids[0]
    sampler = graph[sampler_id]
    inputs = sampler["inputs"]
    scalar = {
        "seed": SAMPLERS[sampler["class_type"]],
        "steps": "steps",
        "cfg": "cfg",
        "sampler": "sampler_name",
        "scheduler": "scheduler",
        "denoise": "denoise",
    }
    for name, input_name in scalar.items():
        if input_name in inputs and not _is_link(inputs[input_name]):
            found[name] = [Target(sampler_id, input_name)]
        else:
            reasons[name] = f"{_label(graph, sampler_id)} has no literal '{input_name}' input"

    for name, input_name in (("prompt", "positive"), ("negative_prompt", "negative")):
        text_targets, why = _follow_text(graph, inputs.get(input_name))
        if text_targets:
            found[name] = text_targets
        else:
            reasons[name] = f"the sampler's '{input_name}' input {why}"

    checkpoint, why = _follow_checkpoint(graph, inputs.get("model"))
    if checkpoint:
        found["checkpoint"] = [checkpoint]
    else:
        reasons["checkpoint"] = f"the sampler's 'model' input {why}"

    _follow_latent(graph, inputs.get("latent_image"), found, reasons)
    return found, reasons


def _follow_text(graph: Graph, link: Any) -> tuple[list[Target], str]:
    for _ in range(_MAX_WALK):
        if not _is_link(link):
            return [], "is not linked to a text encoder"
        node_id = str(link[0])
        inputs = graph[node_id]["inputs"]
        text_inputs = [name for name in ("text", "text_g", "text_l") if isinstance(inputs.get(name), str)]
        if text_inputs:
            return [Target(node_id, name) for name in text_inputs], ""
        conditioning = [name for name, value in inputs.items() if "conditioning" in name and _is_link(value)]
        if len(conditioning) != 1:
            return [], f"leads to {_label(graph, node_id)}, which has no text input"
        link = inputs[conditioning[0]]
    return [], "passes through too many nodes"


def _follow_checkpoint(graph: Graph, link: Any) -> tuple[Target | None, str]:
    for _ in range(_MAX_WALK):
        if not _is_link(link):
            return None, "is not linked to a checkpoint loader"
        node_id = str(link[0])
        inputs = graph[node_id]["inputs"]
        if isinstance(inputs.get("ckpt_name"), str):
            return Target(node_id, "ckpt_name"), ""
        if not _is_link(inputs.get("model")):
            return None, f"leads to {_label(graph, node_id)}, which is no checkpoint loader"
        link = inputs["model"]
    return None, "passes through too many nodes"


def _follow_latent(graph: Graph, link: Any, found: dict[str, list[Target]], reasons: dict[str, Any]) -> None:
    size_why = "the sampler's latent does not come from an EmptyLatentImage or an encoded LoadImage"
    reasons.update(
        width=size_why, height=size_why, batch_size=size_why, init_image="the template has no LoadImage node"
    )
    for _ in range(_MAX_WALK):
        if not _is_link(link):
            return
        node_id = str(link[0])
        node = graph[node_id]
        inputs = node["inputs"]
        if node["class_type"] == "RepeatLatentBatch" and "batch_size" not in found:
            found["batch_size"] = [Target(node_id, "amount")]
            link = inputs.get("samples")
            continue
        if all(isinstance(inputs.get(name), int) for name in ("width", "height")) and not _is_link(
            inputs.get("samples")
        ):
            found["width"] = [Target(node_id, "width")]
            found["height"] = [Target(node_id, "height")]
            if isinstance(inputs.get("batch_size"), int):
                found.setdefault("batch_size", [Target(node_id, "batch_size")])
            return
        if _is_link(inputs.get("pixels")):
            _follow_pixels(graph, node_id, inputs["pixels"], found, reasons)
            return
        next_links = [value for name, value in inputs.items() if _is_link(value) and name in ("samples", "latent")]
        if len(next_links) != 1:
            return
        link = next_links[0]


def _follow_pixels(
    graph: Graph, vae_encode: str, link: Any, found: dict[str, list[Target]], reasons: dict[str, Any]
) -> None:
    reasons["batch_size"] = "an encoded image gives one latent"
    for _ in range(_MAX_WALK):
        if not _is_link(link):
            return
        node_id = str(link[0])
        node = graph[node_id]
        inputs = node["inputs"]
        if node["class_type"] == "LoadImage" and isinstance(inputs.get("image"), str):
            found["init_image"] = [Target(node_id, "image")]
            reasons["_vae_encode"] = vae_encode
            reasons["_load_image"] = node_id
            return
        if "width" not in found and all(isinstance(inputs.get(name), int) for name in ("width", "height")):
            found["width"] = [Target(node_id, "width")]
            found["height"] = [Target(node_id, "height")]
        image_links = [value for name, value in inputs.items() if _is_link(value) and name in ("image", "pixels")]
        if len(image_links) != 1:
            return
        link = image_links[0]


# --- graph edits -------------------------------------------------------------------------------------


def _inject_loras(
    graph: Graph,
    loader: str,
    spec: GenerationSpec,
    fields: dict[Target, str],
    template_name: str,
    sprite: str | None,
) -> list[str]:
    """Insert one LoraLoader per LoRA between ``loader`` and every consumer of its MODEL and CLIP."""
    if graph[loader]["class_type"] not in MODEL_CLIP_LOADERS:
        raise ManifestError(
            f"workflow template '{template_name}' loads its model with {graph[loader]['class_type']}, "
            f"behind which LoRAs cannot be chained (supported: {', '.join(sorted(MODEL_CLIP_LOADERS))})",
            sprite=sprite,
            field="loras",
        )
    consumers = [
        (node_id, input_name, int(value[1]))
        for node_id, node in graph.items()
        for input_name, value in node["inputs"].items()
        if _is_link(value) and str(value[0]) == loader and int(value[1]) in (0, 1)
    ]
    ids: list[str] = []
    model_src: list[Any] = [loader, 0]
    clip_src: list[Any] = [loader, 1]
    for index, lora in enumerate(spec.loras):
        node_id = _new_id(graph)
        weight = float(lora.weight)
        graph[node_id] = {
            "class_type": "LoraLoader",
            "inputs": {
                "model": model_src,
                "clip": clip_src,
                "lora_name": lora.name,
                "strength_model": weight,
                "strength_clip": weight,
            },
            "_meta": {"title": f"pixelbuild LoRA {index + 1}"},
        }
        for input_name in ("lora_name", "strength_model", "strength_clip"):
            fields[Target(node_id, input_name)] = f"loras[{index}]"
        model_src, clip_src = [node_id, 0], [node_id, 1]
        ids.append(node_id)
    for node_id, input_name, slot in consumers:
        graph[node_id]["inputs"][input_name] = list(model_src if slot == 0 else clip_src)
    return ids


def _insert_image_scale(graph: Graph, load_image: str, vae_encode: str) -> str:
    """Resize the init image (nearest neighbour: pixel art) right after LoadImage."""
    node_id = _new_id(graph)
    graph[node_id] = {
        "class_type": "ImageScale",
        "inputs": {
            "image": [load_image, 0],
            "upscale_method": "nearest-exact",
            "width": 0,
            "height": 0,
            "crop": "disabled",
        },
        "_meta": {"title": "pixelbuild init image size"},
    }
    # Only the path into the VAEEncode is resized; other users of the image (a preview, say) keep it.
    on_path = _upstream_chain(graph, vae_encode)
    for other_id in on_path - {node_id}:
        inputs = graph[other_id]["inputs"]
        for input_name, value in inputs.items():
            if _is_link(value) and str(value[0]) == load_image and int(value[1]) == 0:
                inputs[input_name] = [node_id, 0]
    return node_id


def _insert_latent_repeat(graph: Graph, vae_encode: str) -> str:
    """Repeat the encoded latent ``batch_size`` times for every consumer of the VAEEncode."""
    node_id = _new_id(graph)
    consumers = [
        (other_id, input_name)
        for other_id, node in graph.items()
        for input_name, value in node["inputs"].items()
        if _is_link(value) and str(value[0]) == vae_encode
    ]
    graph[node_id] = {
        "class_type": "RepeatLatentBatch",
        "inputs": {"samples": [vae_encode, 0], "amount": 1},
        "_meta": {"title": "pixelbuild batch"},
    }
    for other_id, input_name in consumers:
        graph[other_id]["inputs"][input_name] = [node_id, 0]
    return node_id


def _set_input(graph: Graph, target: Target, value: Any, name: str, template_name: str, sprite: str | None) -> None:
    inputs = graph[target.node]["inputs"]
    if _is_link(inputs.get(target.input)):
        raise ManifestError(
            f"cannot bind it to {target} in workflow template '{template_name}': that input is a link to "
            f"node {inputs[target.input][0]}, not a value",
            sprite=sprite,
            field=name,
        )
    inputs[target.input] = value


# --- helpers -----------------------------------------------------------------------------------------


def _is_link(value: Any) -> bool:
    return (
        isinstance(value, list)
        and len(value) == 2
        and isinstance(value[0], str | int)
        and not isinstance(value[0], bool)
        and isinstance(value[1], int)
        and not isinstance(value[1], bool)
    )


def _title(node: Mapping[str, Any]) -> str | None:
    meta = node.get("_meta")
    title = meta.get("title") if isinstance(meta, Mapping) else None
    return title if isinstance(title, str) else None


def _label(graph: Graph, node_id: str) -> str:
    return f"node {node_id} ({graph[node_id]['class_type']})"


def _new_id(graph: Graph) -> str:
    # Numeric ids, above every numeric id in the template: what ComfyUI's own frontend produces.
    numbers = [int(node_id) for node_id in graph if node_id.isdigit()]
    return str(max(numbers, default=0) + 1)


def _links(node: Mapping[str, Any]) -> Iterable[str]:
    return (str(value[0]) for value in node["inputs"].values() if _is_link(value))


def _downstream(graph: Graph, start: str) -> set[str]:
    consumers: dict[str, set[str]] = {}
    for node_id, node in graph.items():
        for source in _links(node):
            consumers.setdefault(source, set()).add(node_id)
    seen: set[str] = set()
    stack = [start]
    while stack:
        for nxt in consumers.get(stack.pop(), ()):
            if nxt not in seen:
                seen.add(nxt)
                stack.append(nxt)
    return seen


def _upstream_chain(graph: Graph, start: str) -> set[str]:
    seen = {start}
    stack = [start]
    while stack:
        for source in _links(graph[stack.pop()]):
            if source not in seen:
                seen.add(source)
                stack.append(source)
    return seen
