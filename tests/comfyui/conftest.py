"""Fixtures for the ComfyUI backend tests: fake servers on ephemeral loopback ports, recorded fixtures."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from pixelbuild.testing import FakeComfyServer


@pytest.fixture(autouse=True)
def _no_server_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Settings in these tests name their servers; PIXELBUILD_COMFYUI_URL (set for ``-m comfyui`` runs)
    would otherwise override them."""
    monkeypatch.delenv("PIXELBUILD_COMFYUI_URL", raising=False)


@pytest.fixture
def fake_factory() -> Iterator[Callable[..., FakeComfyServer]]:
    """Make any number of fake servers; all are closed after the test."""
    servers: list[FakeComfyServer] = []

    def make(**kwargs: Any) -> FakeComfyServer:
        server = FakeComfyServer(**kwargs).start()
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.close()


@pytest.fixture
def fake(fake_factory: Callable[..., FakeComfyServer]) -> FakeComfyServer:
    """One fake ComfyUI server."""
    return fake_factory()
