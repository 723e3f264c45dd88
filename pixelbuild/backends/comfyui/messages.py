"""Typed views of what a ComfyUI server sends: websocket messages, POST /prompt answers, history entries.

Parsers are tolerant: a message of an unknown type, or with unexpected fields, becomes ``Other`` rather
than an exception, because a newer server adding a field must not break a build.
"""

from __future__ import annotations

import json
import re
import struct
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

# --- websocket messages ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Status:
    """Queue length broadcast (``sid`` only in the first frame after connecting)."""

    queue_remaining: int | None
    sid: str | None = None


@dataclass(frozen=True, slots=True)
class ExecutionStart:
    """A prompt started running."""

    prompt_id: str


@dataclass(frozen=True, slots=True)
class ExecutionCached:
    """Nodes whose outputs came from the server's cache."""

    prompt_id: str
    nodes: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Executing:
    """A node started; ``node`` None means the prompt is over (always the last message of a prompt)."""

    prompt_id: str | None
    node: str | None


@dataclass(frozen=True, slots=True)
class Progress:
    """Sampler step ``value`` of ``max``."""

    prompt_id: str | None
    node: str | None
    value: int
    max: int


@dataclass(frozen=True, slots=True)
class ImageRef:
    """An image on the server, as ``/view`` wants it."""

    filename: str
    subfolder: str
    type: str


@dataclass(frozen=True, slots=True)
class Executed:
    """An output node finished (replayed with the first run's files when cached)."""

    prompt_id: str
    node: str
    images: tuple[ImageRef, ...]


@dataclass(frozen=True, slots=True)
class ExecutionSuccess:
    """The prompt ran to the end."""

    prompt_id: str


@dataclass(frozen=True, slots=True)
class ExecutionError:
    """A node raised while running."""

    prompt_id: str
    node_id: str | None
    node_type: str | None
    exception_type: str
    exception_message: str
    traceback: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ExecutionInterrupted:
    """The prompt was interrupted (``POST /interrupt``)."""

    prompt_id: str
    node_id: str | None
    node_type: str | None


@dataclass(frozen=True, slots=True)
class Other:
    """Anything else (``progress_state``, ``feature_flags``, binary previews, unknown types)."""

    type: str
    data: Any = None


Message = (
    Status
    | ExecutionStart
    | ExecutionCached
    | Executing
    | Progress
    | Executed
    | ExecutionSuccess
    | ExecutionError
    | ExecutionInterrupted
    | Other
)
TERMINAL = (ExecutionSuccess, ExecutionError, ExecutionInterrupted)


def parse_ws_text(text: str) -> Message:
    """Parse one text frame ``{"type", "data"}``."""
    try:
        frame = json.loads(text)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return Other("invalid", text[:200])
    if not isinstance(frame, Mapping) or not isinstance(frame.get("type"), str):
        return Other("invalid", frame)
    return parse_ws_message(frame["type"], frame.get("data"))


def parse_ws_message(kind: str, data: Any) -> Message:
    """Parse a message given its type and data payload."""
    if not isinstance(data, Mapping):
        return Other(kind, data)
    prompt_id = _opt_str(data.get("prompt_id"))
    try:
        if kind == "status":
            info = data.get("status", {}).get("exec_info", {})
            remaining = info.get("queue_remaining")
            return Status(remaining if isinstance(remaining, int) else None, _opt_str(data.get("sid")))
        if kind == "executing":
            return Executing(prompt_id, _opt_str(data.get("node")))
        if kind == "progress":
            return Progress(prompt_id, _opt_str(data.get("node")), int(data["value"]), int(data["max"]))
        if prompt_id is None:
            return Other(kind, data)
        if kind == "execution_start":
            return ExecutionStart(prompt_id)
        if kind == "execution_cached":
            return ExecutionCached(prompt_id, tuple(str(node) for node in data.get("nodes") or ()))
        if kind == "executed":
            return Executed(prompt_id, str(data["node"]), parse_images(data.get("output")))
        if kind == "execution_success":
            return ExecutionSuccess(prompt_id)
        if kind == "execution_error":
            return parse_execution_error(data)
        if kind == "execution_interrupted":
            return ExecutionInterrupted(prompt_id, _opt_str(data.get("node_id")), _opt_str(data.get("node_type")))
    except (KeyError, TypeError, ValueError, AttributeError):
        return Other(kind, data)
    return Other(kind, data)


def parse_ws_binary(payload: bytes) -> Other:
    """Describe a binary frame (previews: ``u32be event`` + payload); we never ask for them."""
    if len(payload) < 4:
        return Other("binary", None)
    (event,) = struct.unpack(">I", payload[:4])
    names = {1: "preview_image", 2: "unencoded_preview_image", 3: "text", 4: "preview_image_with_metadata"}
    return Other(names.get(event, f"binary_{event}"), None)


