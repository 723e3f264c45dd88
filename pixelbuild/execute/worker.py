"""Post-processing as a worker process does it: plain picklable jobs in, small results out; and the pool
of such workers, tied to the build process's life.

``post_process`` is a module-level function of one plain argument, so it runs as well in a worker: the
build process then only journals the result. ``post_process_batch`` does a chunk of them in one call.
"""

from __future__ import annotations

import os
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import msgspec

from pixelbuild.errors import PixelbuildError
from pixelbuild.execute.outcomes import CacheMiss, Deferred, WorkerBug
from pixelbuild.fsguard import OutputGuard
from pixelbuild.lifeline import follow_parent
from pixelbuild.local.store import FinishedImage, PostRecord, Store

if TYPE_CHECKING:
    from concurrent.futures import Executor

#: Below this many post-processing tasks, worker processes cost more to start than they save.
MIN_TASKS_FOR_PROCESSES = 8


class PostJob(msgspec.Struct, frozen=True):
    """Everything a worker needs to post-process one sprite: plain, picklable values."""

    store_root: str
    generation_keys: tuple[str, ...]
    chain: tuple[Any, ...]
    layout: Mapping[str, Any]
    project_dir: str
    post_key: str
    guard: OutputGuard
    output: str


class Rendered(msgspec.Struct, frozen=True):
    """A sprite's finished output as written: hashes, size and the identity of what generated it."""

    file_hash: str
    pixel_hash: str
    width: int
    height: int
    identity: dict[str, Any]
    #: Seconds spent post-processing it (decoding, the chain, encoding): 0 for a restored output.
    seconds: float = 0.0


class PostFailure(msgspec.Struct, frozen=True):
    """A sprite of a batch that failed. ``error`` is kept when it is one of ours or the file system's (it
    crosses a process boundary whole); anything else is a bug, carried as its one-line ``detail`` and its
    traceback."""

    error: PixelbuildError | Deferred | OSError | None
    detail: str
    trace: str

    def raise_(self) -> NoReturn:
        """Raise the failure in the build process, as the error it was (or as a ``WorkerBug``)."""
        if self.error is not None:
            raise self.error
        raise WorkerBug(self.detail, self.trace)


def post_process(job: PostJob) -> Rendered:
    """Post-process a sprite from its cached raw frames, cache the result and write its output file."""
    store = Store(Path(job.store_root))
    raw: list[bytes] = []
    identity: dict[str, Any] = {}
    for key in job.generation_keys:
        record = store.get_action("gen", key)
        if record is None:
            raise CacheMiss("gen", key)
        identity = identity or dict(record.identity)
        for item in record.images:
            data = store.read_blob(item.blob)
            if data is None:
                raise CacheMiss("gen", key)
            raw.append(data)
    # Timed from here to the encoded PNG, the image code's imports included: the post-processing proper.
    started = time.perf_counter()
    from pixelbuild.png import decode_png, encode_png, pixel_hash
    from pixelbuild.post import PostContext, apply_chain

    context = PostContext(read_file=lambda ref: (Path(job.project_dir) / ref).read_bytes())
    frames = apply_chain([decode_png(data) for data in raw], job.chain, context)
    if len(frames) == 1:
        image = frames[0]
    else:
        from pixelbuild.sheets import assemble_frames  # a frame sheet's: most sprites are one frame

        image = assemble_frames(frames, job.layout)
    png = encode_png(image)
    seconds = time.perf_counter() - started
    pixels = pixel_hash(image)  # what the lock records: the build's work, not the post-processing's
    blob = store.put_blob(png)
    store.put_action(job.post_key, PostRecord([FinishedImage(blob, pixels, image.width, image.height)], identity))
    job.guard.write_bytes(job.output, png)
    return Rendered(blob, pixels, image.width, image.height, identity, seconds)


def post_process_batch(
    jobs: Sequence[PostJob], process: Callable[[PostJob], Rendered] | None = None
) -> list[Rendered | PostFailure]:
    """``process`` (``post_process``) for each job, in order; a failure is returned in its sprite's place,
    not raised. One call per batch keeps inter-process traffic and scheduling per sprite low."""
    process = process or post_process
    results: list[Rendered | PostFailure] = []
    for job in jobs:
        try:
            results.append(process(job))
        except (PixelbuildError, Deferred, OSError) as error:  # these cross a process boundary whole
            results.append(PostFailure(error.with_traceback(None), str(error), ""))
        except Exception as error:  # an arbitrary exception may not pickle: it would take the batch with it
            detail = "".join(traceback.format_exception_only(type(error), error)).strip()
            results.append(PostFailure(None, detail, traceback.format_exc()))
    return results


def start_pool(workers: int, post_tasks: int) -> Executor | None:
    """A pool of ``workers`` processes, warmed up, when ``post_tasks`` are worth it; else None (in-process)."""
    if workers <= 1 or post_tasks < MIN_TASKS_FOR_PROCESSES:
        return None
    # Imported here: a build that post-processes in-process (one sprite, -j 1) never loads multiprocessing.
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    # Fork before any thread exists (backend, doit runner): workers inherit imported modules cheaply.
    method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
    pool = ProcessPoolExecutor(
        max_workers=workers,
        mp_context=multiprocessing.get_context(method),
        initializer=follow_parent,
        initargs=(os.getpid(),),
    )
    for warm in [pool.submit(_warm_up) for _ in range(workers)]:
        warm.result()
    return pool


def _warm_up() -> None:
    """Import the image stack in a worker before real work arrives."""
    import pixelbuild.post

    pixelbuild.post.load_ops()
