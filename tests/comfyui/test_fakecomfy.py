"""The fake server against the recordings: error bodies, message order, caching, uploads, queues."""

from __future__ import annotations

import copy
import io
import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import numpy as np
import pytest
from PIL import Image
from websockets.sync.client import ClientConnection, connect

from pixelbuild.backends.comfyui.client import _NO_PROXY
from pixelbuild.testing import FakeComfyServer
from tests.comfyui.util import fixture

PROMPT = fixture("txt2img.json")["request"]["prompt"]


def _normalise(body: Any) -> Any:
    """Error bodies minus what differs run to run: tracebacks, and the order of one node's errors (ComfyUI
    iterates a set of input names)."""
    body = copy.deepcopy(body)
    for entry in (body.get("node_errors") or {}).values():
        for error in entry["errors"]:
            error.get("extra_info", {}).pop("traceback", None)
        entry["errors"].sort(key=lambda error: error["type"])
    return body


@contextmanager
def _socket(server: FakeComfyServer, client_id: str) -> Iterator[ClientConnection]:
    with connect(f"ws://127.0.0.1:{server.port}/ws?clientId={client_id}", close_timeout=1, **_NO_PROXY) as ws:
        yield ws


def _read_until_done(ws: ClientConnection, prompt_id: str, timeout: float = 10.0) -> list[dict[str, Any]]:
    frames = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        frame = json.loads(ws.recv(timeout=deadline - time.monotonic()))
        frames.append(frame)
        if frame["type"] == "executing" and frame["data"]["node"] is None and frame["data"]["prompt_id"] == prompt_id:
            return frames
    raise AssertionError("prompt did not finish")


def _kinds(frames: list[dict[str, Any]]) -> list[str]:
    out = []
    for frame in frames:
        kind = frame["type"]
        if kind == "progress_state":
            continue
        if kind in ("executing", "executed"):
            kind += f"({frame['data']['node']})"
        out.append(kind)
    return out


def _prompt(seed: int = 42, prefix: str = "pixelbuild/t", batch: int = 1) -> dict[str, Any]:
    prompt: dict[str, Any] = copy.deepcopy(PROMPT)
    prompt["5"]["inputs"]["seed"] = seed
    prompt["7"]["inputs"]["filename_prefix"] = prefix
    prompt["4"]["inputs"]["batch_size"] = batch
    return prompt


