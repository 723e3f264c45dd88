"""Run one generation on one server: upload the init image, submit, wait, read history, download.

Waiting uses the websocket when it is up and falls back to polling ``/history`` (plus ``/queue``, to notice
a prompt the server lost, e.g. after a restart) when it is not; a periodic poll also runs while the socket
is up, as a watchdog against lost messages.
"""

from __future__ import annotations

import contextlib
import io
import threading
import time
import uuid
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from typing import Any

from PIL import Image

from pixelbuild.backends.base import BackendIdentity, GenerationJob, Phase, ProgressCallback, ProgressEvent
from pixelbuild.backends.comfyui.client import (
    ComfyClient,
    ImageMissing,
    PromptWatch,
    ServerFailed,
    ServerUnreachable,
)
from pixelbuild.backends.comfyui.errors import (
    execution_error,
    interrupted_error,
    node_errors_error,
    rejection_error,
)
from pixelbuild.backends.comfyui.ledger import PromptLedger, PromptRecord, graph_fingerprint
from pixelbuild.backends.comfyui.messages import (
    ExecutionError,
    ExecutionInterrupted,
    ExecutionSuccess,
    HistoryEntry,
    PromptRejected,
    output_images,
    valid_prompt_id,
)
from pixelbuild.backends.comfyui.scheduler import ServerDown
from pixelbuild.backends.comfyui.workflow import BoundWorkflow, Graph, copy_graph
from pixelbuild.errors import GenerationError
from pixelbuild.hashing import hash_bytes
from pixelbuild.limits import MAX_PIXELS
from pixelbuild.png import check_png

_WATCHDOG_INTERVAL = 5.0  # poll /history this often even while the websocket is up
_POLL_INTERVAL = 0.25  # ... and this often while it is down
_HISTORY_GRACE = 5.0  # seconds to wait for the history entry after the websocket said "done"
_LOST_STRIKES = 2  # polls in a row that find the prompt neither queued nor in history
_MAX_RESUBMITS = 3  # lost prompts, deleted output files, foreign interrupts
_WITHDRAW_TIMEOUT = 3.0  # seconds per request when taking a prompt back (cancel, timeout)


class Cancelled(GenerationError):
    """The build was cancelled (Ctrl-C) before this generation finished."""


@dataclass
class Task:
    """One distinct generation (jobs with the same key share it)."""

    key: str
    job: GenerationJob
    bound: BoundWorkflow
    group: Any
    init_image: bytes | None = None
    sprites: list[str] = field(default_factory=list)

    @property
    def sprite(self) -> str:
        """The sprite named in errors (the first that asked for this generation)."""
        return self.job.sprite_id


@dataclass
class Finished:
    """A successful generation: the PNG bytes as downloaded (decoded on demand) and provenance."""

    pngs: list[bytes]
    identity: BackendIdentity
    info: dict[str, object]

    def images(self) -> list[Image.Image]:
        """The images without any PNG metadata (ComfyUI writes the prompt into a tEXt chunk)."""
        return [decode_clean(data) for data in self.pngs]


class ServerHandle:
    """A server as the runner sees it: its client, version, uploads made and prompts in flight."""

    def __init__(self, client: ComfyClient, version: str, upload_subfolder: str) -> None:
        self.client = client
        self.version = version
        self.upload_subfolder = upload_subfolder
        self.in_flight: dict[str, str] = {}  # prompt_id -> job key
        self.lock = threading.Lock()
        self._uploads: dict[str, str] = {}  # content hash -> LoadImage value
        self._upload_locks: dict[str, threading.Lock] = {}

    @property
    def url(self) -> str:
        """The server's base URL."""
        return self.client.url

    def upload_once(self, data: bytes, suffix: str = ".png") -> str:
        """Upload ``data`` under its content hash, once per server and run; return the LoadImage value."""
        digest = hash_bytes(data)
        with self.lock:
            if digest in self._uploads:
                return self._uploads[digest]
            lock = self._upload_locks.setdefault(digest, threading.Lock())
        with lock:  # two jobs sharing an init image wait for one upload
            with self.lock:
                if digest in self._uploads:
                    return self._uploads[digest]
            name = self.client.upload_image(data, f"{digest}{suffix}", self.upload_subfolder)
            with self.lock:
                self._uploads[digest] = name
            return name


