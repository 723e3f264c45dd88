"""A client for one ComfyUI server: its HTTP API (httpx) and its websocket event stream.

HTTP calls retry with exponential backoff on connection errors and 5xx answers, never on 4xx (a
validation error does not get better by asking again). After the retries, ``ServerUnreachable`` or
``ServerFailed`` is raised for the scheduler to act on.

The websocket (``/ws?clientId=…``) runs in a background thread and reconnects by itself; it routes each
prompt's messages to a ``PromptWatch``. Only prompts posted with our ``client_id`` get ``executing`` /
``executed`` / ``execution_*`` messages, so we always post with it and open the socket first.
"""

from __future__ import annotations

import contextlib
import inspect
import ipaddress
import json
import logging
import random
import threading
import uuid
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

import httpx
from websockets.exceptions import WebSocketException
from websockets.sync.client import ClientConnection, connect

from pixelbuild.backends.comfyui.messages import (
    Executed,
    Executing,
    ExecutionError,
    ExecutionInterrupted,
    ExecutionStart,
    ExecutionSuccess,
    HistoryEntry,
    ImageRef,
    Message,
    Progress,
    PromptAccepted,
    PromptRejected,
    Status,
    UnexpectedAnswer,
    parse_history,
    parse_prompt_response,
    parse_ws_binary,
    parse_ws_text,
    valid_prompt_id,
)

log = logging.getLogger(__name__)

_BACKOFF_CAP = 5.0
_EARLY_PROMPTS = 256  # prompts whose messages arrived before we knew their id (POST still in flight)
_EARLY_MESSAGES = 4096  # ... and how many messages of each we keep
#: The longest answer read from the server: JSON (a large /object_info is tens of MB) and images.
MAX_REPLY_BYTES = 128 << 20
#: The longest image read from /view (a 16,384² RGBA PNG stored without compression is 1 GiB; a frame
#: pixelbuild accepts, 8192², at most 256 MiB).
MAX_IMAGE_BYTES = 256 << 20
#: The longest websocket message (previews are a few hundred kB; status messages are small).
MAX_WS_BYTES = 64 << 20


# Headers that describe the bytes on the wire, no longer true of the decoded body kept.
_DECODED = ("content-encoding", "content-length", "transfer-encoding")
# websockets >= 15 honours proxy environment variables unless told proxy=None; older ones have no proxy
# support (and no such parameter) at all.
_NO_PROXY: dict[str, Any] = {"proxy": None} if "proxy" in inspect.signature(connect).parameters else {}


class ServerUnreachable(Exception):
    """No connection to the server (refused, reset, timed out) after the retries."""

    def __init__(self, url: str, cause: BaseException | str) -> None:
        self.url = url
        self.cause = cause
        super().__init__(f"{url}: {cause}")


class ServerFailed(Exception):
    """The server kept answering 5xx (or something unreadable) after the retries."""

    def __init__(self, url: str, detail: str) -> None:
        self.url = url
        self.detail = detail
        super().__init__(f"{url}: {detail}")


class ImageMissing(Exception):
    """``/view`` answered 404 for an output image (deleted from the server's output folder)."""


