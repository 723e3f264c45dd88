"""Turn ComfyUI's error shapes into one-paragraph ``GenerationError`` messages naming sprite and field.

A validation error names a node and an input; the bound workflow knows which manifest field was bound
there (``ckpt_name`` -> ``checkpoint``, an injected LoraLoader -> ``loras[1]``), so the user is pointed
at the line to fix rather than at a node id they never wrote.
"""

from __future__ import annotations

from collections.abc import Sequence

from pixelbuild.backends.comfyui.messages import (
    ExecutionError,
    ExecutionInterrupted,
    InputError,
    NodeError,
    PromptRejected,
)
from pixelbuild.backends.comfyui.workflow import BoundWorkflow
from pixelbuild.errors import GenerationError
from pixelbuild.locate import did_you_mean

_MODEL_INPUTS = {"ckpt_name": "checkpoint", "lora_name": "LoRA", "vae_name": "VAE"}


def listing(options: Sequence[str], limit: int = 12) -> str:
    """``'a', 'b', ... (N in all)`` for messages; ``nothing`` when empty."""
    if not options:
        return "nothing"
    shown = ", ".join(f"'{option}'" for option in list(options)[:limit])
    return shown if len(options) <= limit else f"{shown}, ... ({len(options)} in all)"


def rejection_error(
    rejection: PromptRejected, *, sprite: str, server: str, bound: BoundWorkflow | None
) -> GenerationError:
    """A 400 from POST /prompt as a user message."""
    template = f"workflow '{bound.template}'" if bound else "the workflow"
    if rejection.node_errors:
        return node_errors_error(rejection.node_errors, sprite=sprite, server=server, bound=bound)
    if rejection.type == "invalid_prompt":
        details = f" ({rejection.details})" if rejection.details else ""
        return GenerationError(
            f"ComfyUI at {server} rejected {template}: {rejection.message}{details}",
            sprite=sprite,
            field="workflow",
        )
    if rejection.type == "prompt_no_outputs":
        return GenerationError(
            f"ComfyUI at {server} rejected {template}: it has no output node (SaveImage) the server can run",
            sprite=sprite,
            field="workflow",
        )
    details = f" ({rejection.details})" if rejection.details and rejection.details != rejection.message else ""
    kind = f"{rejection.type}: " if rejection.type else ""
    return GenerationError(
        f"ComfyUI at {server} rejected the prompt: {kind}{rejection.message}{details}", sprite=sprite
    )


def node_errors_error(
    node_errors: Sequence[NodeError], *, sprite: str, server: str, bound: BoundWorkflow | None
) -> GenerationError:
    """``node_errors`` (from a 400, or a 200 that dropped outputs) as one message; field of the first."""
    parts: list[str] = []
    fields: list[str] = []
    for node_error in node_errors:
        label = bound.node_label(node_error.node_id) if bound else _plain_label(node_error)
        for error in node_error.errors or (InputError("", "failed validation", ""),):
            field = bound.field_for(node_error.node_id, error.input_name) if bound and error.input_name else None
            fields.append(field or "workflow")
            parts.append(_input_error_text(error, label, field))
    return GenerationError(
        f"ComfyUI at {server} rejected the prompt: {'; '.join(parts)}",
        sprite=sprite,
        field=fields[0] if fields else None,
    )


def execution_error(error: ExecutionError, *, sprite: str, server: str, bound: BoundWorkflow | None) -> GenerationError:
    """An ``execution_error`` (a node raised on the server) as a user message."""
    node = error.node_id or "?"
    label = bound.node_label(node) if bound and node in bound.graph else f"node {node} ({error.node_type or '?'})"
    field = bound.field_for(node) if bound and error.node_id else None
    exception = error.exception_message or "(no message)"
    kind = error.exception_type.rsplit(".", 1)[-1] if error.exception_type else "error"
    return GenerationError(
        f"ComfyUI at {server} failed while running {label}: {kind}: {exception}", sprite=sprite, field=field
    )


def interrupted_error(event: ExecutionInterrupted | None, *, sprite: str, server: str) -> GenerationError:
    """A prompt interrupted by someone else (not by our ``cancel``), after our retries."""
    where = f" at node {event.node_id} ({event.node_type})" if event and event.node_id else ""
    return GenerationError(
        f"the prompt was interrupted on ComfyUI at {server}{where}, by someone other than this build",
        sprite=sprite,
    )


def _input_error_text(error: InputError, label: str, field: str | None) -> str:
    name = error.input_name or "?"
    if error.type == "value_not_in_list":
        value = error.received_value
        kind = _MODEL_INPUTS.get(name)
        options = error.options or ()
        hint = did_you_mean(str(value), options, list_few=False, file_names=True) if options else ""
        has = f"; it has {listing(options)}" if options else ""
        if kind:
            return f"the server has no {kind} '{value}'{hint}{has}"
        return f"{label}: '{value}' is not an allowed value of '{name}'{hint}"
    if error.type == "required_input_missing":
        return f"{label} is missing its required input '{name}'"
    if error.type in ("value_smaller_than_min", "value_bigger_than_max"):
        return f"{field or name}: {error.message} ({label})"
    if error.type == "invalid_input_type":
        return f"{label}: input '{name}' got {error.received_value!r} ({error.message})"
    if error.type == "return_type_mismatch":
        return f"{label}: input '{name}' is linked to an output of the wrong type ({error.details})"
    if error.type == "exception_during_inner_validation":
        return f"{label}: an input links to a node that is missing or broken ({error.details})"
    details = f" ({error.details})" if error.details else ""
    return f"{label}: {error.message}{details}"


def _plain_label(node_error: NodeError) -> str:
    return f"node {node_error.node_id} ({node_error.class_type or '?'})"
