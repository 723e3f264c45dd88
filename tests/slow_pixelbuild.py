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

from pixelbuild.backends import placeholder
from pixelbuild.cli import main
from pixelbuild.errors import GenerationError
from pixelbuild.execute import worker

_original = placeholder.PlaceholderBackend.result


def _slow_result(self: placeholder.PlaceholderBackend, key: str) -> placeholder.GenerationResult:
    time.sleep(float(os.environ.get("SLOW_GENERATOR_SECONDS", "0.2")))
    if self._jobs[key].sprite_id == os.environ.get("SLOW_GENERATOR_FAIL"):
        raise GenerationError("the generator broke")
    return _original(self, key)


placeholder.PlaceholderBackend.result = _slow_result  # type: ignore[method-assign]

_original_post = worker.post_process


def _slow_post(job: worker.PostJob) -> worker.Rendered:
    time.sleep(float(os.environ.get("SLOW_POST_SECONDS", "0")))
    return _original_post(job)


worker.post_process = _slow_post

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
