"""Prompt validation the way ComfyUI 0.8.0 answers it (shapes from tests/fixtures/comfyui/prompt_errors.json).

``validate_prompt`` returns the 400 body (or None) plus the outputs that passed and the ``node_errors`` of
those that did not; a prompt with some good outputs is queued with non-empty ``node_errors``, as the real
server does.
"""

from __future__ import annotations

import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

Validator = Callable[[Any], str | None]  # value -> error text; replaces the combo check (LoadImage)
Custom = Mapping[tuple[str, str], Validator]  # keyed by (class_type, input_name)


@dataclass
class Verdict:
    """What POST /prompt should answer."""

    error: dict[str, Any] | None = None
    node_errors: dict[str, Any] = field(default_factory=dict)
    good_outputs: list[str] = field(default_factory=list)


def validate_prompt(prompt: Any, object_info: Mapping[str, Any], custom: Custom | None = None) -> Verdict:
    """Validate an API-format prompt against ``object_info``."""
    custom = custom or {}
    if not isinstance(prompt, Mapping):
        return Verdict(error=_error("prompt_no_outputs", "Prompt has no outputs", ""))
    outputs: list[str] = []
    for node_id, node in prompt.items():
        if not isinstance(node, Mapping) or "class_type" not in node:
            return Verdict(
                error=_error(
                    "invalid_prompt",
                    "Cannot execute because a node is missing the class_type property.",
                    f"Node ID '#{node_id}'",
                )
            )
        class_type = node["class_type"]
        if class_type not in object_info:
            return Verdict(
                error=_error(
                    "invalid_prompt",
                    f"Cannot execute because node {class_type} does not exist.",
                    f"Node ID '#{node_id}'",
                )
            )
        if object_info[class_type].get("output_node"):
            outputs.append(str(node_id))
    if not outputs:
        return Verdict(error=_error("prompt_no_outputs", "Prompt has no outputs", ""))

    validated: dict[str, tuple[bool, list[dict[str, Any]], str]] = {}
    verdict = Verdict()
    failed: list[tuple[str, list[dict[str, Any]]]] = []
    for output in outputs:
        try:
            ok, reasons, _ = _validate_inputs(prompt, output, validated, object_info, custom)
        except Exception as ex:  # mirrors ComfyUI's catch-all around one output
            ok = False
            reasons = [
                {
                    "type": "exception_during_validation",
                    "message": "Exception when validating node",
                    "details": str(ex),
                    "extra_info": {
                        "exception_type": type(ex).__name__,
                        "traceback": traceback.format_tb(ex.__traceback__),
                    },
                }
            ]
            validated[output] = (False, reasons, output)
        if ok:
            verdict.good_outputs.append(output)
            continue
        failed.append((output, reasons))
        for node_id, (node_ok, node_reasons, _) in validated.items():
            if node_ok or not node_reasons:
                continue
            entry = verdict.node_errors.setdefault(
                node_id,
                {
                    "errors": node_reasons,
                    "dependent_outputs": [],
                    "class_type": prompt[node_id]["class_type"],
                },
            )
            if output not in entry["dependent_outputs"]:
                entry["dependent_outputs"].append(output)
    if not verdict.good_outputs:
        details = "\n".join(f"{reason['message']}: {reason['details']}" for _, reasons in failed for reason in reasons)
        verdict.error = _error("prompt_outputs_failed_validation", "Prompt outputs failed validation", details)
    return verdict


