"""One-line warnings on stderr, each topic said at most once per process (damaged local state, ...)."""

from __future__ import annotations

import contextlib
import sys
import threading

_said: set[str] = set()
_lock = threading.Lock()


def warn_once(topic: str, message: str) -> None:
    """Print ``pixelbuild: warning: message`` on stderr unless ``topic`` was already warned about."""
    with _lock:
        if topic in _said:
            return
        _said.add(topic)
    with contextlib.suppress(OSError, ValueError):  # a closed stderr must not turn a warning into a failure
        sys.stderr.write(f"pixelbuild: warning: {message}\n")
