"""Collecting the prompts an earlier, killed build left on the servers (see ``ledger.py``).

Before submitting anything, the backend asks each configured server that answers about the ledger's
prompts for the generation keys it needs now: ``GET /queue`` once (a snapshot, taken first, so a prompt
missing from it can only be finished or unknown), then ``GET /history/{id}`` for the rest. A prompt is
used only if the server's copy of its graph has the fingerprint the ledger noted and that fingerprint is
one of those we would post for the key today; anything else is dropped from the ledger.

- finished successfully: its images are downloaded (``/view``) and checked, no prompt is posted;
- still queued or running: it is *adopted*: one thread per server polls ``/queue`` and ``/history`` until it
  ends (its websocket messages go to the dead build's client id), then downloads it;
- unknown to the server, failed, interrupted, or not matching: its record is dropped.

Whatever cannot be collected after all (files deleted, server gone, prompt lost) goes to the scheduler and
is submitted as if there had been no record. Extra queued copies of one key (several crashes) are taken
back from the queue.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from pixelbuild.backends.base import ProgressCallback
from pixelbuild.backends.comfyui.client import ImageMissing, ServerFailed, ServerUnreachable
from pixelbuild.backends.comfyui.ledger import PromptLedger, PromptRecord, graph_fingerprint
from pixelbuild.backends.comfyui.messages import HistoryEntry
from pixelbuild.backends.comfyui.runner import (
    Cancelled,
    Finished,
    ServerHandle,
    Task,
    collect,
    emitter,
    expected_fingerprints,
)
from pixelbuild.errors import GenerationError, PixelbuildError

log = logging.getLogger(__name__)

_POLL_INTERVAL = 0.5  # seconds between /queue polls of adopted prompts
_LOST_STRIKES = 2  # polls in a row that find an adopted prompt neither queued nor in history
_SURVEY_WORKERS = 8


@dataclass
class ResumeStats:
    """What the survey found: results collected, prompts adopted, records dropped, duplicates withdrawn,
    and tasks handed back to be submitted after all."""

    collected: int = 0
    adopted: int = 0
    dropped: int = 0
    withdrawn: int = 0
    resubmitted: int = 0


@dataclass(frozen=True, slots=True)
class _Found:
    task: Task
    record: PromptRecord
    entry: HistoryEntry | None  # None: still queued or running


class Resumer:
    """Surveys the ledger's prompts at ``start`` and follows the adopted ones; see the module docstring."""

    def __init__(
        self,
        servers: Sequence[ServerHandle],
        ledger: PromptLedger,
        *,
        upload_subfolder: str,
        cancelled: threading.Event,
        progress: Callable[[], ProgressCallback | None],
        finish: Callable[[str, Finished | PixelbuildError], None],
        resubmit: Callable[[Task], None],
        job_timeout: float | None,
    ) -> None:
        self._servers = servers
        self._ledger = ledger
        self._upload_subfolder = upload_subfolder
        self._cancelled = cancelled
        self._progress = progress
        self._finish = finish
        self._resubmit = resubmit
        self._job_timeout = job_timeout
        self._records: dict[str, list[PromptRecord]] | None = None
        self._threads: list[threading.Thread] = []
        self._closed = threading.Event()
        self.stats = ResumeStats()

    def survey(self, tasks: Sequence[Task], eligible: Mapping[str, frozenset[int]]) -> list[Task]:
        """Collect or adopt what the ledger knows for ``tasks``; return the tasks still to submit."""
        if self._records is None:
            self._records = self._ledger.load()
        by_url = {server.url: index for index, server in enumerate(self._servers)}
        asked: dict[int, list[tuple[Task, PromptRecord]]] = {}
        for task in tasks:
            for record in self._records.pop(task.key, []):
                index = by_url.get(record.server)  # only servers configured (and answering) now
                if index is not None and index in eligible.get(task.key, frozenset()):
                    asked.setdefault(index, []).append((task, record))
        if not asked:
            return list(tasks)
        with ThreadPoolExecutor(
            max_workers=min(_SURVEY_WORKERS, len(asked)), thread_name_prefix="comfyui-survey"
        ) as pool:
            answers = dict(zip(asked, pool.map(lambda index: self._ask(index, asked[index]), asked), strict=True))
        done: dict[str, tuple[int, _Found]] = {}
        queued: dict[str, tuple[int, _Found]] = {}
        extra: list[tuple[int, _Found]] = []
        for index, found in answers.items():
            for item in found:
                key = item.task.key
                if item.entry is not None and key not in done:
                    done[key] = (index, item)
                elif item.entry is None and key not in queued:
                    queued[key] = (index, item)
                elif item.entry is None:
                    extra.append((index, item))
        for key in done.keys() & queued.keys():  # finished elsewhere already: the queued copy is not needed
            extra.append(queued.pop(key))
        for index, item in extra:
            self._withdraw(index, item.record)
        handled = set(done) | set(queued)
        for index, item in done.values():
            self.stats.collected += 1
            self._spawn(f"comfyui-collect-{index}", self._collect_finished, index, item)
        adopted: dict[int, list[_Found]] = {}
        for index, item in queued.values():
            self.stats.adopted += 1
            server = self._servers[index]
            with server.lock:
                server.in_flight[item.record.prompt_id] = item.task.key  # so that cancel() takes it back
            emitter(self._progress(), item.task, server.url)("queued")
            adopted.setdefault(index, []).append(item)
        for index, items in adopted.items():
            self._spawn(f"comfyui-follow-{index}", self._follow, index, items)
        if done or queued:
            log.info(
                "ComfyUI: collecting %d finished and following %d queued prompt(s) of an earlier build",
                len(done),
                len(queued),
            )
        return [task for task in tasks if task.key not in handled]

    def close(self, timeout: float = 5.0) -> None:
        """Stop following adopted prompts (they stay queued; ``cancel`` is what takes them back)."""
        self._closed.set()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))

    # --- survey ------------------------------------------------------------------------------------------

    def _ask(self, index: int, items: list[tuple[Task, PromptRecord]]) -> list[_Found]:
        """What server ``index`` knows of the records ``items``; records it cannot vouch for are dropped."""
        client = self._servers[index].client
        try:
            on_queue = client.queue_prompts()  # first: a prompt missing here is finished or unknown
        except (ServerUnreachable, ServerFailed) as error:
            log.warning("ComfyUI at %s: cannot survey earlier prompts: %s", client.url, error)
            return []  # the records stay: the next build asks again
        found: list[_Found] = []
        fingerprints: dict[str, frozenset[str]] = {}
        for task, record in items:
            if task.key not in fingerprints:
                fingerprints[task.key] = expected_fingerprints(task, self._upload_subfolder)
            if record.graph not in fingerprints[task.key]:
                self._drop(record)  # not what we would post for this key today
                continue
            if record.prompt_id in on_queue:
                graph = on_queue[record.prompt_id]
                if graph is not None and graph_fingerprint(graph) == record.graph:
                    found.append(_Found(task, record, None))
                else:
                    self._drop(record)
                continue
            try:
                entry = client.history(record.prompt_id)
            except (ServerUnreachable, ServerFailed) as error:
                log.warning("ComfyUI at %s: cannot survey earlier prompts: %s", client.url, error)
                break
            if entry is not None and _succeeded(entry) and _matches(entry, record):
                found.append(_Found(task, record, entry))
            else:
                self._drop(record)  # unknown to the server now, failed, or not the graph we noted
        return found

    def _drop(self, record: PromptRecord) -> None:
        self.stats.dropped += 1
        self._ledger.dropped(record.prompt_id)

    def _withdraw(self, index: int, record: PromptRecord) -> None:
        client = self._servers[index].client
        with contextlib.suppress(ServerUnreachable, ServerFailed):
            client.delete_queued([record.prompt_id], timeout=3.0)
            self.stats.withdrawn += 1
        self._ledger.dropped(record.prompt_id)

    # --- collecting ------------------------------------------------------------------------------------

    def _spawn(self, name: str, target: Callable[..., None], *args: Any) -> None:
        thread = threading.Thread(target=target, args=args, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)

    def _collect_finished(self, index: int, item: _Found) -> None:
        assert item.entry is not None
        self._deliver(index, item, item.entry)

    def _deliver(self, index: int, item: _Found, entry: HistoryEntry) -> None:
        """Download a finished prompt's images and finish its task; hand the task back if that fails."""
        server = self._servers[index]
        try:
            finished = collect(server, item.task, entry, emitter(self._progress(), item.task, server.url))
        except (ImageMissing, ServerUnreachable, ServerFailed, GenerationError) as error:
            log.info("ComfyUI at %s: cannot collect %s (%s); submitting it again", server.url, item.task.sprite, error)
            self._ledger.dropped(item.record.prompt_id)
            self._hand_back(item.task)
            return
        self._finish(item.task.key, finished)

    def _hand_back(self, task: Task) -> None:
        self.stats.resubmitted += 1
        self._resubmit(task)

    def _follow(self, index: int, items: list[_Found]) -> None:
        """Poll server ``index`` until every adopted prompt in ``items`` has ended; deliver each."""
        server = self._servers[index]
        client = server.client
        waiting = {item.record.prompt_id: item for item in items}
        strikes: dict[str, int] = {}
        started = time.monotonic()
        try:
            while waiting and not self._closed.is_set():
                if self._cancelled.is_set():
                    for item in waiting.values():
                        self._finish(item.task.key, Cancelled("cancelled while it was queued", sprite=item.task.sprite))
                    return
                if self._job_timeout is not None and time.monotonic() - started > self._job_timeout:
                    for prompt_id, item in waiting.items():
                        with contextlib.suppress(ServerUnreachable, ServerFailed):
                            client.delete_queued([prompt_id], timeout=3.0)
                            client.interrupt(prompt_id, timeout=3.0)
                        self._ledger.dropped(prompt_id)
                        self._finish(
                            item.task.key,
                            GenerationError(
                                f"ComfyUI at {client.url} did not finish within job_timeout "
                                f"({self._job_timeout:g} s); the prompt was taken back",
                                sprite=item.task.sprite,
                            ),
                        )
                    return
                try:
                    self._poll(index, waiting, strikes)
                except (ServerUnreachable, ServerFailed) as error:
                    log.warning(
                        "ComfyUI at %s: lost track of earlier prompts (%s); submitting them again", client.url, error
                    )
                    for item in waiting.values():
                        self._hand_back(item.task)
                    return
                if waiting:
                    self._cancelled.wait(_POLL_INTERVAL)
        finally:
            with server.lock:
                for prompt_id in [item.record.prompt_id for item in items]:
                    server.in_flight.pop(prompt_id, None)

    def _poll(self, index: int, waiting: dict[str, _Found], strikes: dict[str, int]) -> None:
        client = self._servers[index].client
        on_queue = client.queue_prompts()
        for prompt_id in [pid for pid in waiting if pid not in on_queue]:
            entry = client.history(prompt_id)
            if entry is None:
                strikes[prompt_id] = strikes.get(prompt_id, 0) + 1
                if strikes[prompt_id] >= _LOST_STRIKES:  # the server lost it (restart, queue cleared)
                    self._ledger.dropped(prompt_id)
                    self._hand_back(waiting.pop(prompt_id).task)
                continue
            item = waiting.pop(prompt_id)
            if _succeeded(entry):
                self._deliver(index, item, entry)
            else:
                self._ledger.dropped(prompt_id)
                self._hand_back(item.task)  # failed or interrupted: run it the normal way (and report there)


def _succeeded(entry: HistoryEntry) -> bool:
    return entry.error is None and entry.interrupted is None and entry.status != "error"


def _matches(entry: HistoryEntry, record: PromptRecord) -> bool:
    return entry.graph is not None and graph_fingerprint(entry.graph) == record.graph
