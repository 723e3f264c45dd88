"""A fake ComfyUI 0.8.0 server: real HTTP and websocket on 127.0.0.1, behaving as the recorded transcripts
show.

It validates prompts against a trimmed ``object_info`` with the exact error bodies, runs one prompt at a time
from a priority queue, sends the websocket sequence (status, execution_start, execution_cached, executing /
progress / executed, execution_success or execution_error / execution_interrupted, status, executing null;
only broadcast frames for prompts without ``client_id``), caches identical nodes (an identical resubmission
replays ``executed`` with the first run's filenames), keeps history, serves /view, dedups or renames
uploads, and honours /interrupt, /queue delete|clear and /free.

Images are deterministic noise derived from the sampler inputs, so the same prompt gives the same pixels.
Knobs (attributes, settable from the test thread) model service time, model-reload penalties and failures.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import io
import json
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

import numpy as np
from aiohttp import WSMsgType, web
from PIL import Image, PngImagePlugin

from pixelbuild.testing.fakecomfy.validation import validate_prompt

INTERNAL_ERROR = "500 Internal Server Error\n\nServer got itself in trouble"
SAMPLERS = ("KSampler", "KSamplerAdvanced")


def load_object_info() -> dict[str, Any]:
    """The trimmed ``/object_info`` recorded from ComfyUI 0.8.0: the 16 node classes the built-in templates
    use (a fresh copy; the fake server fills in model and image lists per server)."""
    text = resources.files("pixelbuild.testing.fakecomfy").joinpath("object_info.json").read_text(encoding="utf-8")
    data: dict[str, Any] = json.loads(text)
    return data


@dataclass(frozen=True, slots=True)
class Execution:
    """One prompt the fake server ran, with ``time.monotonic()`` at its start and end: tests assert on
    these (e.g. overlap between servers) rather than on their own wall-clock measurements."""

    prompt_id: str
    started: float
    ended: float
    status: str  # "success", "error" or "interrupted"


@dataclass
class QueueItem:
    number: int
    prompt_id: str
    prompt: dict[str, Any]
    extra_data: dict[str, Any]
    outputs: list[str]

    def row(self) -> list[Any]:
        return [self.number, self.prompt_id, self.prompt, self.extra_data, self.outputs]


@dataclass
class Latent:
    width: int
    height: int
    batch: int
    digest: str
    init: list[np.ndarray] | None = None  # img2img: the encoded pixels
    denoise: float = 1.0


class _Interrupted(Exception):
    pass


class _NodeFailure(Exception):
    def __init__(self, exception_type: str, message: str) -> None:
        super().__init__(message)
        self.exception_type = exception_type
        self.message = message


@dataclass
class Knobs:
    """Behaviour switches of one fake server."""

    image_time: float = 0.0  # seconds of sampling per image (a batch of 4 takes 4x)
    model_switch_time: float = 0.0  # penalty when the checkpoint + LoRA set changes
    fail_http: dict[str, int] = field(default_factory=dict)  # "POST /prompt" -> answer 500 this many times
    failing_models: dict[str, tuple[str, str]] = field(
        default_factory=lambda: {
            "corrupt-test.safetensors": (
                "safetensors._safetensors_rust.SafetensorError",
                "Error while deserializing header: invalid JSON in header: key must be a string at line 1 column 2\n",
            )
        }
    )
    drop_ws_after_frames: int | None = None  # close each socket after sending this many frames
    ws_enabled: bool = True
    history_lag: float = 0.0  # seconds between `executing null` and the history entry appearing
    hold: bool = False  # accept prompts but do not start them (a busy GPU elsewhere)
    hold_after: int | None = None  # set ``hold`` once this many prompts have run (work left when a test stops it)
    version: str = "0.8.0"


class FakeComfyServer:
    """One fake server in its own thread and event loop. ``start()`` then use ``url``."""

    def __init__(
        self,
        *,
        checkpoints: tuple[str, ...] = ("tiny-sd15.safetensors",),
        loras: tuple[str, ...] = ("tiny-sd15-lora.safetensors",),
        port: int = 0,
    ) -> None:
        self.checkpoints = list(checkpoints)
        self.loras = list(loras)
        self.knobs = Knobs()
        self.object_info_base = load_object_info()
        self.port = port
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="fakecomfy", daemon=True)
        self._runner: web.AppRunner | None = None
        self._reset_state(keep_files=False)

    # --- control (test thread) -------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """Base URL, e.g. http://127.0.0.1:40123."""
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> FakeComfyServer:
        """Start serving (again, on the same port, after ``stop``)."""
        if not self._thread.is_alive():
            self._thread.start()
        self._call(self._astart())
        return self

    def stop(self) -> None:
        """Kill the server: abort every connection and stop listening (clients get refused)."""
        self._call(self._astop())

    def restart(self, *, keep_state: bool = False) -> None:
        """Stop, forget queue/history/caches unless ``keep_state`` (files stay), start on the same port."""
        self.stop()
        if not keep_state:
            self._reset_state(keep_files=True)
        self._call(self._astart())

    def close(self) -> None:
        """Stop and end the thread."""
        with contextlib.suppress(Exception):
            self.stop()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)
        if not self._thread.is_alive():
            self._loop.close()

    def drop_websockets(self) -> None:
        """Abort every open websocket now (clients must reconnect or poll)."""
        self._call(self._adrop_ws())

    def release(self) -> None:
        """Clear ``knobs.hold`` and let queued prompts run."""
        self.knobs.hold = False
        self._loop.call_soon_threadsafe(self._wake.set)

    def add_input_file(self, name: str, data: bytes) -> None:
        """Put a file in the input folder (like a previous upload)."""
        subfolder, _, filename = name.rpartition("/")
        self.files[("input", subfolder, filename)] = data

    def pending_ids(self) -> list[str]:
        """Prompt ids waiting in the queue."""
        return [item.prompt_id for item in list(self.queue)]

    def running_id(self) -> str | None:
        """The running prompt's id."""
        return self.running.prompt_id if self.running else None

    def _call(self, coro: Any, timeout: float = 10.0) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    def _reset_state(self, *, keep_files: bool) -> None:
        self.queue: list[QueueItem] = []
        self.running: QueueItem | None = None
        self.history: dict[str, dict[str, Any]] = {}
        if not keep_files:
            self.files: dict[tuple[str, str, str], bytes] = {("input", "", "example.png"): _tiny_png()}
        self.number = 0
        self.cache: dict[str, tuple[Any, Any]] = {}
        self.loaded_models: Any = None
        self.interrupt_flag = False
        # counters
        self.requests: Counter[str] = Counter()
        self.posted = 0
        self.accepted = 0
        self.executed = 0  # prompts that ran at least one node
        self.images_made = 0
        self.model_loads = 0
        self.model_log: list[Any] = []
        self.uploads: list[str] = []
        self.interrupts: list[Any] = []
        self.deleted: list[str] = []
        self.frees = 0
        self.ws_connects = 0
        self.max_queue_depth = 0
        self.busy_time = 0.0  # seconds spent sampling (incl. model loads)
        self.first_start: float | None = None
        self.last_end: float | None = None
        self.executions: list[Execution] = []  # every prompt run to its end, in order

    # --- lifecycle (loop thread) -----------------------------------------------------------------------

    async def _astart(self) -> None:
        self._sockets: dict[str, web.WebSocketResponse] = {}
        self._all_sockets: set[web.WebSocketResponse] = set()
        self._ws_transports: dict[int, asyncio.Transport] = {}
        self._frames_sent: Counter[int] = Counter()
        self._transports: set[asyncio.Transport] = set()
        self._wake = asyncio.Event()
        app = web.Application(middlewares=[self._middleware], client_max_size=256 * 1024 * 1024)
        routes = [
            ("GET", "/ws", self._ws),
            ("GET", "/system_stats", self._system_stats),
            ("GET", "/features", self._features),
            ("GET", "/queue", self._get_queue),
            ("POST", "/queue", self._post_queue),
            ("GET", "/prompt", self._get_prompt),
            ("POST", "/prompt", self._post_prompt),
            ("GET", "/object_info", self._object_info),
            ("GET", "/object_info/{name}", self._object_info_one),
            ("GET", "/models", self._models),
            ("GET", "/models/{folder}", self._models_folder),
            ("GET", "/history", self._get_history),
            ("GET", "/history/{prompt_id}", self._get_history_one),
            ("POST", "/history", self._post_history),
            ("GET", "/view", self._view),
            ("POST", "/upload/image", self._upload),
            ("POST", "/interrupt", self._interrupt),
            ("POST", "/free", self._free),
        ]
        for method, path, handler in routes:
            app.router.add_route(method, path, handler)
            app.router.add_route(method, "/api" + path, handler)
        self._runner = web.AppRunner(app, handle_signals=False, access_log=None, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", self.port, reuse_address=True)
        await site.start()
        self.port = int(self._runner.addresses[0][1])
        self._executor_task = asyncio.ensure_future(self._executor())
        if self.queue:
            self._wake.set()

    async def _astop(self) -> None:
        if self._runner is None:
            return
        self._executor_task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await self._executor_task
        for transport in list(self._transports):
            transport.abort()
        for transport in list(self._ws_transports.values()):
            transport.abort()
        runner, self._runner = self._runner, None
        await runner.cleanup()
        if self.running is not None:  # a killed server loses the running prompt
            self.running = None

    async def _adrop_ws(self) -> None:
        for ws in list(self._all_sockets):
            await self._abort_ws(ws)

    async def _abort_ws(self, ws: web.WebSocketResponse) -> None:
        self._all_sockets.discard(ws)
        for client_id, sock in list(self._sockets.items()):
            if sock is ws:
                del self._sockets[client_id]
        transport = self._ws_transports.pop(id(ws), None)
        if transport is not None:
            transport.abort()

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Callable[[web.Request], Any]) -> web.StreamResponse:
        if request.transport is not None:
            self._transports.add(request.transport)
        path = request.path.removeprefix("/api")
        key = f"{request.method} {path}"
        self.requests[key] += 1
        for pattern, count in list(self.knobs.fail_http.items()):
            if count > 0 and key.startswith(pattern):
                self.knobs.fail_http[pattern] = count - 1
                return web.Response(status=500, text=INTERNAL_ERROR, content_type="text/plain")
        response: web.StreamResponse = await handler(request)
        return response

    # --- websocket -------------------------------------------------------------------------------------

    async def _ws(self, request: web.Request) -> web.StreamResponse:
        if not self.knobs.ws_enabled:
            return web.Response(status=404)
        client_id = request.query.get("clientId") or uuid.uuid4().hex
        ws = web.WebSocketResponse(heartbeat=None)
        await ws.prepare(request)
        self.ws_connects += 1
        self._sockets[client_id] = ws  # only the newest socket per client id gets messages
        self._all_sockets.add(ws)
        if request.transport is not None:
            self._ws_transports[id(ws)] = request.transport
        await self._send_ws(ws, "status", {"status": self._exec_info(), "sid": client_id})
        try:
            async for message in ws:
                if message.type == WSMsgType.TEXT:
                    with contextlib.suppress(ValueError):
                        frame = json.loads(message.data)
                        if isinstance(frame, dict) and frame.get("type") == "feature_flags":
                            await self._send_ws(ws, "feature_flags", {"supports_preview_metadata": True})
        finally:
            self._all_sockets.discard(ws)
            self._ws_transports.pop(id(ws), None)
            if self._sockets.get(client_id) is ws:
                del self._sockets[client_id]
        return ws

    async def _send_ws(self, ws: web.WebSocketResponse, kind: str, data: Any) -> None:
        if ws.closed:
            return
        try:
            await ws.send_str(json.dumps({"type": kind, "data": data}))
        except (ConnectionError, RuntimeError):
            return
        self._frames_sent[id(ws)] += 1
        limit = self.knobs.drop_ws_after_frames
        if limit is not None and self._frames_sent[id(ws)] >= limit:
            await self._abort_ws(ws)

    async def _send(self, client_id: str | None, kind: str, data: Any, *, broadcast_ok: bool = False) -> None:
        """To the prompt's client; without a client id only broadcast kinds go out, to everyone."""
        if client_id:
            ws = self._sockets.get(client_id)
            if ws is not None:
                await self._send_ws(ws, kind, data)
        elif broadcast_ok:
            for ws in list(self._all_sockets):
                await self._send_ws(ws, kind, data)

    async def _broadcast_status(self) -> None:
        for ws in list(self._all_sockets):
            await self._send_ws(ws, "status", {"status": self._exec_info()})

    def _exec_info(self) -> dict[str, Any]:
        return {"exec_info": {"queue_remaining": len(self.queue) + (1 if self.running else 0)}}

    # --- simple routes ---------------------------------------------------------------------------------

    async def _system_stats(self, request: web.Request) -> web.Response:
        return web.json_response(
            {
                "system": {
                    "os": "linux",
                    "comfyui_version": self.knobs.version,
                    "python_version": "3.11.7",
                    "pytorch_version": "fake",
                    "embedded_python": False,
                    "argv": ["main.py", "--fake"],
                },
                "devices": [{"name": "fake", "type": "cpu", "index": None}],
            }
        )

    async def _features(self, request: web.Request) -> web.Response:
        return web.json_response({"supports_preview_metadata": True, "max_upload_size": 104857600})

    async def _get_queue(self, request: web.Request) -> web.Response:
        return web.json_response(
            {
                "queue_running": [self.running.row()] if self.running else [],
                "queue_pending": [item.row() for item in sorted(self.queue, key=lambda item: item.number)],
            }
        )

    async def _get_prompt(self, request: web.Request) -> web.Response:
        return web.json_response(self._exec_info())

    def _object_info_all(self) -> dict[str, Any]:
        info: dict[str, Any] = json.loads(json.dumps(self.object_info_base))
        inputs = sorted(name for kind, sub, name in self.files if kind == "input" and not sub)
        for class_type, input_name, values in (
            ("CheckpointLoaderSimple", "ckpt_name", self.checkpoints),
            ("LoraLoader", "lora_name", self.loras),
            ("LoraLoaderModelOnly", "lora_name", self.loras),
            ("LoadImage", "image", inputs),
        ):
            if class_type in info:
                info[class_type]["input"]["required"][input_name][0] = list(values)
        return info

    async def _object_info(self, request: web.Request) -> web.Response:
        return web.json_response(self._object_info_all())

    async def _object_info_one(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        info = self._object_info_all()
        return web.json_response({name: info[name]} if name in info else {})

    async def _models(self, request: web.Request) -> web.Response:
        return web.json_response(["checkpoints", "loras", "vae", "upscale_models"])

    async def _models_folder(self, request: web.Request) -> web.Response:
        folder = request.match_info["folder"]
        lists = {"checkpoints": self.checkpoints, "loras": self.loras, "vae": [], "upscale_models": []}
        if folder not in lists:
            return web.Response(status=404)
        return web.json_response(list(lists[folder]))

    async def _get_history(self, request: web.Request) -> web.Response:
        items = list(self.history.items())
        max_items = request.query.get("max_items")
        if max_items:
            items = items[-int(max_items) :]
        return web.json_response(dict(items))

    async def _get_history_one(self, request: web.Request) -> web.Response:
        prompt_id = request.match_info["prompt_id"]
        entry = self.history.get(prompt_id)
        return web.json_response({prompt_id: entry} if entry else {})

    async def _post_history(self, request: web.Request) -> web.Response:
        body = await _json_body(request)
        if body.get("clear"):
            self.history.clear()
        for prompt_id in body.get("delete") or ():
            self.history.pop(prompt_id, None)
        return web.Response(status=200)

    async def _view(self, request: web.Request) -> web.Response:
        filename = request.query.get("filename", "")
        subfolder = request.query.get("subfolder", "")
        kind = request.query.get("type", "output")
        if ".." in filename.split("/") or filename.startswith("/") or ".." in subfolder.split("/"):
            return web.Response(status=400)
        data = self.files.get((kind, subfolder, filename))
        if data is None:
            return web.Response(status=404)
        return web.Response(
            body=data,
            content_type="image/png",
            headers={"Content-Disposition": f'filename="{filename}"'},
        )

    async def _upload(self, request: web.Request) -> web.Response:
        form = await request.post()
        image = form.get("image")
        if not isinstance(image, web.FileField):
            return web.Response(status=400)
        data = image.file.read()
        subfolder = str(form.get("subfolder", "") or "")
        kind = str(form.get("type", "input") or "input")
        overwrite = str(form.get("overwrite", "")).lower() in ("true", "1")
        name = image.filename
        if not overwrite:
            base, dot, ext = name.rpartition(".")
            counter = 1
            while (kind, subfolder, name) in self.files and self.files[(kind, subfolder, name)] != data:
                name = f"{base} ({counter}).{ext}" if dot else f"{name} ({counter})"
                counter += 1
        self.files[(kind, subfolder, name)] = data
        self.uploads.append(f"{subfolder}/{name}" if subfolder else name)
        return web.json_response({"name": name, "subfolder": subfolder, "type": kind})

    async def _interrupt(self, request: web.Request) -> web.Response:
        body = await _json_body(request)
        self.interrupts.append(body)
        target = body.get("prompt_id")
        if self.running is not None and (target is None or target == self.running.prompt_id):
            self.interrupt_flag = True
        return web.Response(status=200)

    async def _post_queue(self, request: web.Request) -> web.Response:
        body = await _json_body(request)
        if body.get("clear"):
            self.queue.clear()
        delete = set(body.get("delete") or ())
        if delete:
            self.deleted.extend(sorted(delete))
            self.queue = [item for item in self.queue if item.prompt_id not in delete]
        await self._broadcast_status()
        return web.Response(status=200)

    async def _free(self, request: web.Request) -> web.Response:
        try:
            body = json.loads(await request.text())
        except ValueError:
            return web.Response(status=500, text=INTERNAL_ERROR, content_type="text/plain")
        self.frees += 1
        if body.get("free_memory"):
            self.cache.clear()
        if body.get("unload_models"):
            self.cache.clear()
            self.loaded_models = None
        return web.Response(status=200)

    # --- POST /prompt ----------------------------------------------------------------------------------

    async def _post_prompt(self, request: web.Request) -> web.Response:
        self.posted += 1
        try:
            body = json.loads(await request.text())
        except ValueError:
            return web.Response(status=500, text=INTERNAL_ERROR, content_type="text/plain")
        number = self.number
        self.number += 1
        if not isinstance(body, dict) or "prompt" not in body:
            return _bad(
                {
                    "type": "no_prompt",
                    "message": "No prompt provided",
                    "details": "No prompt provided",
                    "extra_info": {},
                },
                {},
            )
        prompt = body["prompt"]
        custom = {("LoadImage", "image"): self._check_input_image}
        verdict = validate_prompt(prompt, self._object_info_all(), custom)
        if verdict.error is not None:
            return _bad(verdict.error, verdict.node_errors)
        if body.get("front"):
            number = -number
        prompt_id = str(body.get("prompt_id") or uuid.uuid4())
        extra = dict(body.get("extra_data") or {})
        if body.get("client_id"):
            extra["client_id"] = body["client_id"]
        extra["create_time"] = int(time.time() * 1000)
        self.queue.append(QueueItem(number, prompt_id, prompt, extra, verdict.good_outputs))
        self.accepted += 1
        self.max_queue_depth = max(self.max_queue_depth, len(self.queue) + (1 if self.running else 0))
        await self._broadcast_status()
        self._wake.set()
        return web.json_response({"prompt_id": prompt_id, "number": number, "node_errors": verdict.node_errors})

    def _check_input_image(self, value: Any) -> str | None:
        subfolder, _, name = str(value).rpartition("/")
        if ("input", subfolder, name) not in self.files:
            return f"Invalid image file: {value}"
        return None

    # --- execution -------------------------------------------------------------------------------------

    async def _executor(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self.queue and not self.knobs.hold:
                item = min(self.queue, key=lambda queued: queued.number)
                self.queue.remove(item)
                self.running = item
                try:
                    await self._execute(item)
                finally:
                    self.running = None
                if self.knobs.hold_after is not None and self.executed >= self.knobs.hold_after:
                    self.knobs.hold = True

    async def _execute(self, item: QueueItem) -> None:
        started = time.monotonic()
        client = item.extra_data.get("client_id")
        pid = item.prompt_id
        graph = item.prompt
        self.interrupt_flag = False
        messages: list[list[Any]] = []

        async def event(kind: str, data: dict[str, Any], record: bool = True) -> None:
            data = {**data, "prompt_id": pid, "timestamp": int(time.time() * 1000)}
            if record:
                messages.append([kind, data])
            await self._send(client, kind, data)

        order = _execution_order(graph, item.outputs)
        signatures: dict[str, str] = {}
        for node_id in order:
            signatures[node_id] = self._signature(graph, node_id, signatures)
        cached = [node_id for node_id in order if signatures[node_id] in self.cache]
        await self._broadcast_status()
        await event("execution_start", {})
        await event("execution_cached", {"nodes": cached})
        values: dict[str, Any] = {}
        outputs: dict[str, Any] = {}
        used: dict[str, tuple[Any, Any]] = {}

        async def record(node_id: str, value: Any, ui: Any) -> None:
            # A node's result, from the cache or just run: kept for later nodes, and its UI output sent.
            values[node_id] = value
            used[signatures[node_id]] = (value, ui)
            if ui is not None:
                outputs[node_id] = ui
                await self._send(
                    client,
                    "executed",
                    {"node": node_id, "display_node": node_id, "output": ui, "prompt_id": pid},
                )

        for node_id in cached:
            await record(node_id, *self.cache[signatures[node_id]])
        ran = False
        status = "success"
        for node_id in order:
            if node_id in values:
                continue
            ran = True
            await self._send(client, "progress_state", {"prompt_id": pid, "nodes": {}}, broadcast_ok=True)
            await self._send(client, "executing", {"node": node_id, "display_node": node_id, "prompt_id": pid})
            try:
                if self.interrupt_flag:
                    raise _Interrupted
                value, ui = await self._run_node(item, node_id, values)
            except _Interrupted:
                status = "interrupted"
                await event(
                    "execution_interrupted",
                    {"node_id": node_id, "node_type": graph[node_id]["class_type"], "executed": list(values)},
                )
                break
            except _NodeFailure as failure:
                status = "error"
                await event(
                    "execution_error",
                    {
                        "node_id": node_id,
                        "node_type": graph[node_id]["class_type"],
                        "executed": list(values),
                        "exception_message": failure.message,
                        "exception_type": failure.exception_type,
                        "traceback": ['  File "fakecomfy", in execute\n'],
                        "current_inputs": {},
                        "current_outputs": list(order),
                    },
                )
                break
            await record(node_id, value, ui)
        if status == "success":
            await event("execution_success", {})
        if ran:
            self.executed += 1
        # ComfyUI's classic cache keeps what the last prompt used.
        self.cache = used if status == "success" else {**self.cache, **used}
        entry = {
            "prompt": item.row(),
            "outputs": outputs if status == "success" else {},
            "status": {
                "status_str": "success" if status == "success" else "error",
                "completed": status == "success",
                "messages": messages,
            },
            "meta": {
                node_id: {
                    "node_id": node_id,
                    "display_node": node_id,
                    "parent_node": None,
                    "real_node_id": node_id,
                }
                for node_id in outputs
            },
        }
        # Recorded before the history entry appears: a test that saw the entry finds the record too.
        self.executions.append(Execution(pid, started, time.monotonic(), status))
        if self.knobs.history_lag:
            asyncio.get_running_loop().call_later(self.knobs.history_lag, self.history.__setitem__, pid, entry)
        else:
            self.history[pid] = entry
        # Like ComfyUI's task_done: history stored and the running item gone in one step, then status.
        self.running = None
        await self._broadcast_status()
        await self._send(client, "executing", {"node": None, "prompt_id": pid})

    def _signature(self, graph: dict[str, Any], node_id: str, known: dict[str, str]) -> str:
        node = graph[node_id]
        parts: list[Any] = [node["class_type"]]
        for name, value in sorted(node["inputs"].items()):
            if isinstance(value, list) and len(value) == 2:
                source = str(value[0])
                if source not in known:
                    known[source] = self._signature(graph, source, known)
                parts.append([name, known[source], value[1]])
            else:
                parts.append([name, value])
        if node["class_type"] == "LoadImage":  # ComfyUI re-runs LoadImage when the file changes
            subfolder, _, name = str(node["inputs"].get("image")).rpartition("/")
            parts.append(hashlib.sha256(self.files.get(("input", subfolder, name), b"")).hexdigest())
        return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()

    async def _run_node(self, item: QueueItem, node_id: str, values: dict[str, Any]) -> tuple[Any, Any]:
        node = item.prompt[node_id]
        class_type = node["class_type"]
        raw = node["inputs"]
        inputs = {
            name: (values[str(value[0])][value[1]] if isinstance(value, list) and len(value) == 2 else value)
            for name, value in raw.items()
        }
        digest = hashlib.sha256(
            json.dumps([class_type, _plain(inputs)], sort_keys=True, default=str).encode()
        ).hexdigest()
        if class_type == "CheckpointLoaderSimple":
            self._maybe_fail(inputs["ckpt_name"])
            model = (inputs["ckpt_name"],)
            return [model, model, ("vae", inputs["ckpt_name"])], None
        if class_type in ("LoraLoader", "LoraLoaderModelOnly"):
            self._maybe_fail(inputs["lora_name"])
            model = (*inputs["model"], (inputs["lora_name"], float(inputs["strength_model"])))
            clip = (*inputs.get("clip", ()), (inputs["lora_name"], float(inputs.get("strength_clip", 0.0))))
            return [model, clip], None
        if class_type == "CLIPTextEncode":
            return [("cond", digest)], None
        if class_type == "EmptyLatentImage":
            return [Latent(int(inputs["width"]), int(inputs["height"]), int(inputs["batch_size"]), digest)], None
        if class_type == "LoadImage":
            subfolder, _, name = str(inputs["image"]).rpartition("/")
            image = Image.open(io.BytesIO(self.files[("input", subfolder, name)])).convert("RGB")
            return [[np.asarray(image)], None], None
        if class_type == "ImageScale":
            width, height = int(inputs["width"]), int(inputs["height"])
            scaled = [
                np.asarray(Image.fromarray(pixels).resize((width, height), Image.Resampling.NEAREST))
                for pixels in inputs["image"]
            ]
            return [scaled], None
        if class_type == "VAEEncode":
            pixels = inputs["pixels"]
            height, width = pixels[0].shape[:2]
            return [Latent(width, height, len(pixels), digest, init=list(pixels))], None
        if class_type == "RepeatLatentBatch":
            latent: Latent = inputs["samples"]
            amount = int(inputs["amount"])
            init = latent.init * amount if latent.init else None
            return [Latent(latent.width, latent.height, latent.batch * amount, digest, init)], None
        if class_type in SAMPLERS:
            return [await self._sample(item, node_id, inputs, digest)], None
        if class_type == "VAEDecode":
            latent = inputs["samples"]
            return [_render(latent)], None
        if class_type in ("SaveImage", "PreviewImage"):
            return None, {"images": self._save(item, class_type, inputs)}
        return [("opaque", digest)] * 4, None

    def _maybe_fail(self, model_name: str) -> None:
        failure = self.knobs.failing_models.get(model_name)
        if failure:
            raise _NodeFailure(*failure)

    async def _sample(self, item: QueueItem, node_id: str, inputs: dict[str, Any], digest: str) -> Latent:
        started = time.monotonic()
        self.first_start = self.first_start or started
        model_set = inputs["model"]
        if model_set != self.loaded_models:
            self.model_loads += 1
            self.model_log.append(model_set)
            self.loaded_models = model_set
            if self.knobs.model_switch_time:
                await asyncio.sleep(self.knobs.model_switch_time)
        latent: Latent = inputs["latent_image"]
        steps = max(1, int(inputs["steps"]))
        total = self.knobs.image_time * latent.batch
        client = item.extra_data.get("client_id")
        begin = time.monotonic()
        try:
            for step in range(1, steps + 1):
                if self.interrupt_flag:
                    raise _Interrupted
                delay = begin + total * step / steps - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                if self.interrupt_flag:
                    raise _Interrupted
                await self._send(
                    client,
                    "progress",
                    {"value": step, "max": steps, "prompt_id": item.prompt_id, "node": node_id},
                    broadcast_ok=True,
                )
        finally:
            self.busy_time += time.monotonic() - started
            self.last_end = time.monotonic()
        denoise = float(inputs.get("denoise", 1.0))
        return Latent(latent.width, latent.height, latent.batch, digest, latent.init, denoise)

    def _save(self, item: QueueItem, class_type: str, inputs: dict[str, Any]) -> list[dict[str, str]]:
        if class_type == "SaveImage":
            kind = "output"
            subfolder, _, base = str(inputs.get("filename_prefix", "ComfyUI")).rpartition("/")
        else:
            kind, subfolder, base = "temp", "", "ComfyUI_temp_" + uuid.uuid4().hex[:5]
        existing = [
            name for k, sub, name in self.files if k == kind and sub == subfolder and name.startswith(base + "_")
        ]
        counter = 1 + max(
            (
                int(name[len(base) + 1 : len(base) + 6])
                for name in existing
                if name[len(base) + 1 : len(base) + 6].isdigit()
            ),
            default=0,
        )
        info = PngImagePlugin.PngInfo()
        info.add_text("prompt", json.dumps(item.prompt))
        for key, value in (item.extra_data.get("extra_pnginfo") or {}).items():
            info.add_text(key, json.dumps(value))
        refs = []
        for pixels in inputs["images"]:
            filename = f"{base}_{counter:05}_.png"
            buffer = io.BytesIO()
            Image.fromarray(pixels).save(buffer, format="PNG", pnginfo=info, compress_level=1)
            self.files[(kind, subfolder, filename)] = buffer.getvalue()
            refs.append({"filename": filename, "subfolder": subfolder, "type": kind})
            counter += 1
            if kind == "output":
                self.images_made += 1
        return refs


def _render(latent: Latent) -> list[np.ndarray]:
    images = []
    for index in range(latent.batch):
        seed = int.from_bytes(hashlib.sha256(f"{latent.digest}:{index}:{latent.batch}".encode()).digest()[:8], "big")
        noise = np.random.default_rng(seed).integers(0, 256, (latent.height, latent.width, 3), dtype=np.uint8)
        if latent.init is not None and latent.denoise < 1.0:
            init = latent.init[index % len(latent.init)].astype(np.float32)
            mixed = (1.0 - latent.denoise) * init + latent.denoise * noise.astype(np.float32)
            noise = np.clip(np.rint(mixed), 0, 255).astype(np.uint8)
        images.append(noise)
    return images


def _execution_order(graph: dict[str, Any], outputs: list[str]) -> list[str]:
    order: list[str] = []
    seen: set[str] = set()

    def visit(node_id: str) -> None:
        if node_id in seen:
            return
        seen.add(node_id)
        for value in graph[node_id]["inputs"].values():
            if isinstance(value, list) and len(value) == 2:
                visit(str(value[0]))
        order.append(node_id)

    for output in outputs:
        visit(output)
    return order


def _plain(value: Any) -> Any:
    if isinstance(value, Latent):
        return ["latent", value.digest, value.width, value.height, value.batch]
    if isinstance(value, np.ndarray):
        return hashlib.sha256(value.tobytes()).hexdigest()
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    return value


def _bad(error: dict[str, Any], node_errors: dict[str, Any]) -> web.Response:
    return web.json_response({"error": error, "node_errors": node_errors}, status=400)


async def _json_body(request: web.Request) -> dict[str, Any]:
    text = await request.text()
    if not text:
        return {}
    with contextlib.suppress(ValueError):
        body = json.loads(text)
        if isinstance(body, dict):
            return body
    return {}


def _tiny_png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), (200, 100, 50)).save(buffer, format="PNG")
    return buffer.getvalue()
