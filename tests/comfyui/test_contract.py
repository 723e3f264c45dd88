"""Contract tests: parsers and error mapping fed with frames and bodies recorded from ComfyUI 0.8.0."""

from __future__ import annotations

import json
import struct
from typing import Any

import pytest

from pixelbuild.backends.comfyui.client import EventStream, PromptWatch
from pixelbuild.backends.comfyui.errors import execution_error, interrupted_error, rejection_error
from pixelbuild.backends.comfyui.messages import (
    Executed,
    Executing,
    ExecutionCached,
    ExecutionError,
    ExecutionInterrupted,
    ExecutionStart,
    ExecutionSuccess,
    ImageRef,
    Other,
    Progress,
    PromptAccepted,
    PromptRejected,
    Status,
    UnexpectedAnswer,
    output_images,
    parse_history,
    parse_prompt_response,
    parse_ws_binary,
    parse_ws_message,
    parse_ws_text,
)
from pixelbuild.backends.comfyui.templates import builtin_template
from pixelbuild.backends.comfyui.workflow import BoundWorkflow, bind, load_template
from pixelbuild.errors import GenerationError
from tests.comfyui.util import fixture, lora, make_spec


def _frames(frames: list[dict[str, Any]]) -> list[Any]:
    out: list[Any] = []
    for frame in frames:
        if "binary_header_hex" in frame:
            out.append(parse_ws_binary(bytes.fromhex(frame["binary_header_hex"])))
        else:
            out.append(parse_ws_text(json.dumps(frame)))
    return out


def _significant(messages: list[Any]) -> list[Any]:
    return [message for message in messages if not isinstance(message, Other)]


def _bound(**overrides: Any) -> BoundWorkflow:
    # txt2img_sd15 has the recorded prompts' node ids (1..7), so node errors map back to fields.
    return bind(
        load_template(builtin_template("txt2img_sd15")),
        make_spec(**overrides),
        template_name="txt2img_sd15",
        output_prefix="pixelbuild/x",
    )


def test_txt2img_message_sequence() -> None:
    data = fixture("txt2img.json")
    prompt_id = data["response"]["prompt_id"]
    messages = _frames(data["ws_frames"])
    assert messages[0] == Status(0, data["ws_frames"][0]["data"]["sid"])
    significant = [message for message in _significant(messages) if not isinstance(message, Status)]
    assert significant[0] == ExecutionStart(prompt_id)
    assert significant[1] == ExecutionCached(prompt_id, ())
    steps = [message for message in significant if isinstance(message, Progress)]
    assert [(step.value, step.max, step.node) for step in steps] == [
        (1, 4, "5"),
        (2, 4, "5"),
        (3, 4, "5"),
        (4, 4, "5"),
    ]
    executing = [message.node for message in significant if isinstance(message, Executing)]
    assert executing == ["1", "4", "3", "2", "5", "6", "7", None]
    assert Executed(prompt_id, "7", (ImageRef("txt2img_00001_.png", "pixelbuild", "output"),)) in significant
    assert significant[-2] == ExecutionSuccess(prompt_id)
    assert messages[-1] == Executing(prompt_id, None)  # always last
    assert all(
        isinstance(message, Other) and message.type == "progress_state"
        for message in messages
        if isinstance(message, Other)
    )


def test_watch_follows_a_recorded_prompt() -> None:
    data = fixture("txt2img.json")
    prompt_id = data["response"]["prompt_id"]
    steps: list[Progress] = []
    watch = PromptWatch(prompt_id, on_progress=steps.append)
    for message in _frames(data["ws_frames"]):
        if getattr(message, "prompt_id", None) == prompt_id:
            before_end = watch.ended
            watch.feed(message)
            assert not before_end
    assert watch.finished and watch.ended
    assert watch.outcome == ExecutionSuccess(prompt_id)
    assert [done.node for done in watch.executed] == ["7"]
    assert len(steps) == 4


def test_without_client_id_only_broadcasts_arrive() -> None:
    data = fixture("ws_routing.json")
    prompt_id = data["prompt_without_client_id"]
    messages = _frames(data["frames_on_A_for_prompt_without_client_id"])
    kinds = {type(message) for message in messages}
    assert kinds == {Status, Progress, Other}
    watch = PromptWatch(prompt_id)
    for message in messages:
        if getattr(message, "prompt_id", None) == prompt_id:
            watch.feed(message)
    assert not watch.finished  # the client must poll /history
    assert parse_history(data["history_poll_pending"], prompt_id) is None
    other = _frames(data["frames_on_B_during_prompt_with_client_id_A"])
    assert all(isinstance(message, Status) for message in other)


