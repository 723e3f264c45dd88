"""A backend for tests of builds that go wrong: it wraps the real one (``create_backend`` by default) and
fails, or slows down, the generations of chosen sprites. Tests inject it through
``BuildOptions.backend_factory`` or ``pixelbuild.cli.main(argv, backend_factory=...)``::

    build(manifest, BuildOptions(backend_factory=flaky(fail={"slime"}, message="the generator broke")))

(Not in ``pixelbuild.testing``: importing that starts aiohttp, which subprocess tests would pay for.)
"""

from __future__ import annotations

import time
from collections.abc import Collection, Sequence
from typing import TYPE_CHECKING

from pixelbuild.backends import create_backend
from pixelbuild.backends.base import (
    Backend,
    BackendFactory,
    BackendRequest,
    GenerationJob,
    GenerationResult,
    ProgressCallback,
)
from pixelbuild.errors import GenerationError


def flaky(
    fail: Collection[str] = (),
    message: str = "the generator broke",
    *,
    delay: float = 0.0,
    inner: BackendFactory = create_backend,
) -> BackendFactory:
    """A factory of backends made by ``inner`` whose results take ``delay`` seconds more, and whose jobs
    for the sprites in ``fail`` raise ``GenerationError(message)`` instead."""

    def factory(request: BackendRequest) -> Backend:
        return FlakyBackend(inner(request), frozenset(fail), message, delay)

    return factory


class FlakyBackend:
    """``inner`` with slower results, and failures for the jobs of some sprites."""

    def __init__(self, inner: Backend, fail: frozenset[str], message: str, delay: float) -> None:
        self.inner = inner
        self.name = inner.name
        self.fail = fail
        self.message = message
        self.delay = delay
        self._sprites: dict[str, str] = {}

    def ordered(self, jobs: Sequence[GenerationJob]) -> list[GenerationJob]:
        """The inner backend's order."""
        return self.inner.ordered(jobs)

    def set_progress_callback(self, callback: ProgressCallback | None) -> None:
        """The inner backend reports progress."""
        self.inner.set_progress_callback(callback)

    def start(self, jobs: Sequence[GenerationJob]) -> None:
        """Remember whose job each key is; start the inner backend."""
        self._sprites.update((job.key, job.sprite_id) for job in jobs)
        self.inner.start(jobs)

    def result(self, key: str) -> GenerationResult:
        """The inner result after ``delay``, or the failure when the job's sprite is one to fail."""
        time.sleep(self.delay)
        if self._sprites.get(key) in self.fail:
            raise GenerationError(self.message)
        return self.inner.result(key)

    def settled(self, key: str) -> None:
        """Passed on."""
        self.inner.settled(key)

    def cancel(self) -> None:
        """Passed on."""
        self.inner.cancel()

    def close(self) -> None:
        """Passed on."""
        self.inner.close()


if TYPE_CHECKING:
    _implements: type[Backend] = FlakyBackend  # mypy proves the whole protocol is there
