"""One backend per run for the engine, made of the backends its jobs name.

A project has one generator backend, but a sprite drawn by hand names ``source``: the router hands each
job to the backend of its spec and creates a backend only when some job needs it, so a build whose stale
sprites are all hand-drawn never contacts (nor needs) a ComfyUI server.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from pixelbuild.backends import backend_info
from pixelbuild.backends.base import Backend, GenerationJob, GenerationResult

Factory = Callable[[str, Mapping[str, Any], Path], Backend]


class BackendRouter:
    """Routes jobs by ``job.spec.backend``; the project's settings go to the project's backend only."""

    name = "router"

    def __init__(self, factory: Factory, project_backend: str, settings: Mapping[str, Any], root: Path) -> None:
        self._factory = factory
        self._project_backend = project_backend
        self._settings = settings
        self._root = root
        self._backends: dict[str, Backend] = {}
        self._by_key: dict[str, Backend] = {}
        self._progress: Callable[[Any], None] | None = None

    def _backend(self, name: str) -> Backend:
        backend = self._backends.get(name)
        if backend is None:
            settings = self._settings if name == self._project_backend else {}
            backend = self._factory(name, settings, self._root)
            if self._progress is not None:
                callback = getattr(backend, "set_progress_callback", None)
                if callable(callback):
                    callback(self._progress)
            self._backends[name] = backend
        return backend

    @staticmethod
    def _groups(jobs: Sequence[GenerationJob]) -> dict[str, list[GenerationJob]]:
        # File readers first: they finish at once, so their sprites land while the generator works.
        groups: dict[str, list[GenerationJob]] = {}
        for job in sorted(jobs, key=lambda job: backend_info(job.spec.backend).generator):
            groups.setdefault(job.spec.backend, []).append(job)
        return groups

    def set_progress_callback(self, callback: Callable[[Any], None]) -> None:
        """Forward progress events of every backend (created now or later) to ``callback``."""
        self._progress = callback
        for backend in self._backends.values():
            forward = getattr(backend, "set_progress_callback", None)
            if callable(forward):
                forward(callback)

    def ordered(self, jobs: Sequence[GenerationJob]) -> list[GenerationJob]:
        """File readers first, then each backend's own preferred order."""
        result: list[GenerationJob] = []
        for name, group in self._groups(jobs).items():
            ordered = getattr(self._backend(name), "ordered", None)
            result.extend(ordered(group) if callable(ordered) else group)
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
        """Tell the backend of job ``key`` that its result is cached (if that backend wants to know)."""
        backend = self._by_key.get(key)
        forward = getattr(backend, "settled", None)
        if callable(forward):
            forward(key)

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
