"""Run the pixelbuild CLI with a slowed-down placeholder generator and post-processing (for interruption and
progress tests).

``SLOW_GENERATOR_SECONDS``: seconds per generation; ``SLOW_GENERATOR_FAIL``: a sprite id whose generation fails;
``SLOW_POST_SECONDS``: seconds per sprite's post-processing (in the worker processes too: they are forked from
this one).
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pixelbuild.cli import main
from pixelbuild.execute import worker
from tests.flaky_backend import flaky

_original_post = worker.post_process


def _slow_post(job: worker.PostJob) -> worker.Rendered:
    time.sleep(float(os.environ.get("SLOW_POST_SECONDS", "0")))
    return _original_post(job)


worker.post_process = _slow_post

if __name__ == "__main__":
    failing = os.environ.get("SLOW_GENERATOR_FAIL")
    delay = float(os.environ.get("SLOW_GENERATOR_SECONDS", "0.2"))
    sys.exit(main(sys.argv[1:], backend_factory=flaky(fail={failing} if failing else (), delay=delay)))
