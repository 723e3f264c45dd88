"""Fixtures for the remote cache: a real S3-compatible server (moto) on 127.0.0.1, reached over HTTP."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from pixelbuild.backends import create_backend
from pixelbuild.backends.base import Backend, BackendRequest
from pixelbuild.testing.s3server import S3Server, s3_server

BUCKET = "pixelbuild-art"
_prefixes = itertools.count()


@pytest.fixture(scope="session")
def shared_s3() -> Iterator[S3Server]:
    """One moto server for the session (each test takes its own prefix in the bucket)."""
    with s3_server() as server:
        server.create_bucket(BUCKET)
        yield server


@pytest.fixture
def s3(shared_s3: S3Server, monkeypatch: pytest.MonkeyPatch) -> S3Server:
    """The shared server, with the environment pointing the client at it (and no remote from outside)."""
    monkeypatch.delenv("PIXELBUILD_REMOTE", raising=False)
    for name, value in shared_s3.env.items():
        monkeypatch.setenv(name, value)
    return shared_s3


@pytest.fixture
def s3_url(s3: S3Server) -> str:
    """A fresh ``s3://`` remote (a prefix no other test uses)."""
    return f"s3://{BUCKET}/t{next(_prefixes)}"


@pytest.fixture
def own_s3(monkeypatch: pytest.MonkeyPatch) -> Iterator[S3Server]:
    """A moto server of this test alone (it may stop it), with the environment pointing at it."""
    monkeypatch.delenv("PIXELBUILD_REMOTE", raising=False)
    with s3_server() as server:
        server.create_bucket(BUCKET)
        for name, value in server.env.items():
            monkeypatch.setenv(name, value)
        yield server


def no_generator(request: BackendRequest) -> Backend:
    """A backend factory for builds that must not generate anything: making a backend at all fails."""
    raise AssertionError("this build must not need the generator")


class CountingBackend:
    """The real backend, counting the results it hands out; ``after_each`` runs after each one."""

    def __init__(self, inner: Backend, calls: list[str], after_each: Callable[[int], None] | None) -> None:
        self._inner = inner
        self._calls = calls
        self._after_each = after_each

    def __getattr__(self, name: str) -> object:
        return getattr(self._inner, name)

    def result(self, key: str) -> object:
        """The inner backend's result, counted."""
        found = self._inner.result(key)
        self._calls.append(key)
        if self._after_each is not None:
            self._after_each(len(self._calls))
        return found


def counting(calls: list[str], after_each: Callable[[int], None] | None = None) -> Callable[[BackendRequest], Backend]:
    """A backend factory whose backends record each generation key in ``calls``."""

    def factory(request: BackendRequest) -> Backend:
        backend: Backend = CountingBackend(create_backend(request), calls, after_each)  # type: ignore[assignment]
        return backend

    return factory


def committed(source: Path, target: Path, *, assets: bool = True) -> Path:
    """A fresh clone of ``source``: what a repository holds (manifest, lock, and the assets unless not
    ``assets``), never ``.pixelbuild``."""
    import shutil

    ignore = [".pixelbuild"] + ([] if assets else ["assets"])
    shutil.copytree(source, target, ignore=shutil.ignore_patterns(*ignore))
    return target
