"""The ``source`` backend: a sprite drawn by hand, read from a PNG in the project instead of generated.

It runs in-process and only reads the file the resolver checked: a single image, or a sheet (as Aseprite
exports one) cut into frames of ``frame_size`` in row-major order, the first ``batch_size`` cells. The
frames then take the same road as generated ones (raw cache, post chain, frames layout, atlases), and the
generation key is the file's content hash with the cut, so editing the file rebuilds exactly this sprite.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pixelbuild.backends.base import Backend, BackendIdentity, GenerationJob, GenerationResult, ProgressCallback
from pixelbuild.errors import GenerationError
from pixelbuild.pngheader import png_header_size

if TYPE_CHECKING:
    from PIL import Image

VERSION = "1"
IDENTITY = BackendIdentity(name="source", version=VERSION, models=())

#: Largest source image accepted (pixels): a 8192² sheet, far beyond any sprite sheet, far below a bomb.
MAX_PIXELS = 8192 * 8192


def cut_frames(sheet: Image.Image, frame_size: tuple[int, int], count: int) -> list[Image.Image]:
    """The first ``count`` cells of ``sheet``, ``frame_size`` each, left to right then top to bottom."""
    width, height = frame_size
    columns = sheet.width // width
    if columns < 1 or count > columns * (sheet.height // height):
        raise ValueError(f"a {sheet.width}x{sheet.height} sheet has fewer than {count} frames of {width}x{height}")
    cells = ((i % columns * width, i // columns * height) for i in range(count))
    return [sheet.crop((left, top, left + width, top + height)) for left, top in cells]


def read_source(job: GenerationJob) -> list[Image.Image]:
    """Read job's source PNG, check that it is the file its key was computed from, and cut it into
    ``batch_size`` RGBA frames (bounded in size before decoding)."""
    from PIL import Image

    from pixelbuild.hashing import hash_bytes
    from pixelbuild.keys import generation_key
    from pixelbuild.png import decode_png

    assert job.source_path is not None
    try:
        data = job.source_path.read_bytes()
    except OSError as error:
        raise GenerationError(f"cannot read its source file ({error.strerror})", field="source") from None
    # Edited since the build planned? Its frames must not be cached under the old content's key.
    if generation_key(job.spec, lambda _ref: hash_bytes(data)) != job.key:
        raise GenerationError("its source file changed during the build; build again", field="source")
    size = png_header_size(data[:24])
    if size is None:
        raise GenerationError("its source file is not a PNG image", field="source")
    if size[0] * size[1] > MAX_PIXELS or 0 in size:
        raise GenerationError(f"its source image is {size[0]}x{size[1]}; at most {MAX_PIXELS} pixels", field="source")
    try:
        image = decode_png(data)
    except (OSError, ValueError, Image.DecompressionBombError) as error:
        raise GenerationError(f"its source file is not a readable PNG ({error})", field="source") from None
    rgba = image if image.mode == "RGBA" else image.convert("RGBA")
    try:
        return cut_frames(rgba, job.spec.frame_size or (rgba.width, rgba.height), job.spec.batch_size)
    except ValueError as error:
        raise GenerationError(f"its source sheet changed: {error}", field="source") from None


class SourceBackend:
    """Reads source images on demand, in the calling thread."""

    name = "source"

    def __init__(self) -> None:
        self._jobs: dict[str, GenerationJob] = {}
        self._lock = threading.Lock()

    def ordered(self, jobs: Sequence[GenerationJob]) -> list[GenerationJob]:
        """Any order is as good as another: the manifest's."""
        return list(jobs)

    def set_progress_callback(self, callback: ProgressCallback | None) -> None:
        """Reading a file takes milliseconds: nothing to report."""

    def start(self, jobs: Sequence[GenerationJob]) -> None:
        """Remember the jobs; the resolver already checked that every file exists."""
        with self._lock:
            self._jobs.update({job.key: job for job in jobs})

    def result(self, key: str) -> GenerationResult:
        """The frames of job ``key``, read from its file now."""
        job = self._jobs.get(key)
        if job is None or job.source_path is None:
            raise GenerationError(f"no source job with key {key}")
        images = read_source(job)
        return GenerationResult(images=images, identity=IDENTITY)

    def settled(self, key: str) -> None:
        """Nothing to forget: every result is made again on demand."""

    def cancel(self) -> None:
        """Nothing runs in the background."""

    def close(self) -> None:
        """Nothing to release."""


def create(settings: Mapping[str, Any], project_root: Path, *, servers: Sequence[str] = ()) -> SourceBackend:
    """Create the source backend (it has no settings and no servers: ``servers`` is ignored)."""
    return SourceBackend()


if TYPE_CHECKING:
    _implements: type[Backend] = SourceBackend  # mypy proves the whole protocol is there
