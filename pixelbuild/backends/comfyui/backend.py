"""The ComfyUI ``Backend``: preflight in ``start``, pipelined generation on one or more servers, blocking
and thread-safe ``result``, ``cancel`` that takes our prompts back from the servers.

``ordered(jobs)`` groups jobs sharing a checkpoint + LoRA set, the order this backend works through them
(the engine orders its own tasks so); ``set_progress_callback`` feeds a progress display; ``settled(key)``
says a result is safely in the engine's cache.

Every prompt is noted in the project's prompt ledger before it is posted (``ledger.py``); ``start`` first
collects what an earlier, killed build left on the servers (``resume.py``) and submits only the rest.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

from pixelbuild.backends.base import Backend, GenerationJob, GenerationResult, ProgressCallback, ProgressEvent
from pixelbuild.backends.comfyui.client import ComfyClient, ServerFailed, ServerUnreachable
from pixelbuild.backends.comfyui.config import ENV_URL, ComfySettings
from pixelbuild.backends.comfyui.ledger import PromptLedger
from pixelbuild.backends.comfyui.preflight import (
    Catalog,
    PreflightError,
    check_bound,
    check_pins,
    fetch_catalog,
)
from pixelbuild.backends.comfyui.resume import Resumer, ResumeStats
from pixelbuild.backends.comfyui.runner import (
    Cancelled,
    Finished,
    ServerHandle,
    Task,
    run_task,
)
from pixelbuild.backends.comfyui.scheduler import Scheduler, ServerDown, Turn
from pixelbuild.backends.comfyui.workflow import Graph, bind, load_template, model_set
from pixelbuild.errors import BackendUnavailable, GenerationError, ManifestError, PixelbuildError
from pixelbuild.local.filehashes import FileHashCache
from pixelbuild.local.layout import model_hashes_path

log = logging.getLogger(__name__)

_CANCEL_TIMEOUT = 3.0  # seconds per request while cancelling: Ctrl-C must return promptly
_PREFIX_KEY_CHARS = 16


class ComfyUIBackend:
    """Generates images on ComfyUI servers. Create with ``pixelbuild.backends.comfyui.create``."""

    name = "comfyui"

    def __init__(self, settings: ComfySettings, project_root: Path) -> None:
        self.settings = settings
        self.project_root = project_root
        self._clients = [
            ComfyClient(server.url, timeout=settings.timeout, retries=settings.retries) for server in settings.servers
        ]
        self._live: list[ServerHandle] = []  # servers that answered at start; scheduler indexes
        self._live_slots: list[int] = []
        self._catalogs: list[Catalog] = []
        self._connected = False
        self._tasks: dict[str, Task] = {}
        self._outcomes: dict[str, Finished | PixelbuildError] = {}
        self._cond = threading.Condition()
        self._cancelled = threading.Event()
        self._closed = False
        self._scheduler: Scheduler[Task] | None = None
        self._templates: dict[Path, Graph] = {}
        self._progress: ProgressCallback | None = None
        self._eligible: dict[str, frozenset[int]] = {}
        self.ledger = PromptLedger.for_project(project_root)
        self._resumer: Resumer | None = None

    # --- engine-facing API -----------------------------------------------------------------------------

    def set_progress_callback(self, callback: ProgressCallback | None) -> None:
        """Receive a ``ProgressEvent`` per phase and sampler step (from worker threads: keep it quick)."""
        self._progress = callback

    def ordered(self, jobs: Sequence[GenerationJob]) -> list[GenerationJob]:
        """``jobs`` in the order this backend runs them: grouped by checkpoint + LoRA set (first seen first),
        manifest order within a group."""
        groups: dict[object, list[GenerationJob]] = {}
        for job in jobs:
            groups.setdefault(model_set(job.spec), []).append(job)
        return [job for group in groups.values() for job in group]

    def start(self, jobs: Sequence[GenerationJob]) -> None:
        """Bind and preflight every job (raising before any GPU time), then start generating."""
        if self._closed or self._cancelled.is_set():
            raise RuntimeError("the ComfyUI backend was closed or cancelled; create a new one")
        new_tasks = self._prepare(jobs)
        if not new_tasks:
            return
        self._connect()
        eligible = self._preflight(new_tasks)
        with self._cond:
            for task in new_tasks:
                self._tasks[task.key] = task
            self._eligible.update(eligible)
        assert self._scheduler is not None and self._resumer is not None
        to_submit = self._resumer.survey(new_tasks, eligible)
        self._scheduler.add([(task, task.group, eligible[task.key]) for task in self._order_tasks(to_submit)])

    def settled(self, key: str) -> None:
        """The engine has stored ``key``'s result in its cache: the ledger may forget its prompts."""
        if key in self._tasks:
            self.ledger.settled(key)

    def result(self, key: str) -> GenerationResult:
        """Block until the job with generation key ``key`` is done; raise its error if it failed."""
        with self._cond:
            if key not in self._tasks:
                raise KeyError(f"no ComfyUI job with key {key!r} was started")
            while key not in self._outcomes:
                self._cond.wait()
            outcome = self._outcomes[key]
        if isinstance(outcome, PixelbuildError):
            raise outcome.with_traceback(None)
        return GenerationResult(images=outcome.images(), identity=outcome.identity, info=dict(outcome.info))

    def cancel(self) -> None:
        """Take our prompts back: delete the queued ones, interrupt the running ones; then return.

        Finished results stay available; every unfinished job fails with ``Cancelled``.
        """
        self._cancelled.set()
        if self._scheduler is not None:
            for task in self._scheduler.cancel():
                self._finish(task.key, Cancelled("cancelled before it started", sprite=task.sprite))
        for server in self._live:
            with server.lock:
                prompt_ids = list(server.in_flight)
            if not prompt_ids:
                continue
            # Delete first: interrupting first would let the server start our next queued prompt.
            try:
                server.client.delete_queued(prompt_ids, retries=0, timeout=_CANCEL_TIMEOUT)
            except (ServerUnreachable, ServerFailed) as error:
                log.warning("could not delete queued prompts on %s: %s", server.url, error)
            for prompt_id in prompt_ids:
                try:
                    server.client.interrupt(prompt_id, retries=0, timeout=_CANCEL_TIMEOUT)
                except (ServerUnreachable, ServerFailed) as error:
                    log.warning("could not interrupt %s on %s: %s", prompt_id, server.url, error)
                    break
            server.client.events().poke_all()

    def close(self) -> None:
        """Stop the worker threads (withdrawing anything still in flight) and close connections."""
        if self._closed:
            return
        self._closed = True
        with self._cond:
            unfinished = [key for key in self._tasks if key not in self._outcomes]
        if unfinished:
            self.cancel()
        if self._resumer is not None:
            self._resumer.close()
        if self._scheduler is not None:
            self._scheduler.close()
        for client in self._clients:
            client.close()
        self.ledger.close()
        with self._cond:
            for key, task in self._tasks.items():
                self._outcomes.setdefault(key, Cancelled("the backend was closed", sprite=task.sprite))
            self._cond.notify_all()

    # --- start -----------------------------------------------------------------------------------------

    def _prepare(self, jobs: Sequence[GenerationJob]) -> list[Task]:
        tasks: dict[str, Task] = {}
        for job in jobs:
            known = self._tasks.get(job.key) or tasks.get(job.key)
            if known is not None:
                known.sprites.append(job.sprite_id)
                continue
            spec = job.spec
            template = self._template(job)
            name = spec.workflow or job.workflow_path.stem
            prefix = f"{self.settings.output_prefix}/{_safe(job.key)[:_PREFIX_KEY_CHARS]}"
            bound = bind(template, spec, template_name=name, output_prefix=prefix, sprite=job.sprite_id)
            init = None
            if bound.init_targets:
                if job.init_image_path is None:
                    raise ManifestError(
                        "the workflow needs an init image file", sprite=job.sprite_id, field="init_image"
                    )
                try:
                    init = job.init_image_path.read_bytes()
                except OSError as error:
                    raise ManifestError(
                        f"cannot read init image {job.init_image_path}: {error.strerror or error}",
                        sprite=job.sprite_id,
                        field="init_image",
                    ) from None
            tasks[job.key] = Task(job.key, job, bound, model_set(spec), init, [job.sprite_id])
        return list(tasks.values())

    def _template(self, job: GenerationJob) -> Graph:
        path = job.workflow_path
        if path not in self._templates:
            self._templates[path] = load_template(path, sprite=job.sprite_id)
        return self._templates[path]

    def _connect(self) -> None:
        if self._connected:
            return
        failures: list[str] = []

        def probe(client: ComfyClient) -> tuple[str, Catalog] | str:
            try:
                version = client.version()
                return version, fetch_catalog(client, version)
            except ServerUnreachable as error:
                return f"{client.url} ({error.cause})"
            except ServerFailed as error:
                return f"{client.url} ({error.detail})"

        # In parallel: one slow or unreachable server must not hold up the start of the others.
        with ThreadPoolExecutor(max_workers=len(self._clients), thread_name_prefix="comfyui-connect") as pool:
            answers = list(pool.map(probe, self._clients))
        for client, config, answer in zip(self._clients, self.settings.servers, answers, strict=True):
            if isinstance(answer, str):
                failures.append(answer)
                client.close()
                continue
            version, catalog = answer
            client.events()  # open the websocket now: it must be up before our first POST /prompt
            self._live.append(ServerHandle(client, version, self.settings.upload_subfolder))
            self._live_slots.append(config.max_in_flight)
            self._catalogs.append(catalog)
        if not self._live:
            raise _unavailable(failures, self.settings.servers_source)
        for failure in failures:
            log.warning("ComfyUI server %s does not answer; working with the others", failure)
        self._scheduler = Scheduler(
            self._live_slots,
            work=self._work,
            give_up=self._give_up,
            probe=self._probe,
            unavailable_timeout=self.settings.unavailable_timeout,
        )
        self._scheduler.start()
        self._resumer = Resumer(
            self._live,
            self.ledger,
            upload_subfolder=self.settings.upload_subfolder,
            cancelled=self._cancelled,
            progress=lambda: self._progress,
            finish=self._finish,
            resubmit=self._resubmit,
            job_timeout=self.settings.job_timeout,
        )
        self._connected = True

    def _preflight(self, tasks: Sequence[Task]) -> dict[str, frozenset[int]]:
        problems: list[GenerationError] = []
        eligible: dict[str, frozenset[int]] = {}
        # A fleet usually runs one setup: check each job once per distinct catalog, not once per server.
        shared: list[int] = []  # server index -> index of the first server with an equal catalog
        for index, catalog in enumerate(self._catalogs):
            shared.append(
                next(
                    first
                    for first in range(index + 1)
                    if first == index
                    or (
                        self._catalogs[first].object_info == catalog.object_info
                        and self._catalogs[first].models == catalog.models
                    )
                )
            )
        for task in tasks:
            checked = {
                first: check_bound(task.bound, self._catalogs[first], sprite=task.sprite) for first in set(shared)
            }
            per_server = [checked[first] for first in shared]
            ok = frozenset(index for index, found in enumerate(per_server) if not found)
            if ok:
                eligible[task.key] = ok
            else:
                problems.extend(per_server[0])
        problems.extend(
            check_pins(
                [(task.sprite, task.job.spec) for task in tasks],
                self.settings.models_dir,
                FileHashCache(model_hashes_path(self.project_root), algorithm="sha256"),
                self.settings.model_sha256,
            )
        )
        if problems:
            raise PreflightError(problems)
        return eligible

    def _order_tasks(self, tasks: Sequence[Task]) -> list[Task]:
        by_job = {id(task.job): task for task in tasks}
        return [by_job[id(job)] for job in self.ordered([task.job for task in tasks])]

    # --- worker side -----------------------------------------------------------------------------------

    def _work(self, index: int, task: Task, turn: Turn) -> None:
        server = self._live[index]
        try:
            finished = run_task(
                server,
                task,
                turn=turn,
                cancelled=self._cancelled,
                job_timeout=self.settings.job_timeout,
                progress=self._progress,
                ledger=self.ledger,
            )
        except ServerDown:
            raise
        except PixelbuildError as error:
            self._emit_failed(task, server.url)
            self._finish(task.key, error)
        except Exception as error:  # a bug: fail this job with a message rather than hang the build
            log.exception("unexpected error running %s on %s", task.sprite, server.url)
            self._emit_failed(task, server.url)
            self._finish(
                task.key,
                GenerationError(f"internal error: {type(error).__name__}: {error}", sprite=task.sprite),
            )
        else:
            self._finish(task.key, finished)

    def _resubmit(self, task: Task) -> None:
        """Queue ``task`` for submission after all (an earlier build's prompt could not be collected)."""
        if self._scheduler is not None and not self._cancelled.is_set():
            self._scheduler.add([(task, task.group, self._eligible[task.key])])
        else:
            self._finish(task.key, Cancelled("cancelled before it started", sprite=task.sprite))

    def _give_up(self, task: Task, reason: str) -> None:
        urls = ", ".join(server.url for server in self._live)
        self._finish(
            task.key,
            BackendUnavailable(
                f"no ComfyUI server could run sprite '{task.sprite}' ({reason}); servers: {urls}. "
                f"Check that they are running, or point pixelbuild at others with {ENV_URL} or --server."
            ),
        )

    def _probe(self, index: int) -> bool:
        try:
            self._live[index].client.system_stats(retries=0)
        except (ServerUnreachable, ServerFailed):
            return False
        return True

    def _finish(self, key: str, outcome: Finished | PixelbuildError) -> None:
        with self._cond:
            self._outcomes.setdefault(key, outcome)
            self._cond.notify_all()

    def _emit_failed(self, task: Task, server: str) -> None:
        if self._progress is not None:
            try:
                self._progress(ProgressEvent(task.key, task.sprite, server, "failed"))
            except Exception:
                log.exception("progress callback failed")

    # --- for tests and benchmarks ----------------------------------------------------------------------

    @property
    def scheduler(self) -> Scheduler[Task] | None:
        """The dispatcher (its ``stats`` count dispatches and model-group switches per server)."""
        return self._scheduler

    @property
    def resume_stats(self) -> ResumeStats | None:
        """What ``start`` found of an earlier build's prompts (None before the first start)."""
        return self._resumer.stats if self._resumer is not None else None

    @property
    def servers(self) -> list[ServerHandle]:
        """Servers that answered at start."""
        return list(self._live)


def _unavailable(failures: Sequence[str], source: str) -> BackendUnavailable:
    where = "; ".join(failures)
    origin = "the default" if source == "default" else source
    return BackendUnavailable(
        f"No ComfyUI server answers at {where}. Start one (in a ComfyUI folder: "
        "`python main.py --listen 127.0.0.1 --port 8188`), or point pixelbuild at a running server with "
        f"{ENV_URL}=http://host:8188 (comma-separate several) or `--server http://host:8188`; "
        f"the server list came from {origin}."
    )


def _safe(key: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]", "_", key)


if TYPE_CHECKING:
    _implements: type[Backend] = ComfyUIBackend  # mypy proves the whole protocol is there