def _wait_history(http: httpx.Client, prompt_id: str, timeout: float = 10.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        body = http.get(f"/history/{prompt_id}").json()
        if body:
            entry = body[prompt_id]
            assert isinstance(entry, dict)
            return entry
        time.sleep(0.02)
    raise AssertionError("no history")


def _pixels(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


@pytest.mark.parametrize("case", fixture("prompt_errors.json"), ids=lambda case: case["label"])
def test_error_bodies_match_the_recording(fake: FakeComfyServer, case: dict[str, Any]) -> None:
    with httpx.Client(base_url=fake.url) as http:
        if case["request_body"] is not None:
            response = http.post("/prompt", json=case["request_body"])
        else:
            response = http.post("/prompt", content=case["request_body_raw"])
    assert response.status_code == case["status"]
    assert response.headers["content-type"] == case["content_type"]
    if case["status"] == 500:
        assert response.text == case["response"]
    else:
        assert _normalise(response.json()) == _normalise(case["response"])


def test_message_order_with_client_id(fake: FakeComfyServer) -> None:
    fake.knobs.image_time = 0.02
    with _socket(fake, "me") as ws, httpx.Client(base_url=fake.url) as http:
        first = json.loads(ws.recv(timeout=5))
        assert first == {
            "type": "status",
            "data": {"status": {"exec_info": {"queue_remaining": 0}}, "sid": "me"},
        }
        answer = http.post("/prompt", json={"prompt": PROMPT, "client_id": "me"}).json()
        assert set(answer) == {"prompt_id", "number", "node_errors"} and answer["node_errors"] == {}
        frames = _read_until_done(ws, answer["prompt_id"])
        history = http.get(f"/history/{answer['prompt_id']}").json()  # written before `executing` null
    kinds = _kinds(frames)
    assert kinds[:3] == ["status", "status", "execution_start"]
    assert kinds[3] == "execution_cached"
    assert kinds[-4:] == ["executed(7)", "execution_success", "status", "executing(None)"]
    assert kinds.count("progress") == 4
    executing = [kind[len("executing(") : -1] for kind in kinds if kind.startswith("executing(")]
    assert sorted(executing[:-1]) == ["1", "2", "3", "4", "5", "6", "7"]  # each node once, dependencies first
    assert executing.index("5") < executing.index("6") < executing.index("7")
    entry = history[answer["prompt_id"]]
    assert entry["status"]["status_str"] == "success" and entry["status"]["completed"] is True
    assert entry["outputs"] == {
        "7": {"images": [{"filename": "txt2img_00001_.png", "subfolder": "pixelbuild", "type": "output"}]}
    }
    assert entry["prompt"][1] == answer["prompt_id"] and entry["prompt"][4] == ["7"]


def test_without_client_id_only_broadcasts_and_history_is_empty_until_done(fake: FakeComfyServer) -> None:
    fake.knobs.image_time = 0.3
    with _socket(fake, "watcher") as ws, httpx.Client(base_url=fake.url) as http:
        ws.recv(timeout=5)
        prompt_id = http.post("/prompt", json={"prompt": _prompt(seed=1)}).json()["prompt_id"]
        assert http.get(f"/history/{prompt_id}").json() == {}
        entry = _wait_history(http, prompt_id)
        assert entry["status"]["status_str"] == "success"
        kinds = set()
        while True:
            try:
                kinds.add(json.loads(ws.recv(timeout=0.2))["type"])
            except TimeoutError:
                break
    assert kinds <= {"status", "progress", "progress_state"}
    assert "progress" in kinds


def test_identical_resubmission_replays_the_first_files(fake: FakeComfyServer) -> None:
    with _socket(fake, "me") as ws, httpx.Client(base_url=fake.url) as http:
        ws.recv(timeout=5)
        ids = []
        for seed in (42, 42, 43):
            prompt_id = http.post("/prompt", json={"prompt": _prompt(seed=seed), "client_id": "me"}).json()["prompt_id"]
            ids.append((prompt_id, _read_until_done(ws, prompt_id)))
    executed = [
        next(f for f in frames if f["type"] == "executed")["data"]["output"]["images"][0]["filename"]
        for _, frames in ids
    ]
    assert executed == ["t_00001_.png", "t_00001_.png", "t_00002_.png"]
    cached = [next(f for f in frames if f["type"] == "execution_cached")["data"]["nodes"] for _, frames in ids]
    assert cached[1] == ["1", "2", "3", "4", "5", "6", "7"]
    assert cached[2] == ["1", "2", "3", "4"]
    assert fake.executed == 2 and fake.images_made == 2


def test_uploads_dedup_rename_and_subfolders(fake: FakeComfyServer) -> None:
    recorded = [entry["response"] for entry in fixture("uploads.json")]
    one, two = b"\x89PNG first", b"\x89PNG second"
    with httpx.Client(base_url=fake.url) as http:

        def upload(data: bytes | None, **form: str) -> httpx.Response:
            files = {"image": ("slime.png", data, "image/png")} if data is not None else None
            return http.post("/upload/image", files=files, data={"type": "input", **form})

        answers = [
            upload(one, overwrite="true").json(),
            upload(one).json(),
            upload(two).json(),
            upload(two, subfolder="pixelbuild", overwrite="1").json(),
        ]
        missing = upload(None)
        assert http.get("/view", params={"filename": "slime (1).png", "subfolder": "", "type": "input"}).content == two
    assert answers == recorded[:4]
    assert missing.status_code == 400 == fixture("uploads.json")[4]["status"]


def test_view_rules(fake: FakeComfyServer) -> None:
    with httpx.Client(base_url=fake.url) as http:
        prompt_id = http.post("/prompt", json={"prompt": _prompt(prefix="pixelbuild/v")}).json()["prompt_id"]
        image = _wait_history(http, prompt_id)["outputs"]["7"]["images"][0]
        ok = http.get("/view", params=image)
        folded = http.get("/view", params={"filename": f"pixelbuild/{image['filename']}", "type": "output"})
        traversal = http.get("/view", params={"filename": "../../etc/passwd", "type": "output"})
        missing = http.get("/view", params={"filename": "nope.png", "subfolder": "", "type": "output"})
    assert ok.status_code == 200 and ok.headers["content-type"] == "image/png"
    assert json.loads(Image.open(io.BytesIO(ok.content)).info["prompt"])["5"]["inputs"]["seed"] == 42
    assert (folded.status_code, traversal.status_code, missing.status_code) == (404, 400, 404)


def test_batch_and_determinism(fake: FakeComfyServer) -> None:
    with httpx.Client(base_url=fake.url) as http:

        def run(prompt: dict[str, Any]) -> list[np.ndarray]:
            prompt_id = http.post("/prompt", json={"prompt": prompt}).json()["prompt_id"]
            images = _wait_history(http, prompt_id)["outputs"]["7"]["images"]
            return [_pixels(http.get("/view", params=image).content) for image in images]

        batch = run(_prompt(seed=5, batch=4, prefix="pixelbuild/b"))
        single = run(_prompt(seed=5, prefix="pixelbuild/s"))
        assert http.post("/free", json={"free_memory": True}).status_code == 200
        again = run(_prompt(seed=5, prefix="pixelbuild/s"))
        other_prefix = run(_prompt(seed=5, prefix="pixelbuild/other"))
    assert len(batch) == 4
    assert not np.array_equal(batch[0], single[0])  # batch image 0 is not the single image
    assert not np.array_equal(batch[0], batch[1])
    assert np.array_equal(single[0], again[0]) and np.array_equal(single[0], other_prefix[0])


def test_queue_delete_interrupt_and_free(fake: FakeComfyServer) -> None:
    # Long enough that the first prompt is still running while the test looks at the queue on a busy
    # machine (it is interrupted, never waited out).
    fake.knobs.image_time = 5.0
    with _socket(fake, "me") as ws, httpx.Client(base_url=fake.url) as http:
        ws.recv(timeout=5)
        ids = [
            http.post("/prompt", json={"prompt": _prompt(seed=s), "client_id": "me"}).json()["prompt_id"]
            for s in range(3)
        ]
        deadline = time.monotonic() + 30
        while fake.running_id() != ids[0] and time.monotonic() < deadline:
            time.sleep(0.01)
        queue = http.get("/queue").json()
        assert [row[1] for row in queue["queue_running"]] == [ids[0]]
        assert [row[1] for row in queue["queue_pending"]] == ids[1:]
        assert http.post("/queue", json={"delete": [ids[1], ids[0]]}).text == ""  # running one stays
        assert fake.pending_ids() == [ids[2]] and fake.running_id() == ids[0]
        http.post("/interrupt", json={"prompt_id": ids[2]})  # not running: no-op
        assert fake.running_id() == ids[0]
        http.post("/interrupt", json={"prompt_id": ids[0]})
        frames = _read_until_done(ws, ids[0])
        assert _kinds(frames)[-3:] == ["execution_interrupted", "status", "executing(None)"]
        entry = http.get(f"/history/{ids[0]}").json()[ids[0]]
        assert (entry["status"]["status_str"], entry["status"]["completed"], entry["outputs"]) == (
            "error",
            False,
            {},
        )
        assert http.get(f"/history/{ids[1]}").json() == {}  # deleted prompts never appear
        http.post("/queue", json={"clear": True})
        bad_free = http.post("/free", content=b"not json")
        assert (bad_free.status_code, bad_free.text) == (
            500,
            "500 Internal Server Error\n\nServer got itself in trouble",
        )
        assert http.get("/models/no_such_folder").status_code == 404
        assert http.get("/object_info/NoSuchNode").json() == {}
        assert http.get("/api/system_stats").json()["system"]["comfyui_version"] == "0.8.0"


def test_model_switches_are_counted_and_cost_time(fake: FakeComfyServer) -> None:
    fake.knobs.model_switch_time = 0.1
    fake.checkpoints = ["tiny-sd15.safetensors", "b.safetensors"]
    ids = []
    with httpx.Client(base_url=fake.url) as http:
        for seed, ckpt in ((1, "tiny-sd15"), (2, "tiny-sd15"), (3, "b"), (4, "tiny-sd15")):
            prompt = _prompt(seed=seed)
            prompt["1"]["inputs"]["ckpt_name"] = f"{ckpt}.safetensors"
            prompt_id = http.post("/prompt", json={"prompt": prompt}).json()["prompt_id"]
            _wait_history(http, prompt_id)
            ids.append(prompt_id)
    assert fake.model_loads == 3
    # The server's own record of each run: the three that loaded a model spent the penalty doing so
    # (a lower bound that a busy machine can only make longer).
    runs = {run.prompt_id: run for run in fake.executions}
    assert [runs[prompt_id].status for prompt_id in ids] == ["success"] * 4
    assert all(runs[ids[n]].ended - runs[ids[n]].started >= 0.1 for n in (0, 2, 3))


def test_failure_knobs(fake: FakeComfyServer) -> None:
    fake.knobs.fail_http["POST /prompt"] = 1
    with httpx.Client(base_url=fake.url) as http:
        first = http.post("/prompt", json={"prompt": PROMPT})
        second = http.post("/prompt", json={"prompt": PROMPT})
    assert first.status_code == 500 and first.headers["content-type"].startswith("text/plain")
    assert second.status_code == 200
    fake.stop()
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{fake.url}/system_stats")
    fake.restart()
    assert httpx.get(f"{fake.url}/system_stats").status_code == 200