def run_task(
    server: ServerHandle,
    task: Task,
    *,
    turn: AbstractContextManager[Any] | None = None,
    cancelled: threading.Event,
    job_timeout: float | None,
    progress: ProgressCallback | None,
    ledger: PromptLedger | None = None,
) -> Finished:
    """Run ``task`` on ``server``, noting each prompt in ``ledger`` before posting it. Raises
    ``GenerationError`` (the job failed), ``Cancelled``, or ``ServerDown`` (the server failed: run it
    elsewhere)."""
    try:
        return _run(server, task, turn or nullcontext(), cancelled, job_timeout, progress, ledger)
    except ServerUnreachable as error:
        raise ServerDown(f"{error.url}: {error.cause}") from None
    except ServerFailed as error:
        raise GenerationError(f"ComfyUI at {error.url} failed: {error.detail}", sprite=task.sprite) from None


def _run(
    server: ServerHandle,
    task: Task,
    turn: AbstractContextManager[Any],
    cancelled: threading.Event,
    job_timeout: float | None,
    progress: ProgressCallback | None,
    ledger: PromptLedger | None,
) -> Finished:
    client = server.client
    events = client.events()
    bound = task.bound
    emit = _emitter(progress, task, server.url)
    if cancelled.is_set():
        raise Cancelled("cancelled before it started", sprite=task.sprite)
    base: Graph = bound.graph
    if bound.init_targets:
        assert task.init_image is not None
        base = bound.with_init_image(server.upload_once(task.init_image, init_suffix(task)))
    # Messages for our client id go nowhere while no socket is open; wait briefly, then rely on polling.
    events.wait_connected(min(2.0, client.timeout))

    for attempt in range(_MAX_RESUBMITS + 1):
        graph = _with_fresh_prefix(base, bound.output_node, attempt) if attempt else base
        # Our own id, in the ledger before the POST: a build killed at any point after it can find the prompt.
        prompt_id = uuid.uuid4().hex
        fingerprint = graph_fingerprint(graph)
        if ledger is not None:
            ledger.submitted(PromptRecord(server.url, prompt_id, task.key, fingerprint, time.time()))
        # In flight from before the POST: a cancel() while it is under way takes the prompt back too.
        with server.lock:
            server.in_flight[prompt_id] = task.key
        try:
            with turn:  # after the prompts this server took before ours, so it runs them in that order
                answer = client.submit(graph, prompt_id)
        except BaseException:
            with server.lock:
                server.in_flight.pop(prompt_id, None)
            raise
        if isinstance(answer, PromptRejected) or answer.prompt_id != prompt_id:
            with server.lock:
                server.in_flight.pop(prompt_id, None)
        if isinstance(answer, PromptRejected):
            if ledger is not None:
                ledger.dropped(prompt_id)
            raise rejection_error(answer, sprite=task.sprite, server=server.url, bound=bound)
        if answer.prompt_id != prompt_id and ledger is not None:
            # A server that chooses its own ids: note the one it chose, still before waiting on it.
            ledger.dropped(prompt_id)
            if valid_prompt_id(answer.prompt_id):
                ledger.submitted(PromptRecord(server.url, answer.prompt_id, task.key, fingerprint, time.time()))
        prompt_id = answer.prompt_id
        with server.lock:
            server.in_flight[prompt_id] = task.key
        try:
            if answer.node_errors:
                # Queued with some outputs dropped: not what we asked for. Take it back, report why.
                _withdraw(client, prompt_id)
                if ledger is not None:
                    ledger.dropped(prompt_id)
                raise node_errors_error(answer.node_errors, sprite=task.sprite, server=server.url, bound=bound)
            emit("queued")
            watch = events.watch(prompt_id, on_progress=lambda message: emit("sampling", message.value, message.max))
            try:
                entry = _await(client, watch, prompt_id, task, cancelled, job_timeout)
            finally:
                events.unwatch(prompt_id)
        finally:
            with server.lock:
                server.in_flight.pop(prompt_id, None)
        useless = entry is None or entry.error is not None or entry.interrupted is not None or entry.status == "error"
        if useless and ledger is not None:
            ledger.dropped(prompt_id)  # lost, failed or interrupted: a rerun has nothing to collect
        if entry is None:  # the server lost it (restart, queue cleared by someone): submit again
            continue
        if entry.error is not None:
            raise execution_error(entry.error, sprite=task.sprite, server=server.url, bound=bound)
        if entry.interrupted is not None or entry.status == "error":
            if cancelled.is_set():
                raise Cancelled("cancelled while it was running", sprite=task.sprite)
            if attempt < _MAX_RESUBMITS:
                continue  # interrupted by someone else: our build did not ask for that
            raise interrupted_error(entry.interrupted, sprite=task.sprite, server=server.url)
        try:
            return collect(server, task, entry, emit)
        except ImageMissing:
            # A cached prompt replays the first run's file names; if those files were deleted on the
            # server, a new filename_prefix re-runs only the SaveImage node.
            if ledger is not None:
                ledger.dropped(prompt_id)
            continue
    raise GenerationError(
        f"ComfyUI at {server.url} kept losing the prompt or its output files ({_MAX_RESUBMITS + 1} tries)",
        sprite=task.sprite,
    )