def test_cached_resubmission_replays_first_filenames() -> None:
    data = fixture("cached_resubmit.json")
    executed = [message for message in _frames(data["ws_frames"]) if isinstance(message, Executed)]
    assert [message.images[0].filename for message in executed] == [
        "cache_00001_.png",
        "cache_00001_.png",  # identical prompt: nothing ran, the old file is reported
        "cache_00002_.png",
    ]
    cached = [message for message in _frames(data["ws_frames"]) if isinstance(message, ExecutionCached)]
    assert cached[1].nodes == ("1", "2", "3", "4", "5", "6", "7")
    second_id = executed[1].prompt_id
    entry = parse_history(data["history_second"], second_id)
    assert entry is not None and entry.status == "success"
    assert output_images(entry, "7") == (ImageRef("cache_00001_.png", "pixelbuild", "output"),)


def test_batch_history_keeps_output_images_in_order_and_drops_temp() -> None:
    data = fixture("lora_batch.json")
    history = data["history"]
    prompt_id = next(iter(history))
    entry = parse_history(history, prompt_id)
    assert entry is not None
    assert list(entry.outputs) == ["9", "7"]  # execution order
    kept = output_images(entry, "7")
    assert [image.filename for image in kept] == [f"lora_batch_0000{i}_.png" for i in range(1, 5)]
    assert output_images(entry, None) == kept  # without a node: every output-type image
    assert all(image.type == "temp" for image in entry.outputs["9"])


def test_execution_error_frames_and_history() -> None:
    data = fixture("execution_error.json")
    prompt_id = data["response"]["prompt_id"]
    messages = _significant(_frames(data["ws_frames"]))
    errors = [message for message in messages if isinstance(message, ExecutionError)]
    assert len(errors) == 1
    error = errors[0]
    assert (error.node_id, error.node_type) == ("8", "LoraLoader")
    assert error.exception_type == "safetensors._safetensors_rust.SafetensorError"
    assert error.exception_message.startswith("Error while deserializing header")
    assert messages[-1] == Executing(prompt_id, None)
    assert isinstance(messages[-2], Status)
    entry = parse_history(data["history"], prompt_id)
    assert entry is not None
    assert (entry.status, entry.completed, dict(entry.outputs)) == ("error", False, {})
    assert entry.error is not None and entry.error.node_type == "LoraLoader"

    # Our LoRA injection gives the recorded node id "8" to the first LoRA: the error names the field.
    bound = _bound(loras=(lora("corrupt-test.safetensors"),))
    assert bound.inserted == ("8",)
    message = execution_error(error, sprite="hero", server="http://gpu:8188", bound=bound)
    assert message.field == "loras[0]"
    assert str(message) == (
        "sprite 'hero': field 'loras[0]': ComfyUI at http://gpu:8188 failed while running node 8 "
        '(LoraLoader "pixelbuild LoRA 1"): SafetensorError: Error while deserializing header: invalid JSON '
        "in header: key must be a string at line 1 column 2"
    )


def test_interrupted_frames_and_history() -> None:
    data = fixture("interrupt.json")
    interrupted = [message for message in _frames(data["ws_frames"]) if isinstance(message, ExecutionInterrupted)]
    assert [(message.node_id, message.node_type) for message in interrupted] == [
        ("5", "KSampler"),
        ("5", "KSampler"),
    ]
    history = data["history_interrupted"]
    prompt_id = next(iter(history))
    entry = parse_history(history, prompt_id)
    assert entry is not None
    assert (entry.status, entry.completed, dict(entry.outputs)) == ("error", False, {})
    assert entry.interrupted == ExecutionInterrupted(prompt_id, "5", "KSampler")
    text = str(interrupted_error(entry.interrupted, sprite="hero", server="http://s"))
    assert "interrupted" in text and "node 5 (KSampler)" in text and text.startswith("sprite 'hero'")


def test_accepted_prompt() -> None:
    data = fixture("txt2img.json")
    answer = parse_prompt_response(200, json.dumps(data["response"]).encode())
    assert answer == PromptAccepted(data["response"]["prompt_id"], 0, ())


EXPECTED = {
    "(a) unknown class_type": (
        "workflow",
        ["rejected workflow 'txt2img_sd15'", "NoSuchNode does not exist", "#9"],
    ),
    "(a2) node without class_type": ("workflow", ["missing the class_type property", "#4"]),
    "(b) missing required input KSampler.steps": (
        "steps",
        ["node 5 (KSampler) is missing its required input 'steps'"],
    ),
    "(b2) missing required link input VAEDecode.vae": ("workflow", ["node 6 (VAEDecode", "'vae'"]),
    "(c) unknown ckpt_name": (
        "checkpoint",
        ["has no checkpoint 'does-not-exist.safetensors'; it has 'tiny-sd15.safetensors'"],
    ),
    "(c2) width below min, steps not int, unknown sampler": (
        "width",
        [
            "width: Value 8 smaller than min of 16 (node 4",
            "'no_such_sampler' is not an allowed value of 'sampler_name'",
            "input 'steps' got 'four'",
        ],
    ),
    "(c3) link to a node id that does not exist": ("workflow", ["missing or broken ('99')"]),
    "(c4) link with wrong type (CONDITIONING into LATENT)": ("workflow", ["received_type(CONDITIONING)"]),
    "(d2) JSON without 'prompt' key": (None, ["no_prompt: No prompt provided"]),
    "(d3) empty prompt object": ("workflow", ["no output node"]),
    "(d4) prompt is a list": ("workflow", ["no output node"]),
    "(e) no output node (SaveImage removed)": ("workflow", ["no output node"]),
}


