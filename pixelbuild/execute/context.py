"""What a run is given: the build's resolved sprites, keys, lock, cache, journal and options."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec

if TYPE_CHECKING:
    from pixelbuild.backends.base import BackendFactory
    from pixelbuild.fsguard import OutputGuard
    from pixelbuild.keys import SpriteKeys
    from pixelbuild.local.filehashes import FileHashCache
    from pixelbuild.local.journal import Journal
    from pixelbuild.local.store import Store
    from pixelbuild.lock import Lock
    from pixelbuild.progress import Progress
    from pixelbuild.spec import AtlasSpec, SpriteSpec


class EngineContext(msgspec.Struct):
    """Everything a run needs, computed by the build before it starts."""

    project_dir: Path
    output_dir: Path
    store: Store
    journal: Journal
    hashes: FileHashCache
    sprites: Mapping[str, SpriteSpec]
    keys: Mapping[str, SpriteKeys]
    lock: Lock
    backend_name: str
    backend_settings: Mapping[str, Any]
    jobs: int
    progress: Progress
    atlases: Mapping[str, AtlasSpec] = msgspec.field(default_factory=dict)
    servers: tuple[str, ...] = ()  # --server: replaces the backend's server list
    backend_factory: BackendFactory | None = None  # None: create_backend
    sprites_per_run: int | None = None  # None: orchestrate.SPRITES_PER_RUN
    #: Writes and deletes under the output root (default: a guard of ``output_dir`` with no options).
    guard: OutputGuard | None = None
    #: Why writing an output path would clobber a file pixelbuild does not own (None: it may be written).
    foreign: Callable[[str], str | None] | None = None