def collect(server: ServerHandle, task: Task, entry: HistoryEntry, emit: Callable[..., None]) -> Finished:
    """Download and check the images of a successful history entry. ``ImageMissing`` if a file is gone."""
    bound = task.bound
    refs = output_images(entry, bound.output_node)
    expected = task.job.spec.batch_size
    if len(refs) != expected:
        raise GenerationError(
            f"ComfyUI at {server.url} returned {len(refs)} output image(s) for workflow "
            f"'{bound.template}', expected {expected} (batch_size)",
            sprite=task.sprite,
        )
    emit("downloading")
    pngs = [server.client.view(ref) for ref in refs]
    for data in pngs:
        try:
            decode_clean(data)
        except (OSError, ValueError, Image.DecompressionBombError) as error:
            raise GenerationError(
                f"ComfyUI at {server.url} sent an image that does not decode: {error}", sprite=task.sprite
            ) from None
    emit("done")
    spec = task.job.spec
    models = (spec.checkpoint, *(f"lora:{lora.name}@{_weight(lora.weight)}" for lora in spec.loras))
    return Finished(
        pngs=pngs,
        identity=BackendIdentity(name="comfyui", version=server.version, models=models),
        info={
            "server": server.url,
            "prompt_id": entry.prompt_id,
            "files": [f"{ref.subfolder}/{ref.filename}".lstrip("/") for ref in refs],
        },
    )


def init_suffix(task: Task) -> str:
    """The file suffix an init image is uploaded with (``.png`` when its path has none)."""
    path = task.job.init_image_path
    return ("." + (path.suffix.lstrip(".") if path else "png")).lower()


def expected_fingerprints(task: Task, upload_subfolder: str) -> frozenset[str]:
    """The fingerprints of every graph ``run_task`` may post for ``task`` (each resubmission's too), with
    the init image under the content-hash name ``upload_once`` gives it."""
    bound = task.bound
    base: Graph = bound.graph
    if bound.init_targets:
        if task.init_image is None:
            return frozenset()
        name = f"{hash_bytes(task.init_image)}{init_suffix(task)}"
        base = bound.with_init_image(f"{upload_subfolder}/{name}" if upload_subfolder else name)
    return frozenset(
        graph_fingerprint(_with_fresh_prefix(base, bound.output_node, attempt) if attempt else base)
        for attempt in range(_MAX_RESUBMITS + 1)
    )


def emitter(progress: ProgressCallback | None, task: Task, server: str) -> Callable[..., None]:
    """A function ``emit(phase, value=0, max=0)`` that sends ``task``'s progress events (never raising)."""
    return _emitter(progress, task, server)