def parse_execution_error(data: Mapping[str, Any]) -> ExecutionError:
    """Parse an ``execution_error`` payload (from the websocket or a history entry)."""
    trace = data.get("traceback") or ()
    return ExecutionError(
        prompt_id=str(data.get("prompt_id", "")),
        node_id=_opt_str(data.get("node_id")),
        node_type=_opt_str(data.get("node_type")),
        exception_type=str(data.get("exception_type", "")),
        exception_message=str(data.get("exception_message", "")).strip(),
        traceback=tuple(str(line) for line in trace) if isinstance(trace, list) else (),
    )


#: What a prompt id may look like (uuid4 strings, ComfyUI's and ours): it goes into URLs such as /history/{id}.
_PROMPT_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")
#: The longest file name a server may name (a file name on any common file system).
_MAX_NAME = 255


def valid_prompt_id(value: Any) -> bool:
    """Whether ``value`` may be used as a prompt id (in URLs, queues): a short word of letters, digits, ``-_``."""
    return isinstance(value, str) and _PROMPT_ID.fullmatch(value) is not None


def _safe_name(name: str, *, folder: bool) -> bool:
    # Names go back to the server as /view parameters: no way up, no absolute path, no control character.
    if len(name) > (4 * _MAX_NAME if folder else _MAX_NAME) or any(ord(char) < 32 for char in name):
        return False
    if "\\" in name or name.startswith("/") or ":" in name:
        return False
    parts = name.split("/")
    if not folder and len(parts) > 1:
        return False
    return all(part not in ("", ".", "..") for part in parts) if name else folder


def parse_images(output: Any) -> tuple[ImageRef, ...]:
    """The ``images`` of one node's output, in order (``[]`` when there are none).

    An image whose file name, subfolder or type could point ``/view`` elsewhere (``..``, an absolute path)
    is left out: the caller then sees fewer images than it asked for, and says so.
    """
    if not isinstance(output, Mapping):
        return ()
    images = output.get("images") or ()
    refs = []
    for image in images if isinstance(images, list) else ():
        if isinstance(image, Mapping) and isinstance(image.get("filename"), str):
            ref = ImageRef(
                str(image["filename"]),
                str(image.get("subfolder") or ""),
                str(image.get("type") or "output"),
            )
            names_ok = _safe_name(ref.filename, folder=False) and _safe_name(ref.subfolder, folder=True)
            if names_ok and ref.type in ("output", "temp", "input"):
                refs.append(ref)
    return tuple(refs)


# --- POST /prompt ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class InputError:
    """One problem with one input of one node, from ``node_errors``."""

    type: str
    message: str
    details: str
    input_name: str | None = None
    received_value: Any = None
    options: tuple[str, ...] | None = None  # the allowed values of a combo, when the server sent them


@dataclass(frozen=True, slots=True)
class NodeError:
    """A node that failed validation."""

    node_id: str
    class_type: str | None
    errors: tuple[InputError, ...]


@dataclass(frozen=True, slots=True)
class PromptAccepted:
    """200 from POST /prompt. ``node_errors`` non-empty means some outputs were dropped: a failure for us."""

    prompt_id: str
    number: int | None
    node_errors: tuple[NodeError, ...] = ()


@dataclass(frozen=True, slots=True)
class PromptRejected:
    """400 from POST /prompt: ``{"error": {type, message, details, extra_info}, "node_errors": {...}}``."""

    type: str
    message: str
    details: str
    node_errors: tuple[NodeError, ...] = field(default=())


class UnexpectedAnswer(Exception):
    """The server answered something this client cannot read (not a ComfyUI, a proxy error page, ...)."""


def parse_prompt_response(status: int, body: bytes) -> PromptAccepted | PromptRejected:
    """Interpret POST /prompt's answer; 5xx is the caller's business (retry), anything unreadable raises."""
    try:
        data = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise UnexpectedAnswer(f"HTTP {status} with a body that is not JSON: {body[:120]!r}") from None
    if not isinstance(data, Mapping):
        raise UnexpectedAnswer(f"HTTP {status} with unexpected JSON: {str(data)[:120]}")
    node_errors = parse_node_errors(data.get("node_errors"))
    if status == 200 and isinstance(data.get("prompt_id"), str):
        if not valid_prompt_id(data["prompt_id"]):
            raise UnexpectedAnswer(f"HTTP {status} with a prompt id that is not one: {data['prompt_id'][:60]!r}")
        number = data.get("number")
        return PromptAccepted(data["prompt_id"], number if isinstance(number, int) else None, node_errors)
    error = data.get("error")
    if isinstance(error, Mapping):
        return PromptRejected(
            type=str(error.get("type", "")),
            message=str(error.get("message", "")),
            details=str(error.get("details", "")),
            node_errors=node_errors,
        )
    if isinstance(error, str):  # older servers sent a bare string
        return PromptRejected(type="", message=error, details="", node_errors=node_errors)
    raise UnexpectedAnswer(f"HTTP {status} without prompt_id or error: {str(data)[:120]}")


