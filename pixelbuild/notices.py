"""One-line warnings on stderr, each topic said at most once per process (damaged local state, ...)."""

from __future__ import annotations

import contextlib
import sys
import threading
from collections.abc import Iterator
from typing import IO

_said: set[str] = set()
_lock = threading.Lock()
_pinned: list[IO[str]] = []


@contextlib.contextmanager
def pinned(stream: IO[str]) -> Iterator[None]:
    """Send warnings to ``stream`` meanwhile (doit swaps ``sys.stderr`` out while tasks run)."""
    _pinned.append(stream)
    try:
        yield
    finally:
        _pinned.remove(stream)


def warn_once(topic: str, message: str) -> None:
    """Print ``pixelbuild: warning: message`` on stderr unless ``topic`` was already warned about."""
    with _lock:
        if topic in _said:
            return
        _said.add(topic)
    stream = _pinned[-1] if _pinned else sys.stderr
    with contextlib.suppress(OSError, ValueError):  # a closed stderr must not turn a warning into a failure
        stream.write(f"pixelbuild: warning: {message}\n")