@pytest.mark.parametrize("case", fixture("prompt_errors.json"), ids=lambda case: case["label"])
def test_every_recorded_error_shape_maps_to_a_clear_message(case: dict[str, Any]) -> None:
    if case["status"] == 500:
        assert case["content_type"].startswith("text/plain")
        with pytest.raises(UnexpectedAnswer):  # the client treats it as a server failure (retried)
            parse_prompt_response(500, case["response"].encode())
        return
    answer = parse_prompt_response(case["status"], json.dumps(case["response"]).encode())
    assert isinstance(answer, PromptRejected)
    assert answer.type == case["response"]["error"]["type"]
    error = rejection_error(answer, sprite="hero", server="http://gpu:8188", bound=_bound())
    assert isinstance(error, GenerationError)
    field, fragments = EXPECTED[case["label"]]
    text = str(error)
    assert text.startswith("sprite 'hero': ")
    assert error.field == field
    assert "http://gpu:8188" in text
    for fragment in fragments:
        assert fragment in text, text


def test_unknown_checkpoint_suggests_the_closest() -> None:
    case = next(case for case in fixture("prompt_errors.json") if case["label"] == "(c) unknown ckpt_name")
    body = json.loads(json.dumps(case["response"]).replace("does-not-exist", "tiny-sd16"))
    answer = parse_prompt_response(400, json.dumps(body).encode())
    assert isinstance(answer, PromptRejected)
    text = str(rejection_error(answer, sprite="hero", server="http://s", bound=_bound()))
    assert "(did you mean 'tiny-sd15.safetensors'?)" in text


def test_accepted_with_node_errors_is_detected() -> None:
    # ComfyUI queues a prompt whose other outputs passed and reports the failed ones in node_errors.
    case = next(case for case in fixture("prompt_errors.json") if case["label"] == "(c) unknown ckpt_name")
    body = {"prompt_id": "p1", "number": 3, "node_errors": case["response"]["node_errors"]}
    answer = parse_prompt_response(200, json.dumps(body).encode())
    assert isinstance(answer, PromptAccepted)
    assert answer.node_errors[0].node_id == "1"
    assert answer.node_errors[0].errors[0].options == ("tiny-sd15.safetensors",)


def test_tolerant_parsing() -> None:
    assert parse_ws_text("not json") == Other("invalid", "not json")
    assert parse_ws_text('{"type": "brand_new", "data": {"x": 1}}') == Other("brand_new", {"x": 1})
    assert parse_ws_message("executed", {"prompt_id": "p"}) == Other("executed", {"prompt_id": "p"})
    assert parse_ws_message("progress", {"value": "x", "max": 1}) == Other("progress", {"value": "x", "max": 1})
    assert parse_ws_binary(struct.pack(">II", 1, 1) + b"\xff\xd8") == Other("preview_image")
    assert parse_ws_binary(struct.pack(">I", 4)) == Other("preview_image_with_metadata")
    assert parse_ws_binary(b"") == Other("binary")
    with pytest.raises(UnexpectedAnswer):
        parse_prompt_response(200, b"[1, 2]")
    with pytest.raises(UnexpectedAnswer):
        parse_history([], "p")
    assert parse_history({}, "p") is None


def test_messages_that_arrive_before_the_watch_are_replayed() -> None:
    # A fast (or cached) prompt can finish before POST /prompt has returned its id to us.
    data = fixture("txt2img.json")
    prompt_id = data["response"]["prompt_id"]
    stream = EventStream("ws://127.0.0.1:1/ws?clientId=x")  # never started: fed by hand
    for message in _frames(data["ws_frames"]):
        stream._dispatch(message)
    assert stream.queue_remaining == 0
    steps: list[Progress] = []
    watch = stream.watch(prompt_id, on_progress=steps.append)
    assert watch.finished and watch.outcome == ExecutionSuccess(prompt_id)
    assert [done.node for done in watch.executed] == ["7"]
    assert [step.value for step in steps] == [1, 2, 3, 4]
    stream.unwatch(prompt_id)
    assert stream.watch(prompt_id).finished is False  # consumed once
