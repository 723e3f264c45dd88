"""Checks run before any GPU time: node types, inputs and values against ``/object_info``, model names against
``/models/*``, and optional sha256 pins of local model files.

Each problem is a ``GenerationError`` naming the sprite and the manifest field, with a "did you mean" from
what the server actually has.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pixelbuild.backends.comfyui.client import ComfyClient
from pixelbuild.backends.comfyui.errors import listing
from pixelbuild.backends.comfyui.messages import combo_options
from pixelbuild.backends.comfyui.workflow import BoundWorkflow, Target
from pixelbuild.errors import GenerationError
from pixelbuild.local.filehashes import FileHashCache
from pixelbuild.locate import did_you_mean
from pixelbuild.spec import GenerationSpec

_MODEL_INPUTS = {"ckpt_name": ("checkpoints", "checkpoint"), "lora_name": ("loras", "LoRA")}
_SKIP_VALUES = {("LoadImage", "image")}  # filled in by the upload, after preflight


@dataclass(frozen=True, slots=True)
class Catalog:
    """What one server offers: node classes and model files. Fetched once per run and server."""

    url: str
    version: str
    object_info: Mapping[str, Any]
    models: Mapping[str, tuple[str, ...]]  # folder -> names (from /models/{folder} or object_info)


class PreflightError(GenerationError):
    """Several preflight problems at once; ``problems`` holds each as a ``GenerationError``."""

    def __init__(self, problems: Sequence[GenerationError]) -> None:
        self.problems = list(problems)
        first = self.problems[0]
        super().__init__(first.message, sprite=first.sprite, field=first.field)

    def __str__(self) -> str:
        text = super().__str__()
        rest = self.problems[1:]
        if not rest:
            return text
        shown = "; ".join(str(problem) for problem in rest[:4])
        more = f"; and {len(rest) - 4} more" if len(rest) > 4 else ""
        return f"{text} (also: {shown}{more})"


def fetch_catalog(client: ComfyClient, version: str) -> Catalog:
    """Read /object_info and /models/{checkpoints,loras} from one server."""
    object_info = client.object_info()
    models: dict[str, tuple[str, ...]] = {}
    for folder, (class_type, input_name) in (
        ("checkpoints", ("CheckpointLoaderSimple", "ckpt_name")),
        ("loras", ("LoraLoader", "lora_name")),
    ):
        names = client.models(folder)
        if names is None:  # older servers: fall back to the loader's combo list
            names = list(combo_options(_input_config(object_info, class_type, input_name)) or ())
        models[folder] = tuple(names)
    return Catalog(client.url, version, object_info, models)


def check_bound(bound: BoundWorkflow, catalog: Catalog, *, sprite: str) -> list[GenerationError]:
    """Every node type, input and value of ``bound`` that ``catalog``'s server would reject."""
    problems: list[GenerationError] = []
    server = catalog.url
    info = catalog.object_info

    def report(message: str, node: str, input_name: str | None = None) -> None:
        field = bound.field_for(node, input_name)  # without an input: the field bound to the node, if one
        problems.append(GenerationError(message, sprite=sprite, field=field or "workflow"))

    for node_id, node in bound.graph.items():
        class_type = node["class_type"]
        label = bound.node_label(node_id)
        schema = info.get(class_type)
        if not isinstance(schema, Mapping):
            hint = did_you_mean(class_type, list(info), list_few=False, file_names=True)
            report(
                f"ComfyUI at {server} has no node type '{class_type}' ({label} of workflow "
                f"'{bound.template}'){hint}; "
                "is a custom node missing there?",
                node_id,
            )
            continue
        sections = schema.get("input") or {}
        required = sections.get("required") or {}
        optional = sections.get("optional") or {}
        inputs = node["inputs"]
        for name in required:
            if name not in inputs:
                report(f"{label} lacks the required input '{name}' (ComfyUI at {server})", node_id, name)
        for name, value in inputs.items():
            config = required.get(name, optional.get(name))
            if config is None:
                if Target(node_id, name) in bound.fields:  # our value would be silently ignored
                    known = ", ".join(list(required) + list(optional))
                    report(
                        f"{label} has no input '{name}' on ComfyUI at {server} (inputs: {known})",
                        node_id,
                        name,
                    )
                continue
            problem = _check_value(bound, node_id, name, value, config, catalog)
            if problem:
                report(problem, node_id, name)
    return problems


def check_pins(
    specs: Sequence[tuple[str, GenerationSpec]],
    models_dir: Path | None,
    hashes: FileHashCache,
    extra_pins: Mapping[str, str] | None = None,
) -> list[GenerationError]:
    """Verify sha256 pins (``Lora.sha256`` and ``extra_pins[name]``) against files under ``models_dir``.

    Without ``models_dir`` nothing can be checked and nothing is reported. ``hashes`` (a sha256
    ``FileHashCache``, saved here) spares re-reading model files of gigabytes while they are unchanged.
    """
    if models_dir is None:
        return []
    problems: list[GenerationError] = []
    checked: dict[tuple[str, str], str | None] = {}
    for sprite, spec in specs:
        wanted: list[tuple[str, str, str, str]] = []  # folder, name, sha256, field
        pin = (extra_pins or {}).get(spec.checkpoint)
        if pin:
            wanted.append(("checkpoints", spec.checkpoint, pin, "checkpoint"))
        for index, lora in enumerate(spec.loras):
            lora_pin = lora.sha256 or (extra_pins or {}).get(lora.name)
            if lora_pin:
                wanted.append(("loras", lora.name, lora_pin, f"loras[{index}]"))
        for folder, name, expected, field in wanted:
            if (folder, name) not in checked:
                path = models_dir / folder / name
                checked[(folder, name)] = hashes.hash(path) if path.is_file() else None
            actual = checked[(folder, name)]
            expected = expected.lower().removeprefix("sha256:")
            if actual is None:
                problems.append(
                    GenerationError(
                        f"'{name}' is pinned to sha256 {expected[:12]}… but {models_dir / folder / name} "
                        "does not exist, so the pin cannot be checked (fix models_dir, or remove the pin)",
                        sprite=sprite,
                        field=field,
                    )
                )
            elif actual != expected:
                problems.append(
                    GenerationError(
                        f"'{name}' is pinned to sha256 {expected[:12]}… but {models_dir / folder / name} has "
                        f"{actual[:12]}…: a different file than the manifest expects",
                        sprite=sprite,
                        field=field,
                    )
                )
    hashes.save()
    return problems