class ComfyClient:
    """HTTP + websocket access to one ComfyUI server. Thread-safe."""

    def __init__(
        self,
        url: str,
        *,
        timeout: float = 30.0,
        retries: int = 3,
        backoff: float = 0.2,
        client_id: str | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        self.client_id = client_id or uuid.uuid4().hex
        self.retries = retries
        self.backoff = backoff
        self.timeout = timeout
        self._closing = threading.Event()
        loopback = _is_loopback(self.url)
        self._http = httpx.Client(
            base_url=self.url,
            timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)),
            # A proxy from the environment must not capture loopback traffic; remote servers may need one.
            trust_env=not loopback,
            limits=httpx.Limits(max_connections=32, max_keepalive_connections=16),
        )
        self._events: EventStream | None = None
        self._events_lock = threading.Lock()
        self._loopback = loopback

    # --- lifecycle -----------------------------------------------------------------------------------

    def events(self) -> EventStream:
        """The websocket event stream of this client (started on first use)."""
        with self._events_lock:
            if self._events is None:
                scheme = "wss" if self.url.startswith("https") else "ws"
                ws_url = f"{scheme}{self.url[self.url.index(':') :]}/ws?clientId={self.client_id}"
                self._events = EventStream(ws_url, open_timeout=min(self.timeout, 10.0), use_proxy=not self._loopback)
                if not self._closing.is_set():  # a closed client hands out a stream that never connects
                    self._events.start()
            return self._events

    def close(self) -> None:
        """Stop retries, the websocket thread and the HTTP pool."""
        self._closing.set()
        with self._events_lock:
            if self._events is not None:
                self._events.close()
        self._http.close()

    # --- HTTP API --------------------------------------------------------------------------------------

    def system_stats(self, *, retries: int | None = None) -> dict[str, Any]:
        """GET /system_stats."""
        return _json_object(self._request("GET", "/system_stats", retries=retries), "/system_stats")

    def version(self) -> str:
        """The ``comfyui_version`` reported by /system_stats ("unknown" if absent)."""
        system = self.system_stats().get("system", {})
        version = system.get("comfyui_version") if isinstance(system, Mapping) else None
        return str(version) if version else "unknown"

    def object_info(self) -> dict[str, Any]:
        """GET /object_info: every node class with its inputs and outputs."""
        return _json_object(self._request("GET", "/object_info"), "/object_info")

    def models(self, folder: str) -> list[str] | None:
        """GET /models/{folder}; None when the server does not have that route or folder (404)."""
        response = self._request("GET", f"/models/{folder}", ok=(200, 404))
        if response.status_code == 404:
            return None
        data = _json(response, f"/models/{folder}")
        if not isinstance(data, list):
            raise ServerFailed(self.url, f"/models/{folder} is not a list")
        return [str(name) for name in data]

    def queue(self) -> tuple[list[str], list[str]]:
        """GET /queue: prompt ids (running, pending)."""
        data = _json_object(self._request("GET", "/queue"), "/queue")

        def ids(key: str) -> list[str]:
            items = data.get(key) or []
            return [str(item[1]) for item in items if isinstance(item, list) and len(item) > 1]

        return ids("queue_running"), ids("queue_pending")

    def queue_prompts(self) -> dict[str, Mapping[str, Any] | None]:
        """GET /queue: every running or pending prompt id, with the graph the server holds for it."""
        data = _json_object(self._request("GET", "/queue"), "/queue")
        found: dict[str, Mapping[str, Any] | None] = {}
        for key in ("queue_running", "queue_pending"):
            items = data.get(key)
            for item in items if isinstance(items, list) else ():
                if isinstance(item, list) and len(item) > 2 and isinstance(item[1], str):
                    found[item[1]] = item[2] if isinstance(item[2], dict) else None
        return found

    def submit(self, graph: Mapping[str, Any], prompt_id: str | None = None) -> PromptAccepted | PromptRejected:
        """POST /prompt with our client_id (so the websocket carries this prompt's messages), and with
        ``prompt_id`` when given (ComfyUI keeps an id chosen by the client).

        A retry after a read timeout may queue the prompt twice; the copy is identical, so ComfyUI's cache
        answers it without running anything.
        """
        body: dict[str, Any] = {"prompt": graph, "client_id": self.client_id}
        if prompt_id is not None:
            body["prompt_id"] = prompt_id
        response = self._request("POST", "/prompt", json=body, ok=(200, 400))
        try:
            return parse_prompt_response(response.status_code, response.content)
        except UnexpectedAnswer as error:
            raise ServerFailed(self.url, f"POST /prompt: {error}") from None

    def history(self, prompt_id: str) -> HistoryEntry | None:
        """GET /history/{id}; None while the prompt has not finished (``{}``)."""
        if not valid_prompt_id(prompt_id):  # it becomes part of the URL
            raise ServerFailed(self.url, f"GET /history: {prompt_id[:60]!r} is not a prompt id")
        data = _json(self._request("GET", f"/history/{prompt_id}"), "/history")
        try:
            return parse_history(data, prompt_id)
        except UnexpectedAnswer as error:
            raise ServerFailed(self.url, f"GET /history: {error}") from None

    def view(self, image: ImageRef) -> bytes:
        """GET /view of one image (``subfolder`` is its own parameter); ``ImageMissing`` on 404."""
        params = {"filename": image.filename, "subfolder": image.subfolder, "type": image.type}
        response = self._request("GET", "/view", params=params, ok=(200, 404), limit=MAX_IMAGE_BYTES)
        if response.status_code == 404:
            raise ImageMissing(f"{image.subfolder}/{image.filename}".lstrip("/"))
        return response.content

    def upload_image(self, data: bytes, name: str, subfolder: str) -> str:
        """POST /upload/image into the input folder; returns the LoadImage value (``subfolder/name``).

        We always send content-hash names with ``overwrite``, so the server keeps our name; the name it
        answers with is used all the same.
        """
        files = {"image": (name, data, "image/png")}
        form = {"type": "input", "subfolder": subfolder, "overwrite": "true"}
        response = self._request("POST", "/upload/image", files=files, data=form)
        answer = _json_object(response, "/upload/image")
        stored = str(answer.get("name") or name)
        folder = str(answer.get("subfolder") or "")
        return f"{folder}/{stored}" if folder else stored

    def delete_queued(self, prompt_ids: list[str], *, retries: int | None = 0, timeout: float | None = None) -> None:
        """POST /queue {"delete": ids}; the running prompt is not affected (the server ignores it)."""
        if prompt_ids:
            extra: dict[str, Any] = {} if timeout is None else {"timeout": timeout}
            self._request("POST", "/queue", json={"delete": prompt_ids}, retries=retries, **extra)

    def interrupt(self, prompt_id: str | None = None, *, retries: int | None = 0, timeout: float | None = None) -> None:
        """POST /interrupt; with ``prompt_id`` only that prompt, and only if it is the running one."""
        body = {"prompt_id": prompt_id} if prompt_id else {}
        extra: dict[str, Any] = {} if timeout is None else {"timeout": timeout}
        self._request("POST", "/interrupt", json=body, retries=retries, **extra)

    def free(self, *, unload_models: bool = False, free_memory: bool = True) -> None:
        """POST /free (resets the server's caches; ``unload_models`` also drops the weights)."""
        self._request("POST", "/free", json={"unload_models": unload_models, "free_memory": free_memory})

    # --- transport -----------------------------------------------------------------------------------

    def _request(
        self,
        method: str,
        path: str,
        *,
        ok: tuple[int, ...] = (200,),
        retries: int | None = None,
        limit: int | None = None,
        **kwargs: Any,
    ) -> httpx.Response:
        limit = MAX_REPLY_BYTES if limit is None else limit
        attempts = (self.retries if retries is None else retries) + 1
        last: ServerUnreachable | ServerFailed | None = None
        for attempt in range(attempts):
            if attempt:
                delay = min(_BACKOFF_CAP, self.backoff * 2 ** (attempt - 1)) * (0.5 + random.random() / 2)
                if self._closing.wait(delay):
                    break
            try:
                response = self._send(method, path, limit, kwargs)
            except httpx.TransportError as error:
                last = ServerUnreachable(self.url, _describe(error))
                continue
            except RuntimeError as error:  # the pool was closed under us by close()
                raise ServerUnreachable(self.url, f"client closed ({error})") from None
            if response.status_code in ok:
                return response
            if response.status_code >= 500:
                last = ServerFailed(self.url, f"{method} {path} answered {_status_text(response)}")
                continue
            raise ServerFailed(self.url, f"{method} {path} answered {_status_text(response)}")
        if last is None:
            last = ServerUnreachable(self.url, "client closed")
        raise last

    def _send(self, method: str, path: str, limit: int, kwargs: dict[str, Any]) -> httpx.Response:
        """One request whose answer is read up to ``limit`` bytes (after any Content-Encoding is undone:
        a small gzip body cannot inflate past it either); a longer one is ``ServerFailed``."""
        request = self._http.build_request(method, path, **kwargs)
        response = self._http.send(request, stream=True)
        try:
            declared = response.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > limit and "content-encoding" not in response.headers:
                raise ServerFailed(self.url, f"{method} {path} answered {int(declared):,} bytes, over {limit:,}")
            chunks: list[bytes] = []
            size = 0
            for chunk in response.iter_bytes():
                size += len(chunk)
                if size > limit:
                    raise ServerFailed(self.url, f"{method} {path} answered more than {limit:,} bytes")
                chunks.append(chunk)
        finally:
            response.close()
        headers = [(name, value) for name, value in response.headers.multi_items() if name.lower() not in _DECODED]
        return httpx.Response(response.status_code, headers=headers, content=b"".join(chunks), request=request)


