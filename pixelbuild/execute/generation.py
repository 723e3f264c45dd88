"""Generation: the run's generation jobs, and the backend's life-cycle for one run.

Every job goes to the backend at once (``start``), so a remote backend can preflight, order and pipeline
the work; each result is then taken into the cache as a step asks for it, and the backend is told it is
safe there (``settled``). Problems found before anything is generated become one located error.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from pixelbuild.backends import backend_info, create_backend
from pixelbuild.backends.base import BackendRequest, GenerationJob, ProgressEvent
from pixelbuild.backends.router import BackendRouter
from pixelbuild.errors import GenerationError, ManifestError
from pixelbuild.local.store import GenerationRecord, RawImage, identity_of
from pixelbuild.locate import grouped_error, locate_field
from pixelbuild.resolver import project_file_path

if TYPE_CHECKING:
    from pathlib import Path

    from pixelbuild.backends.base import Backend
    from pixelbuild.execute.context import EngineContext
    from pixelbuild.execute.outcomes import Outcomes
    from pixelbuild.plan import Decision, Plan
    from pixelbuild.spec import GenerationSpec, Source


def generation_jobs(context: EngineContext, plan: Plan) -> tuple[list[GenerationJob], dict[str, list[str]]]:
    """The generations ``plan`` is missing, once each, and the sprites that need each (by key)."""
    specs: dict[str, tuple[str, GenerationSpec]] = {}
    needed_by: dict[str, list[str]] = {}
    for decision in plan.decisions:
        if not decision.missing:
            continue
        sprite = context.sprites[decision.sprite_id]
        keys = context.keys[decision.sprite_id]
        for key, generation in zip(keys.generations, sprite.generations, strict=True):
            if key in decision.missing:
                specs.setdefault(key, (sprite.id, generation))
                needed_by.setdefault(key, []).append(sprite.id)
    jobs = [_job(context, key, sprite_id, generation) for key, (sprite_id, generation) in specs.items()]
    return jobs, needed_by


def _job(context: EngineContext, key: str, sprite_id: str, generation: GenerationSpec) -> GenerationJob:
    return GenerationJob(
        key=key,
        sprite_id=sprite_id,
        spec=generation,
        workflow_path=project_file_path(context.project_dir, generation.workflow_file),
        init_image_path=_path(context, generation.init_image),
        source_path=_path(context, generation.source_file),
    )


def _path(context: EngineContext, reference: str | None) -> Path | None:
    return project_file_path(context.project_dir, reference) if reference else None


class Generation:
    """One run's generations: starts the backend on all of them, and caches each result as it is asked for."""

    def __init__(self, context: EngineContext, outcomes: Outcomes, plan: Plan) -> None:
        self.ctx = context
        self.outcomes = outcomes
        jobs, self.needed_by = generation_jobs(context, plan)
        self.jobs = {job.key: job for job in jobs}
        self.failed_keys: set[str] = set()
        self._backend: Backend | None = None

    def start(self) -> list[str]:
        """Start the backend on every job (none when nothing needs generating); return the keys in the order
        it works through them. Raises one located ``ManifestError`` for what it refuses up front."""
        if not self.jobs:
            return []
        factory = self.ctx.backend_factory or create_backend
        ctx = self.ctx
        request = BackendRequest(ctx.backend_name, ctx.backend_settings, ctx.project_dir, ctx.servers)
        backend = self._backend = BackendRouter(factory, request)
        jobs = list(self.jobs.values())
        # Creating the backend (and importing what it needs) is the generation's time too.
        with self.outcomes.timed("generating"):
            order = [job.key for job in backend.ordered(jobs)]
            backend.set_progress_callback(self._on_progress)
            try:
                backend.start(jobs)
            except GenerationError as error:
                raise start_error(self.ctx, error) from None
            except ManifestError as error:
                self._locate(error)
                raise
        return order

    def generate(self, key: str) -> bool:
        """The step for generation ``key``: its images and identity into the cache (False: it failed)."""
        if self.outcomes.guard(self.needed_by.get(key, []), lambda: self._generate(key)):
            return True
        self.failed_keys.add(key)
        return False

    def failed(self, decision: Decision) -> bool:
        """Whether a generation ``decision`` needs has failed (its sprite was told so)."""
        return any(key in self.failed_keys for key in decision.missing)

    def blame(self, decisions: Sequence[Decision]) -> None:
        """Sprites whose generation failed never ran: name them as failed too."""
        failures = self.outcomes.result.failures
        for decision in decisions:
            for key in decision.missing:
                if any(sprite in failures for sprite in self.needed_by.get(key, [])):
                    failures.setdefault(decision.sprite_id, "its generation failed")

    def cancel(self) -> None:
        """Stop pending generations (Ctrl-C, a full disk); finished results stay available."""
        if self._backend is not None:
            self._backend.cancel()

    def close(self) -> None:
        """Release the backend's connections and threads."""
        if self._backend is not None:
            with self.outcomes.timed("generating"):
                self._backend.close()

    def _generate(self, key: str) -> None:
        assert self._backend is not None
        job = self.jobs[key]
        generator = backend_info(job.spec.backend).generator
        self.ctx.progress.working(job.sprite_id, "generating" if generator else "reading its source")
        # The backend's images as PNG bytes (the image code's imports included) are the generation's work;
        # caching them is the build's.
        with self.outcomes.timed("generating"):
            generated = self._backend.result(key)
            from pixelbuild.png import encode_raw

            encoded = [(encode_raw(image), image.width, image.height) for image in generated.images]
        store = self.ctx.store
        images = [RawImage(store.put_blob(data), width, height) for data, width, height in encoded]
        store.put_action(key, GenerationRecord(images, identity_of(generated.identity), job.spec.seed))
        # Cached now: a backend that tracks its submissions (ComfyUI's prompt ledger) may forget this one.
        self._backend.settled(key)
        if generator:  # reading a hand-drawn sprite is no generator call
            self.outcomes.count("generator_calls")

    def _on_progress(self, event: ProgressEvent) -> None:
        if event.phase == "sampling" and event.max:
            self.ctx.progress.working(event.sprite_id, f"sampling {event.value}/{event.max}")
        elif event.phase in ("queued", "downloading"):
            self.ctx.progress.working(event.sprite_id, event.phase)

    def _locate(self, error: ManifestError) -> None:
        """Give ``error`` the file and line of its sprite, when the backend could not tell them."""
        sprite = self.ctx.sprites.get(error.sprite or "")
        if error.file is None and sprite is not None:
            error.file = sprite.source.file
            error.line = locate_field(sprite.source.file, sprite.source.path, error.field)


def start_error(context: EngineContext, error: GenerationError) -> ManifestError:
    """A located, one-paragraph error for problems a backend found before generating anything."""
    problems: list[GenerationError] = list(getattr(error, "problems", None) or [error])

    def source_of(sprite_id: str) -> Source | None:
        sprite = context.sprites.get(sprite_id)
        return sprite.source if sprite else None

    return grouped_error(problems, source_of)