def _check_value(
    bound: BoundWorkflow, node_id: str, name: str, value: Any, config: Any, catalog: Catalog
) -> str | None:
    """Why the input ``name`` of node ``node_id`` is wrong for the server's node definition ``config``, or None."""
    if not isinstance(config, list) or not config:
        return None
    if _is_link(value):
        return _check_link(bound, node_id, name, value, config[0], catalog)
    if (bound.graph[node_id]["class_type"], name) in _SKIP_VALUES:
        return None
    choices = combo_options(config)
    if choices is not None:
        return _check_choice(name, value, choices, catalog)
    return _check_scalar(bound, node_id, name, value, config)


def _check_link(bound: BoundWorkflow, node_id: str, name: str, value: Any, kind: Any, catalog: Catalog) -> str | None:
    """Why the link ``value`` (``[source node, output slot]``) cannot feed an input of type ``kind``, or None."""
    label = bound.node_label(node_id)
    source = bound.graph.get(str(value[0]))
    if source is None:
        return f"{label}: input '{name}' links to node {value[0]}, which does not exist"
    source_schema = catalog.object_info.get(source["class_type"])
    if not isinstance(source_schema, Mapping):
        return None  # the unknown node type is reported on its own
    outputs = source_schema.get("output") or []
    slot = int(value[1])
    if slot >= len(outputs):
        return f"{label}: input '{name}' uses output {slot} of node {value[0]}, which has {len(outputs)}"
    produced = outputs[slot]
    wanted = "COMBO" if isinstance(kind, list) else kind
    if produced != wanted and "*" not in (produced, wanted) and not isinstance(produced, list):
        return f"{label}: input '{name}' needs {wanted} but gets a {produced} output of node {value[0]}"
    return None


def _check_choice(name: str, value: Any, choices: Sequence[Any], catalog: Catalog) -> str | None:
    """Why ``value`` is not one of a combo input's ``choices`` (a model: one the server has), or None."""
    server = catalog.url
    if name in _MODEL_INPUTS:
        folder, noun = _MODEL_INPUTS[name]
        choices = catalog.models.get(folder) or choices
        if value not in choices:
            hint = did_you_mean(str(value), choices, list_few=False, file_names=True)
            return f"ComfyUI at {server} has no {noun} '{value}'{hint}; it has {listing(choices)}"
        return None
    if value not in choices:
        noun = {"sampler_name": "sampler", "scheduler": "scheduler"}.get(name, f"value of '{name}'")
        hint = did_you_mean(str(value), choices, list_few=False, file_names=True)
        return f"'{value}' is not a {noun} ComfyUI at {server} knows{hint}; allowed: {listing(choices)}"
    return None


#: What a widget input of each kind must hold: (accepts the value, what it must be, whether it has a range).
_SCALARS: dict[str, tuple[Callable[[Any], bool], str, bool]] = {
    "INT": (lambda value: isinstance(value, int) and not isinstance(value, bool), "a whole number", True),
    "FLOAT": (lambda value: isinstance(value, int | float) and not isinstance(value, bool), "a number", True),
    "STRING": (lambda value: isinstance(value, str), "text", False),
    "BOOLEAN": (lambda value: isinstance(value, bool), "true or false", False),
}


def _check_scalar(bound: BoundWorkflow, node_id: str, name: str, value: Any, config: list[Any]) -> str | None:
    """Why ``value`` is not of the input's kind (INT, FLOAT, STRING, BOOLEAN) or outside its range, or None."""
    kind = config[0]
    rule = _SCALARS.get(kind) if isinstance(kind, str) else None
    if rule is None:
        return None
    accepts, must_be, ranged = rule
    label = bound.node_label(node_id)
    if not accepts(value):
        return f"{label}: input '{name}' must be {must_be}, not {value!r}"
    if not ranged:
        return None
    options = config[1] if len(config) > 1 and isinstance(config[1], Mapping) else {}
    what = bound.field_for(node_id, name) or name
    minimum, maximum = options.get("min"), options.get("max")
    if isinstance(minimum, int | float) and value < minimum:
        return f"{what} {value} is below the minimum {minimum} of {label}"
    if isinstance(maximum, int | float) and value > maximum:
        return f"{what} {value} is above the maximum {maximum} of {label}"
    return None


def _input_config(object_info: Mapping[str, Any], class_type: str, name: str) -> Any:
    schema = object_info.get(class_type) or {}
    sections = schema.get("input") or {}
    return (sections.get("required") or {}).get(name) or (sections.get("optional") or {}).get(name)


def _is_link(value: Any) -> bool:
    return isinstance(value, list) and len(value) == 2 and isinstance(value[1], int) and not isinstance(value[1], bool)