class PromptWatch:
    """What the websocket told us about one prompt. Fed by the listener thread, read by a worker."""

    def __init__(self, prompt_id: str, on_progress: Callable[[Progress], None] | None = None) -> None:
        self.prompt_id = prompt_id
        self.on_progress = on_progress
        self.started = False
        self.ended = False  # executing{node: null}: the server is done with it (history written)
        self.outcome: ExecutionSuccess | ExecutionError | ExecutionInterrupted | None = None
        self.executed: list[Executed] = []
        self._cond = threading.Condition()

    @property
    def finished(self) -> bool:
        """True once an outcome or the final ``executing`` null arrived."""
        return self.ended or self.outcome is not None

    def feed(self, message: Message) -> None:
        """Record one message for this prompt."""
        if isinstance(message, Progress):
            if self.on_progress is not None:
                try:
                    self.on_progress(message)
                except Exception:  # a display callback must never break generation
                    log.exception("progress callback failed")
            return
        with self._cond:
            if isinstance(message, ExecutionStart):
                self.started = True
            elif isinstance(message, Executed):
                self.executed.append(message)
            elif isinstance(message, ExecutionSuccess | ExecutionError | ExecutionInterrupted):
                self.outcome = message
            elif isinstance(message, Executing) and message.node is None:
                self.ended = True
            self._cond.notify_all()

    def poke(self) -> None:
        """Wake the waiter (the socket dropped, or the build is being cancelled)."""
        with self._cond:
            self._cond.notify_all()

    def wait(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for news; True if the prompt has finished."""
        with self._cond:
            if not self.finished:
                self._cond.wait(timeout)
            return self.finished


class EventStream:
    """The websocket of one client id, reconnecting in a background thread."""

    def __init__(self, url: str, *, open_timeout: float = 10.0, use_proxy: bool = False) -> None:
        self.url = url
        self.open_timeout = open_timeout
        self.use_proxy = use_proxy
        self.connected = threading.Event()
        self.queue_remaining: int | None = None
        self.reconnects = 0
        self._closed = threading.Event()
        self._attempted = threading.Event()  # the first connection attempt has resolved
        self._lock = threading.Lock()
        self._watches: dict[str, PromptWatch] = {}
        self._early: OrderedDict[str, list[Message]] = OrderedDict()
        self._ws: ClientConnection | None = None
        self._thread = threading.Thread(target=self._run, name=f"comfyui-ws {url}", daemon=True)

    def start(self) -> None:
        """Start the listener thread."""
        self._thread.start()

    def wait_connected(self, timeout: float) -> bool:
        """Wait (up to ``timeout``) for the first connection attempt; True if the socket is open now.

        Once an attempt has failed there is no waiting: the caller polls until the socket is back.
        """
        self._attempted.wait(timeout)
        return self.connected.is_set()

    def watch(self, prompt_id: str, on_progress: Callable[[Progress], None] | None = None) -> PromptWatch:
        """Start routing ``prompt_id``'s messages to a new watch (replaying any that came first)."""
        watch = PromptWatch(prompt_id, on_progress)
        with self._lock:
            # Replayed under the lock so that no newer message for this prompt overtakes them.
            for message in self._early.pop(prompt_id, []):
                watch.feed(message)
            self._watches[prompt_id] = watch
        return watch

    def unwatch(self, prompt_id: str) -> None:
        """Stop routing ``prompt_id``."""
        with self._lock:
            self._watches.pop(prompt_id, None)
            self._early.pop(prompt_id, None)

    def drop(self) -> None:
        """Close the current socket (the thread reconnects): for tests and stuck connections."""
        ws = self._ws
        if ws is not None:
            with contextlib.suppress(Exception):
                ws.close()

    def close(self) -> None:
        """Stop the thread and close the socket."""
        self._closed.set()
        self._attempted.set()
        self.drop()
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(timeout=2.0)

    def _run(self) -> None:
        delay = 0.05
        while not self._closed.is_set():
            opened = False
            try:
                with connect(
                    self.url,
                    open_timeout=self.open_timeout,
                    max_size=MAX_WS_BYTES,
                    compression=None,
                    close_timeout=1.0,
                    **({} if self.use_proxy else _NO_PROXY),
                ) as ws:
                    self._ws = ws
                    if self._closed.is_set():
                        break
                    opened = True
                    delay = 0.05
                    self.connected.set()
                    self._attempted.set()
                    for frame in ws:
                        message = parse_ws_text(frame) if isinstance(frame, str) else parse_ws_binary(frame)
                        self._dispatch(message)
            except (OSError, WebSocketException, TimeoutError) as error:
                log.debug("websocket %s: %s", self.url, error)
            finally:
                self.connected.clear()
                self._ws = None
                self._attempted.set()
                if opened:
                    self._poke_all()  # waiters switch to polling until we are back
            if self._closed.is_set():
                break
            if opened:
                self.reconnects += 1
            elif self._closed.wait(delay):
                break
            else:
                delay = min(2.0, delay * 2)

    def _dispatch(self, message: Message) -> None:
        if isinstance(message, Status):
            self.queue_remaining = message.queue_remaining
            return
        prompt_id = getattr(message, "prompt_id", None)
        if not isinstance(prompt_id, str):
            return
        with self._lock:
            watch = self._watches.get(prompt_id)
            if watch is None:
                # The POST that created this prompt has not returned yet: keep its messages for later.
                early = self._early.setdefault(prompt_id, [])
                if len(early) < _EARLY_MESSAGES:
                    early.append(message)
                self._early.move_to_end(prompt_id)
                while len(self._early) > _EARLY_PROMPTS:
                    self._early.popitem(last=False)
                return
        watch.feed(message)

    def poke_all(self) -> None:
        """Wake every waiter (cancellation)."""
        self._poke_all()

    def _poke_all(self) -> None:
        with self._lock:
            watches = list(self._watches.values())
        for watch in watches:
            watch.poke()


def _is_loopback(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _describe(error: httpx.TransportError) -> str:
    kind = {
        httpx.ConnectError: "connection refused or failed",
        httpx.ConnectTimeout: "connect timed out",
        httpx.ReadTimeout: "no answer in time (read timeout)",
        httpx.WriteTimeout: "write timed out",
        httpx.PoolTimeout: "connection pool exhausted",
        httpx.RemoteProtocolError: "connection dropped",
        httpx.ReadError: "connection dropped while reading",
    }.get(type(error), type(error).__name__)
    detail = str(error)
    return f"{kind} ({detail})" if detail else kind


def _status_text(response: httpx.Response) -> str:
    text = response.text.strip().replace("\n", " ")
    return f"HTTP {response.status_code}" + (f": {text[:160]}" if text else "")


def _json(response: httpx.Response, what: str) -> Any:
    try:
        return json.loads(response.content)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise ServerFailed(str(response.request.url), f"{what} answered something that is not JSON") from None


def _json_object(response: httpx.Response, what: str) -> dict[str, Any]:
    data = _json(response, what)
    if not isinstance(data, dict):
        raise ServerFailed(str(response.request.url), f"{what} answered JSON that is not an object")
    return data