def _validate_inputs(
    prompt: Mapping[str, Any],
    node_id: str,
    validated: dict[str, tuple[bool, list[dict[str, Any]], str]],
    object_info: Mapping[str, Any],
    custom: Custom,
) -> tuple[bool, list[dict[str, Any]], str]:
    if node_id in validated:
        return validated[node_id]
    node = prompt[node_id]
    inputs = node.get("inputs", {})
    class_type = node["class_type"]
    spec = object_info[class_type]["input"]
    required = spec.get("required", {})
    optional = spec.get("optional", {})
    errors: list[dict[str, Any]] = []
    valid = True
    for name, config in [*required.items(), *optional.items()]:
        if name not in inputs:
            if name in required:
                errors.append(
                    {
                        "type": "required_input_missing",
                        "message": "Required input is missing",
                        "details": name,
                        "extra_info": {"input_name": name},
                    }
                )
            continue
        value = inputs[name]
        input_type = config[0]
        options = config[1] if len(config) > 1 and isinstance(config[1], Mapping) else {}
        if isinstance(value, list):
            if len(value) != 2:
                errors.append(
                    {
                        "type": "bad_linked_input",
                        "message": "Bad linked input, must be a length-2 list of [node_id, slot_index]",
                        "details": name,
                        "extra_info": {"input_name": name, "input_config": config, "received_value": value},
                    }
                )
                continue
            source_id = value[0]
            source_class = prompt[source_id]["class_type"]  # KeyError for a dangling link, as in ComfyUI
            received = object_info[source_class]["output"][value[1]]
            if input_type != received and "*" not in (input_type, received):
                errors.append(
                    {
                        "type": "return_type_mismatch",
                        "message": "Return type mismatch between linked nodes",
                        "details": f"{name}, received_type({received}) mismatch input_type({input_type})",
                        "extra_info": {
                            "input_name": name,
                            "input_config": config,
                            "received_type": received,
                            "linked_node": value,
                        },
                    }
                )
                continue
            try:
                inner = _validate_inputs(prompt, source_id, validated, object_info, custom)
                if inner[0] is False:
                    valid = False
                    continue
            except Exception as ex:
                valid = False
                reasons = [
                    {
                        "type": "exception_during_inner_validation",
                        "message": "Exception when validating inner node",
                        "details": str(ex),
                        "extra_info": {
                            "input_name": name,
                            "input_config": config,
                            "exception_message": str(ex),
                            "exception_type": type(ex).__name__,
                            "traceback": traceback.format_tb(ex.__traceback__),
                            "linked_node": value,
                        },
                    }
                ]
                validated[source_id] = (False, reasons, source_id)
                continue
            continue

        check = custom.get((class_type, name))
        if check is not None:
            problem = check(value)
            if problem is not None:
                errors.append(
                    {
                        "type": "custom_validation_failed",
                        "message": "Custom validation failed for node",
                        "details": f"{name} - {problem}",
                        "extra_info": {"input_name": name, "input_config": config, "received_value": value},
                    }
                )
            continue

        combo = (
            input_type if isinstance(input_type, list) else options.get("options") if input_type == "COMBO" else None
        )
        if combo is not None:
            if value not in combo:
                big = len(combo) > 20  # ComfyUI does not send back long lists
                listed = f"(list of length {len(combo)})" if big else str(combo)
                errors.append(
                    {
                        "type": "value_not_in_list",
                        "message": "Value not in list",
                        "details": f"{name}: '{value}' not in {listed}",
                        "extra_info": {
                            "input_name": name,
                            "input_config": None if big else config,
                            "received_value": value,
                        },
                    }
                )
            continue
        try:
            converted = _convert(input_type, value)
        except Exception as ex:
            errors.append(
                {
                    "type": "invalid_input_type",
                    "message": f"Failed to convert an input value to a {input_type} value",
                    "details": f"{name}, {value}, {ex}",
                    "extra_info": {
                        "input_name": name,
                        "input_config": config,
                        "received_value": value,
                        "exception_message": str(ex),
                    },
                }
            )
            continue
        if "min" in options and isinstance(converted, int | float) and converted < options["min"]:
            errors.append(
                {
                    "type": "value_smaller_than_min",
                    "message": f"Value {converted} smaller than min of {options['min']}",
                    "details": name,
                    "extra_info": {"input_name": name, "input_config": config, "received_value": converted},
                }
            )
        elif "max" in options and isinstance(converted, int | float) and converted > options["max"]:
            errors.append(
                {
                    "type": "value_bigger_than_max",
                    "message": f"Value {converted} bigger than max of {options['max']}",
                    "details": name,
                    "extra_info": {"input_name": name, "input_config": config, "received_value": converted},
                }
            )
    result = (False, errors, node_id) if errors or not valid else (True, [], node_id)
    validated[node_id] = result
    return result


def _convert(input_type: Any, value: Any) -> Any:
    if input_type == "INT":
        return int(value)
    if input_type == "FLOAT":
        return float(value)
    if input_type == "STRING":
        return str(value)
    if input_type == "BOOLEAN":
        return bool(value)
    return value


def _error(kind: str, message: str, details: str) -> dict[str, Any]:
    return {"type": kind, "message": message, "details": details, "extra_info": {}}