def _await(
    client: ComfyClient,
    watch: PromptWatch,
    prompt_id: str,
    task: Task,
    cancelled: threading.Event,
    job_timeout: float | None,
) -> HistoryEntry | None:
    """Wait for the prompt's history entry; None if the server lost the prompt."""
    events = client.events()
    started = time.monotonic()
    last_poll = started
    seen_reconnects = events.reconnects
    strikes = 0
    while True:
        if cancelled.is_set():
            _withdraw(client, prompt_id)
            raise Cancelled("cancelled while it was queued or running", sprite=task.sprite)
        # Trust the socket only while it has been up all along; after a drop, messages may be lost.
        trusted = events.connected.is_set() and events.reconnects == seen_reconnects and not strikes
        finished = watch.wait(1.0 if trusted else _POLL_INTERVAL)
        if finished:
            return _history_after_end(client, watch, prompt_id, cancelled)
        now = time.monotonic()
        if job_timeout is not None and now - started > job_timeout:
            _withdraw(client, prompt_id)
            raise GenerationError(
                f"ComfyUI at {client.url} did not finish within job_timeout ({job_timeout:g} s); "
                "the prompt was taken back",
                sprite=task.sprite,
            )
        if trusted and now - last_poll < _WATCHDOG_INTERVAL:
            continue
        last_poll = now
        seen_reconnects = events.reconnects
        entry = client.history(prompt_id)
        if entry is not None:
            return entry
        running, pending = client.queue()
        if prompt_id in running or prompt_id in pending:
            strikes = 0
            continue
        entry = client.history(prompt_id)  # it may have finished between the two requests
        if entry is not None:
            return entry
        strikes += 1
        if strikes >= _LOST_STRIKES:
            return None


def _history_after_end(
    client: ComfyClient, watch: PromptWatch, prompt_id: str, cancelled: threading.Event
) -> HistoryEntry | None:
    """History once the websocket reported the end; it is written just before ``executing`` null."""
    deadline = time.monotonic() + _HISTORY_GRACE
    delay = 0.02
    while True:
        entry = client.history(prompt_id)
        if entry is not None:
            return entry
        if time.monotonic() > deadline or cancelled.is_set():
            break
        time.sleep(delay)
        delay = min(0.5, delay * 2)
    # No history (a server that keeps none): build the entry from what the websocket told us.
    outcome = watch.outcome
    if isinstance(outcome, ExecutionError):
        return HistoryEntry(prompt_id, "error", False, {}, error=outcome)
    if isinstance(outcome, ExecutionInterrupted):
        return HistoryEntry(prompt_id, "error", False, {}, interrupted=outcome)
    if isinstance(outcome, ExecutionSuccess) or watch.ended:
        return HistoryEntry(prompt_id, "success", True, {done.node: done.images for done in watch.executed})
    return None


def _withdraw(client: ComfyClient, prompt_id: str) -> None:
    """Delete the prompt from the queue, or interrupt it if it is running (best effort)."""
    with contextlib.suppress(ServerUnreachable, ServerFailed):
        client.delete_queued([prompt_id], timeout=_WITHDRAW_TIMEOUT)
    with contextlib.suppress(ServerUnreachable, ServerFailed):
        client.interrupt(prompt_id, timeout=_WITHDRAW_TIMEOUT)


def _with_fresh_prefix(graph: Graph, output_node: str, attempt: int) -> Graph:
    fresh = copy_graph(graph)
    inputs = fresh[output_node]["inputs"]
    inputs["filename_prefix"] = f"{inputs.get('filename_prefix', 'pixelbuild')}_r{attempt}"
    return fresh


def _emitter(progress: ProgressCallback | None, task: Task, server: str) -> Callable[..., None]:
    def emit(phase: Phase, value: int = 0, maximum: int = 0) -> None:
        if progress is None:
            return
        with contextlib.suppress(Exception):  # a display must never break generation
            progress(ProgressEvent(task.key, task.sprite, server, phase, value, maximum))

    return emit


def _weight(weight: float) -> str:
    return format(float(weight), "g")


def decode_clean(data: bytes) -> Image.Image:
    """Decode PNG bytes to a fresh image that carries no metadata (no text chunks, no info); ``ValueError`` for
    anything but a PNG of at most one frame's largest size (a server's reply is sized before it is inflated)."""
    check_png(data, MAX_PIXELS)
    with Image.open(io.BytesIO(data), formats=("PNG",)) as image:
        image.load()
        mode = image.mode
        if mode not in ("RGB", "RGBA", "L", "LA"):
            has_alpha = "A" in mode or "transparency" in image.info
            mode = "RGBA" if has_alpha else "RGB"
        converted = image.convert(mode) if mode != image.mode else image
        return Image.frombytes(mode, converted.size, converted.tobytes())
