"""The engine: turns a plan into doit tasks (generate → post-process) and runs them.

doit is used as a library and only ever sees stale work: up-to-dateness was decided by the plan from
the lock and the files, so doit's own database is kept in memory and thrown away. Each finished
sprite is written atomically and appended to the journal at once, so an interrupted build keeps it.
CPU-bound post-processing runs in worker processes when ``jobs > 1``; generation runs in threads.
Sprites that need no generation go in chunks (one doit task, one worker call, one journal write each),
so the build process does little per sprite and leaves the cores to the workers.
"""

from __future__ import annotations

import io
import os
import sys
import threading
import traceback
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Executor, ProcessPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from pixelbuild.backends import Backend, backend_info, create_backend
from pixelbuild.backends.base import BackendFactory, BackendRequest, GenerationJob, ProgressEvent
from pixelbuild.backends.router import BackendRouter
from pixelbuild.errors import (
    BackendUnavailable,
    DiskFull,
    GenerationError,
    ManifestError,
    PixelbuildError,
    describe_os_error,
    disk_full,
)
from pixelbuild.fsguard import OutputGuard, Removal
from pixelbuild.hashing import hash_bytes
from pixelbuild.keys import SpriteKeys
from pixelbuild.locate import grouped_error, locate_field, located_message
from pixelbuild.lock import AtlasEntry, Journal, Lock, LockEntry, OutputRecord
from pixelbuild.notices import pinned
from pixelbuild.plan import Action, AtlasDecision, Decision, Plan
from pixelbuild.progress import Progress
from pixelbuild.resolver import project_file_path
from pixelbuild.spec import AtlasSpec, GenerationSpec, Source, SpriteSpec
from pixelbuild.state import FileHashCache
from pixelbuild.store import Store

#: Sprites per doit run (see ``Engine._batches``), unless ``EngineContext.sprites_per_run`` says otherwise.
_BATCH = 1000
#: Below this many post-processing tasks, worker processes cost more to start than they save.
_MIN_TASKS_FOR_PROCESSES = 8
#: Most sprites per chunk of generation-free work (one worker call, one doit task, one journal write).
_CHUNK_MAX = 16
#: Chunks kept ahead per worker while sizing them: chunks shrink towards the end so workers finish together.
_CHUNKS_PER_WORKER = 4


class Deferred(Exception):
    """The work cannot be done in this pass (an atlas member waits for a repair); plan it again after."""


class CacheMiss(Deferred):
    """A cache entry the plan counted on is missing or damaged: drop it, and plan that work again.

    Plain ``args`` so it crosses back from a worker process.
    """

    def __init__(self, kind: str, key: str) -> None:
        super().__init__(kind, key)
        self.kind = kind
        self.key = key