def parse_node_errors(raw: Any) -> tuple[NodeError, ...]:
    """Parse ``node_errors`` (``{node_id: {errors: [...], dependent_outputs, class_type}}``)."""
    if not isinstance(raw, Mapping):
        return ()
    out = []
    for node_id, entry in raw.items():
        if not isinstance(entry, Mapping):
            continue
        errors = []
        for item in entry.get("errors") or ():
            if not isinstance(item, Mapping):
                continue
            extra: Mapping[str, Any] = item["extra_info"] if isinstance(item.get("extra_info"), Mapping) else {}
            errors.append(
                InputError(
                    type=str(item.get("type", "")),
                    message=str(item.get("message", "")),
                    details=str(item.get("details", "")),
                    input_name=_opt_str(extra.get("input_name")),
                    received_value=extra.get("received_value"),
                    options=combo_options(extra.get("input_config")),
                )
            )
        out.append(NodeError(str(node_id), _opt_str(entry.get("class_type")), tuple(errors)))
    return tuple(out)


# --- GET /history/{id} -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    """A finished prompt. ``outputs`` is keyed by output node id, in execution order."""

    prompt_id: str
    status: str
    completed: bool
    outputs: Mapping[str, tuple[ImageRef, ...]]
    error: ExecutionError | None = None
    interrupted: ExecutionInterrupted | None = None
    graph: Mapping[str, Any] | None = None  # the prompt as the server ran it


def parse_history(body: Any, prompt_id: str) -> HistoryEntry | None:
    """The entry for ``prompt_id`` in a ``/history/{id}`` answer; None while it is ``{}`` (not finished)."""
    if not isinstance(body, Mapping):
        raise UnexpectedAnswer(f"history is not a JSON object: {str(body)[:120]}")
    entry = body.get(prompt_id)
    if not isinstance(entry, Mapping):
        return None
    status: Mapping[str, Any] = entry["status"] if isinstance(entry.get("status"), Mapping) else {}
    outputs_raw: Mapping[str, Any] = entry["outputs"] if isinstance(entry.get("outputs"), Mapping) else {}
    outputs = {str(node): parse_images(output) for node, output in outputs_raw.items()}
    error: ExecutionError | None = None
    interrupted: ExecutionInterrupted | None = None
    for item in status.get("messages") or ():
        if not isinstance(item, list | tuple) or len(item) != 2 or not isinstance(item[1], Mapping):
            continue
        kind, data = item
        if kind == "execution_error":
            error = parse_execution_error({"prompt_id": prompt_id, **data})
        elif kind == "execution_interrupted":
            interrupted = ExecutionInterrupted(
                prompt_id, _opt_str(data.get("node_id")), _opt_str(data.get("node_type"))
            )
    row = entry.get("prompt")
    graph = row[2] if isinstance(row, list) and len(row) > 2 and isinstance(row[2], Mapping) else None
    return HistoryEntry(
        prompt_id=prompt_id,
        status=str(status.get("status_str", "")),
        completed=bool(status.get("completed", False)),
        outputs=outputs,
        error=error,
        interrupted=interrupted,
        graph=graph,
    )


def output_images(entry: HistoryEntry, output_node: str | None) -> tuple[ImageRef, ...]:
    """The images we keep: ``type: output`` of ``output_node`` (else of every node), in batch order."""
    if output_node is not None and output_node in entry.outputs:
        chosen = entry.outputs[output_node]
    else:
        chosen = tuple(image for images in entry.outputs.values() for image in images)
    return tuple(image for image in chosen if image.type == "output")


# --- helpers -----------------------------------------------------------------------------------------


def _opt_str(value: Any) -> str | None:
    if value is None:
        return None
    return str(value)


def combo_options(config: Any) -> tuple[str, ...] | None:
    """The allowed values in an ``input_config`` (``[[...], {...}]`` or ``["COMBO", {"options": [...]}]``)."""
    if not isinstance(config, list) or not config:
        return None
    head = config[0]
    if isinstance(head, list):
        return tuple(str(option) for option in head)
    if head == "COMBO" and len(config) > 1 and isinstance(config[1], Mapping):
        options = config[1].get("options")
        if isinstance(options, list):
            return tuple(str(option) for option in options)
    return None
