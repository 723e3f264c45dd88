"""One backend per run for the engine, made of the backends its jobs name.

A project has one generator backend, but a sprite drawn by hand names ``source``: the router hands each
job to the backend of its spec and creates a backend only when some job needs it, so a build whose stale
sprites are all hand-drawn never contacts (nor needs) a ComfyUI server.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import msgspec

from pixelbuild.backends import backend_info
from pixelbuild.backends.base import (
    Backend,
    BackendFactory,
    BackendRequest,
    GenerationJob,
    GenerationResult,
    ProgressCallback,
)


class BackendRouter:
    """Routes jobs by ``job.spec.backend``; the project's settings and ``--server`` go to the project's
    backend only (``project`` is its request; other backends get their name and the project folder)."""

    name = "router"

    def __init__(self, factory: BackendFactory, project: BackendRequest) -> None:
        self._factory = factory
        self._project = project
        self._backends: dict[str, Backend] = {}
        self._by_key: dict[str, Backend] = {}
        self._progress: ProgressCallback | None = None

    def _backend(self, name: str) -> Backend:
        backend = self._backends.get(name)
        if backend is None:
            request = self._project
            if name != request.name:
                request = msgspec.structs.replace(request, name=name, settings={}, servers=())
            backend = self._factory(request)
            if self._progress is not None:
                backend.set_progress_callback(self._progress)
            self._backends[name] = backend
        return backend

    @staticmethod
    def _groups(jobs: Sequence[GenerationJob]) -> dict[str, list[GenerationJob]]:
        # File readers first: they finish at once, so their sprites land while the generator works.
        groups: dict[str, list[GenerationJob]] = {}
        for job in sorted(jobs, key=lambda job: backend_info(job.spec.backend).generator):
            groups.setdefault(job.spec.backend, []).append(job)
        return groups

    def set_progress_callback(self, callback: ProgressCallback | None) -> None:
        """Forward progress events of every backend (created now or later) to ``callback``."""
        self._progress = callback
        for backend in self._backends.values():
            backend.set_progress_callback(callback)

    def ordered(self, jobs: Sequence[GenerationJob]) -> list[GenerationJob]:
        """File readers first, then each backend's own preferred order."""
        result: list[GenerationJob] = []
        for name, group in self._groups(jobs).items():
            result.extend(self._backend(name).ordered(group))
        return result

    def start(self, jobs: Sequence[GenerationJob]) -> None:
        """Create (once) and start the backend of each group of jobs."""
        for name, group in self._groups(jobs).items():
            backend = self._backend(name)
            backend.start(group)
            self._by_key.update({job.key: backend for job in group})

    def result(self, key: str) -> GenerationResult:
        """The result of job ``key`` from the backend it went to."""
        return self._by_key[key].result(key)

    def settled(self, key: str) -> None:
        """Tell the backend of job ``key`` that its result is cached."""
        backend = self._by_key.get(key)
        if backend is not None:
            backend.settled(key)

    def cancel(self) -> None:
        """Cancel every backend."""
        for backend in self._backends.values():
            backend.cancel()

    def close(self) -> None:
        """Close every backend (each once, even if one fails)."""
        backends, self._backends = list(self._backends.values()), {}
        errors: list[BaseException] = []
        for backend in backends:
            try:
                backend.close()
            except Exception as error:  # close the others, then report the first
                errors.append(error)
        if errors:
            raise errors[0]


if TYPE_CHECKING:
    _implements: type[Backend] = BackendRouter  # mypy proves the whole protocol is there