@dataclass(slots=True)
class EngineResult:
    """What the engine did: sprites finished per action, generator calls, a message per failed sprite.

    ``repair`` names the sprites (and ``atlas <id>``) left undone because a cache entry they needed was
    missing or damaged; the entry is dropped, so planning them again finds the way around it.
    """

    generator_calls: int = 0
    generated: int = 0
    post_processed: int = 0
    restored: int = 0
    removed: int = 0
    packed: int = 0
    failures: dict[str, str] = field(default_factory=dict)
    finished: set[str] = field(default_factory=set)
    interrupted: bool = False
    repair: set[str] = field(default_factory=set)
    kept: list[str] = field(default_factory=list)
    #: What stopped the build short (a full disk, servers that stopped answering), for the exit code.
    error: PixelbuildError | None = None

    def add(self, other: EngineResult) -> None:
        """Add the work of a later pass over the same build."""
        for name in ("generator_calls", "generated", "post_processed", "restored", "removed", "packed"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.failures.update(other.failures)
        self.finished |= other.finished
        self.interrupted = self.interrupted or other.interrupted
        self.repair = set(other.repair)
        self.kept += other.kept
        self.error = self.error or other.error


@dataclass(slots=True)
class EngineContext:
    """Everything the engine needs, computed by the build before it starts."""

    project_dir: Path
    output_dir: Path
    store: Store
    journal: Journal
    hashes: FileHashCache
    sprites: Mapping[str, SpriteSpec]
    keys: Mapping[str, SpriteKeys]
    lock: Lock
    backend_name: str
    backend_settings: Mapping[str, Any]
    jobs: int
    progress: Progress
    atlases: Mapping[str, AtlasSpec] = field(default_factory=dict)
    servers: tuple[str, ...] = ()  # --server: replaces the backend's server list
    backend_factory: BackendFactory | None = None  # None: create_backend
    sprites_per_run: int | None = None  # None: _BATCH
    #: Writes and deletes under the output root (default: a guard of ``output_dir`` with no options).
    guard: OutputGuard | None = None
    #: Why writing an output path would clobber a file pixelbuild does not own (None: it may be written).
    foreign: Callable[[str], str | None] | None = None


# ---------------------------------------------------------------------------------------- pure work


@dataclass(frozen=True, slots=True)
class PostJob:
    """Everything a worker needs to post-process one sprite: plain, picklable values."""

    store_root: str
    generation_keys: tuple[str, ...]
    chain: tuple[Any, ...]
    layout: Mapping[str, Any]
    project_dir: str
    post_key: str
    guard: OutputGuard
    output: str


@dataclass(frozen=True, slots=True)
class Rendered:
    """A sprite's finished output as written: hashes, size and the identity of what generated it."""

    file_hash: str
    pixel_hash: str
    width: int
    height: int
    identity: dict[str, Any]


def post_process(job: PostJob) -> Rendered:
    """Post-process a sprite from its cached raw frames, cache the result and write its output file.

    A module-level function of one plain argument, so it runs as well in a worker process: the main
    process then only journals the result.
    """
    from pixelbuild.png import decode_png, encode_png, pixel_hash
    from pixelbuild.post import PostContext, apply_chain
    from pixelbuild.sheets import assemble_frames

    store = Store(Path(job.store_root))
    frames = []
    identity: dict[str, Any] = {}
    for key in job.generation_keys:
        record = store.get_action("gen", key)
        if record is None:
            raise CacheMiss("gen", key)
        identity = identity or dict(record.get("identity") or {})
        for item in record["images"]:
            data = store.read_blob(item["blob"])
            if data is None:
                raise CacheMiss("gen", key)
            frames.append(decode_png(data))
    context = PostContext(read_file=lambda ref: (Path(job.project_dir) / ref).read_bytes())
    frames = apply_chain(frames, job.chain, context)
    image = frames[0] if len(frames) == 1 else assemble_frames(frames, job.layout)
    png = encode_png(image)
    pixels = pixel_hash(image)
    blob = store.put_blob(png)
    store.put_action(
        "post",
        job.post_key,
        {
            "images": [{"blob": blob, "pixel_hash": pixels, "width": image.width, "height": image.height}],
            "identity": identity,
        },
    )
    job.guard.write_bytes(job.output, png)
    return Rendered(blob, pixels, image.width, image.height, identity)


@dataclass(frozen=True, slots=True)
class PostFailure:
    """A sprite of a batch that failed. ``error`` is kept when it is one of ours or the file system's (it
    crosses a process boundary whole); anything else is a bug, carried as its one-line ``detail`` and its
    traceback."""

    error: PixelbuildError | Deferred | OSError | None
    detail: str
    trace: str


class _WorkerBug(Exception):
    """An unexpected exception in ``post_process_batch``, as the build process reports it."""

    def __init__(self, detail: str, trace: str) -> None:
        super().__init__(detail)
        self.detail = detail
        self.trace = trace


def post_process_batch(jobs: Sequence[PostJob]) -> list[Rendered | PostFailure]:
    """``post_process`` for each job, in order; a failure is returned in its sprite's place, not raised.

    One call per batch keeps inter-process traffic and scheduling per sprite low; the results are small.
    """
    results: list[Rendered | PostFailure] = []
    for job in jobs:
        try:
            results.append(post_process(job))
        except (PixelbuildError, Deferred, OSError) as error:  # these cross a process boundary whole
            results.append(PostFailure(error.with_traceback(None), str(error), ""))
        except Exception as error:  # an arbitrary exception may not pickle: it would take the batch with it
            detail = "".join(traceback.format_exception_only(type(error), error)).strip()
            results.append(PostFailure(None, detail, traceback.format_exc()))
    return results


def chunk_sizes(count: int, workers: int) -> list[int]:
    """Sizes of the chunks that split ``count`` sprites between ``workers``: at most ``_CHUNK_MAX``, smaller
    towards the end (guided scheduling), so no worker sits idle while another finishes a large last chunk."""
    sizes = []
    remaining = count
    while remaining > 0:
        size = max(1, min(_CHUNK_MAX, remaining // (max(1, workers) * _CHUNKS_PER_WORKER)))
        sizes.append(size)
        remaining -= size
    return sizes


_PR_SET_PDEATHSIG = 1


def _follow_parent(parent: int) -> None:
    """Pool initializer: make this worker die with the build process, however that one ends.

    A worker that outlived a killed build would hold the caller's stdout and stderr open (a CI step
    would hang). Linux delivers SIGKILL to us when the parent dies; elsewhere a thread watches
    ``getppid``. Checked once more after arming, in case the parent died first.
    """
    import os
    import signal

    # The build process handles Ctrl-C and SIGTERM and shuts the pool down; a worker only follows it.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    armed = False
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            libc = ctypes.CDLL(None, use_errno=True)
            armed = libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) == 0
        except (OSError, AttributeError):
            armed = False
    if os.getppid() != parent:
        os._exit(1)
    if not armed:
        import time

        def watch() -> None:
            while os.getppid() == parent:
                time.sleep(0.5)
            os._exit(1)

        threading.Thread(target=watch, name="pixelbuild-parent-watch", daemon=True).start()


def _warm_up() -> None:
    """Import the image stack in a worker before real work arrives."""
    import pixelbuild.post

    pixelbuild.post.load_ops()


# ------------------------------------------------------------------------------------------- engine


class Engine:
    """Runs the stale part of a plan."""

    def __init__(self, context: EngineContext) -> None:
        self.ctx = context
        self.result = EngineResult()
        self._backend: Backend | None = None
        self._pool: Executor | None = None
        self._lock = threading.Lock()
        self._jobs: dict[str, GenerationJob] = {}
        self._needed_by: dict[str, list[str]] = {}
        self._claimed = {sprite.output for sprite in context.sprites.values()}
        self._failed_keys: set[str] = set()
        self._disk_full: DiskFull | None = None  # once set, no further task writes anything
        self._unavailable: list[tuple[str, BackendUnavailable]] = []
        self._entries: dict[str, LockEntry] = dict(context.lock.sprites)
        self._claimed.update(path for atlas in context.atlases.values() for path in atlas.outputs())
        self.guard = context.guard or OutputGuard(str(context.output_dir))

    # ---------------------------------------------------------------- setup

    def _generation_jobs(self, plan: Plan) -> list[GenerationJob]:
        specs: dict[str, tuple[str, GenerationSpec]] = {}
        for decision in plan.decisions:
            if not decision.missing:
                continue
            sprite = self.ctx.sprites[decision.sprite_id]
            keys = self.ctx.keys[decision.sprite_id]
            for key, generation in zip(keys.generations, sprite.generations, strict=True):
                if key in decision.missing:
                    specs.setdefault(key, (sprite.id, generation))
                    self._needed_by.setdefault(key, []).append(sprite.id)
        jobs = []
        for key, (sprite_id, generation) in specs.items():
            init = project_file_path(self.ctx.project_dir, generation.init_image) if generation.init_image else None
            source = project_file_path(self.ctx.project_dir, generation.source_file) if generation.source_file else None
            jobs.append(
                GenerationJob(
                    key=key,
                    sprite_id=sprite_id,
                    spec=generation,
                    workflow_path=project_file_path(self.ctx.project_dir, generation.workflow_file),
                    init_image_path=init,
                    source_path=source,
                )
            )
        return jobs

    def _start_pool(self, post_tasks: int) -> None:
        if self.ctx.jobs <= 1 or post_tasks < _MIN_TASKS_FOR_PROCESSES:
            return
        import multiprocessing

        # Fork before any thread exists (backend, doit runner): workers inherit imported modules cheaply.
        method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
        import os

        pool = ProcessPoolExecutor(
            max_workers=self.ctx.jobs,
            mp_context=multiprocessing.get_context(method),
            initializer=_follow_parent,
            initargs=(os.getpid(),),
        )
        for warm in [pool.submit(_warm_up) for _ in range(self.ctx.jobs)]:
            warm.result()
        self._pool = pool

    # ---------------------------------------------------------------- tasks

    def _fail(self, sprite_ids: Sequence[str], message: str) -> None:
        with self._lock:
            for sprite_id in sprite_ids:
                self.result.failures.setdefault(sprite_id, message)
        for sprite_id in sprite_ids:
            self.ctx.progress.failed(sprite_id, message)

    def _located(self, sprite_id: str, field: str | None, message: str) -> str:
        """``message`` prefixed with where the sprite (or its field) is written."""
        return located_message(self._source(sprite_id), field, message)

    def _source(self, sprite_id: str) -> Source | None:
        sprite = self.ctx.sprites.get(sprite_id)
        return sprite.source if sprite else None

    def _start_error(self, error: GenerationError) -> ManifestError:
        """A located, one-paragraph error for problems a backend found before generating anything."""
        problems: list[GenerationError] = list(getattr(error, "problems", None) or [error])
        return grouped_error(problems, self._source)

    def _on_backend_progress(self, event: ProgressEvent) -> None:
        if event.phase == "sampling" and event.max:
            self.ctx.progress.working(event.sprite_id, f"sampling {event.value}/{event.max}")
        elif event.phase in ("queued", "downloading"):
            self.ctx.progress.working(event.sprite_id, event.phase)

    def _guard(self, sprite_ids: Sequence[str], work: Callable[[], None]) -> bool:
        """Run ``work``; turn an exception into a recorded failure of ``sprite_ids`` (doit sees False)."""
        if self._disk_full is not None:
            return False  # the build is stopping: write nothing more
        try:
            work()
            return True
        except Deferred as deferred:
            if isinstance(deferred, CacheMiss):
                self.ctx.store.drop_action(deferred.kind, deferred.key)
            with self._lock:
                self.result.repair.update(sprite_ids)
            return True  # not a failure: the build plans these again without the entry
        except Exception as error:
            if self._disk_full is None:  # else it was stopped (cancelled) for the full disk: not a failure
                self._record_failure(sprite_ids, error)
            return False

    def _record_failure(self, sprite_ids: Sequence[str], error: Exception) -> None:
        if isinstance(error, OSError) and not isinstance(error, PixelbuildError):
            # The file system said no (permissions, read-only, full): the user's to fix, not a bug.
            error = disk_full(error, error.filename or self.ctx.output_dir) or error
        if isinstance(error, DiskFull):
            self._stop_for_disk_full(error)
        elif isinstance(error, BackendUnavailable):
            # Said once, in full, when the build ends (exit 3); each sprite's line stays short.
            with self._lock:
                self._unavailable.extend((sprite_id, error) for sprite_id in sprite_ids)
            self._fail(sprite_ids, "not generated: no generator server answers")
        elif isinstance(error, GenerationError):
            for sprite_id in sprite_ids:
                self._fail([sprite_id], self._located(sprite_id, error.field, error.message))
        elif isinstance(error, PixelbuildError):
            self._fail(sprite_ids, str(error))
        elif isinstance(error, OSError):
            self._fail(sprite_ids, describe_os_error(error))
        else:  # a bug: one paragraph, the traceback behind a switch
            if os.environ.get("PIXELBUILD_DEBUG"):
                if isinstance(error, _WorkerBug):  # its traceback is the worker's
                    sys.stderr.write(error.trace)
                else:
                    traceback.print_exception(error)
            detail = (
                error.detail
                if isinstance(error, _WorkerBug)
                else "".join(traceback.format_exception_only(type(error), error)).strip()
            ).replace("\n", " ")
            self._fail(
                sprite_ids,
                f"internal error ({detail}); this is a bug. "
                "Run again with PIXELBUILD_DEBUG=1 for the traceback and report it.",
            )

    def _stop_for_disk_full(self, error: DiskFull) -> None:
        """A full disk fails every write to come: stop (finished work is journaled), say it once."""
        with self._lock:
            if self._disk_full is not None:
                return
            self._disk_full = error
        if self._backend is not None:
            self._backend.cancel()  # no GPU time for results that cannot be stored

    def _generate(self, key: str) -> bool:
        def work() -> None:
            assert self._backend is not None
            job = self._jobs[key]
            generator = backend_info(job.spec.backend).generator
            self.ctx.progress.working(job.sprite_id, "generating" if generator else "reading its source")
            generated = self._backend.result(key)
            from pixelbuild.png import encode_raw

            images = []
            for image in generated.images:
                blob = self.ctx.store.put_blob(encode_raw(image))
                images.append({"blob": blob, "width": image.width, "height": image.height})
            identity = generated.identity
            self.ctx.store.put_action(
                "gen",
                key,
                {
                    "images": images,
                    "identity": {"name": identity.name, "version": identity.version, "models": list(identity.models)},
                    "seed": job.spec.seed,
                },
            )
            # Cached now: a backend that tracks its submissions (ComfyUI's prompt ledger) may forget this one.
            self._backend.settled(key)
            if generator:  # reading a hand-drawn sprite is no generator call
                with self._lock:
                    self.result.generator_calls += 1

        if self._guard(self._needed_by.get(key, []), work):
            return True
        self._failed_keys.add(key)
        return False

    def _may_write(self, path: str) -> None:
        """Refuse (a failure of the sprite) to replace a file pixelbuild does not own: checked by the plan,
        and again here in case the file appeared while the build ran."""
        problem = self.ctx.foreign(path) if self.ctx.foreign is not None else None
        if problem is not None:
            raise PixelbuildError(f"{problem}; nothing was written")

    def _post_job(self, sprite: SpriteSpec, keys: SpriteKeys) -> PostJob:
        return PostJob(
            store_root=str(self.ctx.store.root),
            generation_keys=keys.generations,
            chain=sprite.post,
            layout=sprite.layout,
            project_dir=str(self.ctx.project_dir),
            post_key=keys.post,
            guard=self.guard,
            output=sprite.output,
        )

    def _post_process(self, sprite: SpriteSpec, keys: SpriteKeys) -> Rendered:
        self._may_write(sprite.output)
        job = self._post_job(sprite, keys)
        if self._pool is not None:
            return self._pool.submit(post_process, job).result()
        return post_process(job)

    def _restore(self, sprite: SpriteSpec, keys: SpriteKeys, from_files: bool) -> Rendered:
        self._may_write(sprite.output)
        if from_files:
            entry = self.ctx.lock.sprites[sprite.id]
            output = entry.outputs[0]
            try:
                png = self.guard.read_bytes(output.path)
            except FileNotFoundError:
                raise Deferred(sprite.id) from None  # deleted since the plan: plan it again
            assert output.pixel_hash is not None and output.width is not None and output.height is not None
            image: dict[str, Any] = {"blob": self.ctx.store.put_blob(png), "pixel_hash": output.pixel_hash}
            image.update(width=output.width, height=output.height)
            identity = dict(entry.backend)
            self.ctx.store.put_action("post", keys.post, {"images": [image], "identity": identity})
        else:
            record = self.ctx.store.get_action("post", keys.post)
            try:
                if record is None:
                    raise CacheMiss("post", keys.post)
                image, identity = record["images"][0], dict(record["identity"])
                data = self.ctx.store.read_blob(image["blob"])
                if data is None:
                    raise CacheMiss("post", keys.post)
                rendered = Rendered(
                    hash_bytes(data), str(image["pixel_hash"]), int(image["width"]), int(image["height"]), identity
                )
            except (KeyError, IndexError, TypeError, ValueError):
                raise CacheMiss("post", keys.post) from None
            self.guard.write_bytes(sprite.output, data)
            return rendered
        self.guard.write_bytes(sprite.output, png)
        return Rendered(hash_bytes(png), image["pixel_hash"], int(image["width"]), int(image["height"]), identity)

    def _settle(self, sprite: SpriteSpec, keys: SpriteKeys, rendered: Rendered) -> LockEntry:
        """After a sprite's output is written: drop its stale files and return its lock entry."""
        self.ctx.hashes.remember(self.ctx.output_dir / sprite.output, rendered.file_hash)
        self._remove_stale_outputs(sprite)
        seeds = [generation.seed for generation in sprite.generations]
        return LockEntry(
            generations=tuple(zip(keys.generations, seeds, strict=True)),
            post_key=keys.post,
            backend=rendered.identity,
            fields=keys.fields,
            outputs=(
                OutputRecord(sprite.output, rendered.file_hash, rendered.pixel_hash, rendered.width, rendered.height),
            ),
        )

    def _finished(self, settled: Sequence[tuple[Decision, LockEntry]]) -> None:
        """Count sprites whose entries are journaled."""
        with self._lock:
            for decision, entry in settled:
                self._entries[decision.sprite_id] = entry
                self.result.finished.add(decision.sprite_id)
                if decision.action is Action.RESTORE:
                    self.result.restored += 1
                elif decision.action is Action.POST:
                    self.result.post_processed += 1
                else:
                    self.result.generated += 1
        for decision, _entry in settled:
            self.ctx.progress.done(decision.sprite_id, decision.action)

    def _finish_sprite(self, decision: Decision) -> bool:
        if any(key in self._failed_keys for key in decision.missing):
            return False  # already reported with the generation's error

        def work() -> None:
            sprite = self.ctx.sprites[decision.sprite_id]
            keys = self.ctx.keys[decision.sprite_id]
            if decision.action is Action.RESTORE:
                rendered = self._restore(sprite, keys, decision.restore_from_files)
            else:
                self.ctx.progress.working(sprite.id, "post-processing")
                rendered = self._post_process(sprite, keys)
            entry = self._settle(sprite, keys, rendered)
            self.ctx.journal.record_set(sprite.id, entry)
            self._finished([(decision, entry)])

        return self._guard([decision.sprite_id], work)

    def _finish_chunk(self, decisions: Sequence[Decision]) -> bool:
        """Finish sprites that need no generation, all POST or all RESTORE: one worker call and one journal
        write for the chunk, while each sprite still fails (or is deferred) on its own."""
        ok = True
        if decisions[0].action is Action.POST:
            writable = [
                d
                for d in decisions
                if self._guard([d.sprite_id], partial(self._may_write, self.ctx.sprites[d.sprite_id].output))
            ]
            ok = len(writable) == len(decisions)
            decisions = writable
            if not decisions:
                return False
        outcomes: list[Rendered | PostFailure | None] = [None] * len(decisions)
        if decisions[0].action is Action.POST:

            def run() -> None:
                jobs = [self._post_job(self.ctx.sprites[d.sprite_id], self.ctx.keys[d.sprite_id]) for d in decisions]
                self.ctx.progress.working(decisions[0].sprite_id, "post-processing")
                pool = self._pool
                outcomes[:] = pool.submit(post_process_batch, jobs).result() if pool else post_process_batch(jobs)

            if not self._guard([d.sprite_id for d in decisions], run):
                return False
        settled: list[tuple[Decision, LockEntry]] = []
        for decision, outcome in zip(decisions, outcomes, strict=True):

            def work(decision: Decision = decision, outcome: Rendered | PostFailure | None = outcome) -> None:
                sprite = self.ctx.sprites[decision.sprite_id]
                keys = self.ctx.keys[decision.sprite_id]
                if isinstance(outcome, PostFailure):
                    if outcome.error is not None:
                        raise outcome.error
                    raise _WorkerBug(outcome.detail, outcome.trace)
                rendered = outcome or self._restore(sprite, keys, decision.restore_from_files)
                settled.append((decision, self._settle(sprite, keys, rendered)))

            ok = self._guard([decision.sprite_id], work) and ok
        if settled:

            def journal() -> None:
                self.ctx.journal.record_sets([(decision.sprite_id, entry) for decision, entry in settled])
                self._finished(settled)

            ok = self._guard([decision.sprite_id for decision, _entry in settled], journal) and ok
        return ok

    def _remove_stale_outputs(self, sprite: SpriteSpec) -> None:
        """Delete files the sprite wrote before under other paths (unless another sprite now owns them)."""
        entry = self.ctx.lock.sprites.get(sprite.id)
        if entry is None:
            return
        for output in entry.outputs:
            if output.path != sprite.output and output.path not in self._claimed:
                self._remove_output(output)

    def _remove_output(self, output: OutputRecord) -> None:
        """Delete an output pixelbuild wrote, unless its bytes changed since (then keep it and say so)."""
        outcome, why = self.guard.remove(output.path, lambda data: _still_ours(data, output))
        if outcome is Removal.KEPT:
            try:
                shown = (self.ctx.output_dir / output.path).relative_to(self.ctx.project_dir).as_posix()
            except ValueError:
                shown = output.path
            with self._lock:
                self.result.kept.append(
                    f"kept {shown}: {why}; pixelbuild no longer manages it (delete it, or list it under 'keep')"
                )

    def _pack(self, decision: AtlasDecision) -> bool:
        def work() -> None:
            atlas_id = decision.atlas_id
            if decision.action is Action.REMOVE:
                for output in self.ctx.lock.atlases[atlas_id].outputs:
                    if output.path not in self._claimed:
                        self._remove_output(output)
                self.ctx.journal.record_atlas_remove(atlas_id)
                with self._lock:
                    self.result.removed += 1
                self.ctx.progress.done(f"atlas {atlas_id}", Action.REMOVE)
                return
            atlas = self.ctx.atlases[atlas_id]
            self.ctx.progress.working(f"atlas {atlas_id}", "packing")
            files = (
                self._restore_atlas(decision)
                if decision.action is Action.RESTORE
                else self._pack_atlas(atlas, decision.key)
            )
            records = []
            for path in atlas.outputs():
                self._may_write(path)
            for path, (data, pixels, width, height) in zip(atlas.outputs(), files, strict=True):
                self.guard.write_bytes(path, data)
                digest = hash_bytes(data)
                self.ctx.hashes.remember(self.ctx.output_dir / path, digest)
                records.append(OutputRecord(path, digest, pixels, width, height))
            old = self.ctx.lock.atlases.get(atlas_id)
            for output in old.outputs if old else ():
                if output.path not in self._claimed:
                    self._remove_output(output)
            self.ctx.journal.record_atlas(atlas_id, AtlasEntry(decision.key, atlas.members, tuple(records)))
            with self._lock:
                if decision.action is Action.RESTORE:
                    self.result.restored += 1
                else:
                    self.result.packed += 1
            self.ctx.progress.done(f"atlas {atlas_id}", decision.action)

        return self._guard([f"atlas {decision.atlas_id}"], work)

    def _restore_atlas(self, decision: AtlasDecision) -> list[tuple[bytes, str | None, int | None, int | None]]:
        record = self.ctx.store.get_action("pack", decision.key)
        files = []
        for item in record["images"] if record else ():
            data = self.ctx.store.read_blob(item["blob"])
            if data is None:
                raise CacheMiss("pack", decision.key)
            pixels, width, height = item.get("pixel_hash"), item.get("width"), item.get("height")
            if not isinstance(pixels, str | None) or not all(isinstance(n, int | None) for n in (width, height)):
                raise CacheMiss("pack", decision.key)
            files.append((data, pixels, width, height))
        if len(files) != len(self.ctx.atlases[decision.atlas_id].outputs()):
            raise CacheMiss("pack", decision.key)
        return files

    def _pack_atlas(self, atlas: AtlasSpec, key: str) -> list[tuple[bytes, str | None, int | None, int | None]]:
        from pixelbuild.pack.files import Member, atlas_files
        from pixelbuild.png import decode_png

        members = []
        for sprite_id in atlas.members:
            if sprite_id in self.result.repair:
                raise Deferred(sprite_id)
            if sprite_id in self.result.failures:
                raise GenerationError(f"member '{sprite_id}' failed to build")
            entry = self._entries.get(sprite_id)
            if entry is None or entry.post_key != self.ctx.keys[sprite_id].post:
                raise GenerationError(f"member '{sprite_id}' is not built")
            output = entry.outputs[0]
            data = self.guard.read_bytes(output.path)
            sprite = self.ctx.sprites[sprite_id]
            frames = sum(generation.batch_size for generation in sprite.generations)
            members.append(Member(sprite_id, decode_png(data), frames, sprite.layout))
        image_path = (self.ctx.output_dir / atlas.output).relative_to(self.ctx.project_dir).as_posix()
        files = atlas_files(atlas, members, f"res://{image_path}")
        blobs = []
        for file in files:
            item: dict[str, Any] = {"blob": self.ctx.store.put_blob(file.data)}
            if file.pixel_hash is not None:
                item.update(pixel_hash=file.pixel_hash, width=file.width, height=file.height)
            blobs.append(item)
        self.ctx.store.put_action("pack", key, {"images": blobs})
        return [(file.data, file.pixel_hash, file.width, file.height) for file in files]

    def _remove(self, sprite_id: str) -> bool:
        def work() -> None:
            entry = self.ctx.lock.sprites[sprite_id]
            for output in entry.outputs:
                if output.path not in self._claimed:
                    self._remove_output(output)
            self.ctx.journal.record_remove(sprite_id)
            with self._lock:
                self.result.finished.add(sprite_id)
                self.result.removed += 1
            self.ctx.progress.done(sprite_id, Action.REMOVE)

        return self._guard([sprite_id], work)

    # ------------------------------------------------------------------ run

    def _batches(self, plan: Plan, generation_order: Sequence[str]) -> Iterator[list[Any]]:
        """doit tasks, each sprite right after the generations it needs, in the backend's preferred order.

        Interleaving lets finished sprites land (and be journaled) while later ones still generate. Tasks
        come in batches of ``_BATCH`` (or ``sprites_per_run``) sprites, one doit run each: a doit task costs
        ~3 KB, and 20,000 of them at once would double a large build's memory. A generation shared by sprites
        of two batches runs in the first; the second finds it in the cache.
        """
        from doit.task import Task

        rank = {key: index for index, key in enumerate(generation_order)}
        stale = sorted(plan.stale, key=lambda d: min((rank[key] for key in d.missing), default=-1))
        workers = self.ctx.jobs if self._pool is not None else 1
        emitted: set[str] = set()
        size = self.ctx.sprites_per_run or _BATCH
        for start in range(0, len(stale), size):
            tasks: list[Any] = []
            in_batch: set[str] = set()
            # Sprites that need no generation go in chunks: a doit task, a worker call and a journal write per
            # sprite cost the build process ~1 ms each, as much CPU as a third worker would take.
            batch = stale[start : start + size]
            for kind in (Action.POST, Action.RESTORE):
                chunk = [d for d in batch if d.action is kind and not d.missing]
                offset = 0
                for count in chunk_sizes(len(chunk), workers):
                    part = chunk[offset : offset + count]
                    offset += count
                    name = f"{kind}:{part[0].sprite_id}+{count}"
                    tasks.append(Task(name, actions=[(self._finish_chunk, (part,))], verbosity=2))
            for decision in batch:
                if decision.action in (Action.POST, Action.RESTORE) and not decision.missing:
                    continue
                if decision.action is Action.REMOVE:
                    name, action = f"remove:{decision.sprite_id}", (self._remove, (decision.sprite_id,))
                    tasks.append(Task(name, actions=[action], verbosity=2))
                    continue
                for key in decision.missing:
                    if key not in emitted:
                        emitted.add(key)
                        in_batch.add(key)
                        tasks.append(Task(f"gen:{key}", actions=[(self._generate, (key,))], verbosity=2))
                depends = [f"gen:{key}" for key in decision.missing if key in in_batch]
                tasks.append(
                    Task(
                        f"sprite:{decision.sprite_id}",
                        actions=[(self._finish_sprite, (decision,))],
                        task_dep=depends,
                        verbosity=2,
                    )
                )
            yield tasks

    def run(self, plan: Plan) -> EngineResult:
        """Run every stale decision of ``plan``; failures are collected, not raised.

        A decision the plan found blocked (it would clobber a file pixelbuild does not own) fails at once:
        nothing is generated or written for it.
        """
        blocked = [d for d in plan.decisions if d.blocked] + [a for a in plan.atlases if a.blocked]
        if blocked:
            for item in blocked:
                name = item.sprite_id if isinstance(item, Decision) else f"atlas {item.atlas_id}"
                self._fail([name], f"{item.blocked}; nothing was written")
            plan = Plan(
                [d for d in plan.decisions if not d.blocked], [a for a in plan.atlases if not a.blocked]
            )
        stale = plan.stale
        stale_atlases = plan.stale_atlases
        if not stale and not stale_atlases:
            return self.result
        post_tasks = sum(1 for decision in stale if decision.action in (Action.POST, Action.GENERATE))
        self._start_pool(post_tasks)
        jobs = self._generation_jobs(plan)
        try:
            order = [job.key for job in jobs]
            if jobs:
                factory = self.ctx.backend_factory or create_backend
                request = BackendRequest(
                    self.ctx.backend_name, self.ctx.backend_settings, self.ctx.project_dir, self.ctx.servers
                )
                self._backend = BackendRouter(factory, request)
                self._jobs = {job.key: job for job in jobs}
                order = [job.key for job in self._backend.ordered(jobs)]
                self._backend.set_progress_callback(self._on_backend_progress)
                try:
                    self._backend.start(jobs)
                except GenerationError as error:
                    raise self._start_error(error) from None
                except ManifestError as error:
                    sprite = self.ctx.sprites.get(error.sprite or "")
                    if error.file is None and sprite is not None:
                        error.file = sprite.source.file
                        error.line = locate_field(sprite.source.file, sprite.source.path, error.field)
                    raise
            self.ctx.progress.start(len(jobs), len(stale) + len(stale_atlases))
            for tasks in self._batches(plan, order):
                self._run_doit(tasks)
            if stale_atlases:
                from doit.task import Task

                # Atlases go last: every member they read is finished (or has failed) by now.
                self._run_doit(
                    [Task(f"pack:{d.atlas_id}", actions=[(self._pack, (d,))], verbosity=2) for d in stale_atlases]
                )
        except KeyboardInterrupt:
            self.result.interrupted = True
            if self._backend is not None:
                self._backend.cancel()
        finally:
            if self._backend is not None:
                self._backend.close()
            if self._pool is not None:
                self._pool.shutdown(wait=not self.result.interrupted, cancel_futures=True)
            self.ctx.progress.finish()
        if self._disk_full is not None:
            self.result.error = self._disk_full
            return self.result  # what was not done is simply not done, as after an interrupt
        # Sprites whose generation failed never ran; name them too.
        for decision in stale:
            if decision.action is not Action.REMOVE and decision.missing:
                for key in decision.missing:
                    if any(sprite in self.result.failures for sprite in self._needed_by.get(key, [])):
                        self.result.failures.setdefault(decision.sprite_id, "its generation failed")
        if self._unavailable:
            self.result.error = self._unavailable_error()
        return self.result

    def _unavailable_error(self) -> BackendUnavailable:
        """One paragraph for sprites left ungenerated because the servers stopped answering mid-build."""
        sprites = list(dict.fromkeys(sprite_id for sprite_id, _error in self._unavailable))
        first = str(self._unavailable[0][1]).rstrip(".")
        finished = len(self.result.finished)
        kept = f"the {finished} finished are in the lock" if finished else "none finished"
        return BackendUnavailable(
            f"{first}. {len(sprites)} sprite(s) could not be generated; {kept}. "
            "Run the build again once a server answers."
        )

    def _run_doit(self, tasks: list[Any]) -> None:
        from doit.cmd_base import TaskLoader2
        from doit.doit_cmd import DoitMain

        jobs = self.ctx.jobs

        class Loader(TaskLoader2):  # type: ignore[misc]
            def load_doit_config(self) -> dict[str, Any]:
                return {
                    "dep_file": "",
                    "backend": "pixelbuild-memory",
                    "verbosity": 2,
                    "reporter": _SilentReporter,
                }

            def load_tasks(self, cmd: Any, pos_args: Any) -> list[Any]:
                return tasks

        arguments = ["run", "--continue"]
        if jobs > 1:
            # With worker processes, twice as many threads keep a sprite waiting at every worker while
            # others journal their results.
            threads = jobs + 1 if self._pool is not None else jobs
            arguments += ["-n", str(threads), "-P", "thread"]
        saved = sys.stdout, sys.stderr
        errors = io.StringIO()
        try:
            # doit prints its own runtime errors (not task failures: those are ours) to stderr; our
            # warnings go to the real stderr meanwhile.
            sys.stderr = errors
            with pinned(saved[1]):
                code = DoitMain(
                    Loader(),
                    config_filenames=(),
                    extra_config={"BACKEND": {"pixelbuild-memory": "pixelbuild.engine:MemoryDB"}},
                ).run(arguments)
        finally:
            # doit's runners swap these out while tasks run; put the real ones back whatever happened.
            sys.stdout, sys.stderr = saved
            # A doit task and its actions reference each other, and the actions this engine: drop the actions
            # so that the engine and all it holds go when the build returns, not at the next full collection.
            for task in tasks:
                task._actions, task._action_instances = [], []
        # A failed task (or one whose dependency failed) is already recorded by _guard; anything else is doit's.
        if code != 0 and not self.result.failures and not self.result.repair and self._disk_full is None:
            raise RuntimeError(f"doit could not run the build (exit {code}): {errors.getvalue().strip()}")


class MemoryDB:
    """A doit dependency database that forgets everything: the lock is pixelbuild's build log."""

    def __init__(self, name: str, codec: Any, *, module_name: str | None = None) -> None:
        self.name = name
        self._db: dict[str, dict[str, Any]] = {}

    def dump(self) -> None:
        """Nothing is kept."""

    def set(self, task_id: str, dependency: str, value: Any) -> None:
        """Store a value for this run."""
        self._db.setdefault(task_id, {})[dependency] = value

    def get(self, task_id: str, dependency: str) -> Any:
        """A value stored in this run, or None."""
        return self._db.get(task_id, {}).get(dependency)

    def in_(self, task_id: str) -> bool:
        """Whether the task has stored values."""
        return task_id in self._db

    def remove(self, task_id: str) -> None:
        """Forget a task."""
        self._db.pop(task_id, None)

    def remove_all(self) -> None:
        """Forget everything."""
        self._db.clear()


class _SilentReporter:
    """doit reporter that says nothing: progress is pixelbuild's, failures are collected by the engine."""

    def __init__(self, outstream: Any, options: Any) -> None:
        self.failures: list[Any] = []
        self.runtime_errors: list[str] = []

    def initialize(self, tasks: Any, selected_tasks: Any) -> None:
        """Nothing to set up."""

    def get_status(self, task: Any) -> None:
        """Not reported."""

    def execute_task(self, task: Any) -> None:
        """Not reported."""

    def add_failure(self, task: Any, fail: Any) -> None:
        """Collected by the engine already."""
        self.failures.append((task.name, fail))

    def add_success(self, task: Any) -> None:
        """Not reported."""

    def skip_uptodate(self, task: Any) -> None:
        """Not reported."""

    def skip_ignore(self, task: Any) -> None:
        """Not reported."""

    def cleanup_error(self, exception: Any) -> None:
        """Not reported."""

    def runtime_error(self, msg: str) -> None:
        """Kept for debugging."""
        self.runtime_errors.append(msg)

    def teardown_task(self, task: Any) -> None:
        """Not reported."""

    def complete_run(self) -> None:
        """Not reported."""


def _still_ours(data: bytes, output: OutputRecord) -> bool:
    """Whether ``data`` is what pixelbuild wrote for ``output``: the same bytes, or the same pixels."""
    if hash_bytes(data) == output.file_hash:
        return True
    if output.pixel_hash is None:
        return False
    from pixelbuild.png import decode_png, pixel_hash
    from pixelbuild.pngheader import png_header_size

    if output.width is not None and png_header_size(data) != (output.width, output.height):
        return False  # never inflate a file that claims another size (it may claim gigabytes)
    try:
        return pixel_hash(decode_png(data)) == output.pixel_hash
    except (OSError, ValueError, SyntaxError):
        return False
