"""Worker processes that die with the process that started them (post-processing pools, manifest loaders)."""

from __future__ import annotations

import os
import sys
import threading

_PR_SET_PDEATHSIG = 1


def follow_parent(parent: int) -> None:
    """In a worker process: die with the process ``parent`` that started it, however that one ends.

    A worker that outlived a killed build would hold the caller's stdout and stderr open (a CI step
    would hang). Linux delivers SIGKILL to us when the parent dies; elsewhere a thread watches
    ``getppid``. Checked once more after arming, in case the parent died first.
    """
    import signal

    # The parent handles Ctrl-C and SIGTERM and ends its workers; a worker only follows it.
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
