"""The images a review page shows: copied (or hard-linked) beside the page under content-hash names,
read with bounded sizes and without following symlinks, plus the frame geometry of sheets and atlases.
"""

from __future__ import annotations

import contextlib
import os
import re
import stat
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from pixelbuild.fsutil import atomic_write_bytes
from pixelbuild.hashing import hash_bytes
from pixelbuild.pngheader import png_header_size

#: Largest image file a page copies (a sprite, a sheet, an atlas or a raw generation).
MAX_IMAGE_BYTES = 64 << 20
#: Largest image a page decodes (pixels), e.g. for diff.png: an 8k x 4k atlas.
MAX_PIXELS = 1 << 25
_DIGEST = re.compile(r"[0-9a-f]{16,64}")


def png_size(data: bytes) -> tuple[int, int] | None:
    """Width and height from a PNG's header, or None if ``data`` is not a PNG of a size a page shows."""
    size = png_header_size(data)
    if size is None:
        return None
    width, height = size
    if not 0 < width <= 1 << 16 or not 0 < height <= 1 << 16:
        return None
    return width, height


def read_regular(path: Path, limit: int = MAX_IMAGE_BYTES) -> bytes | None:
    """The bytes of ``path`` if it is a regular file (not a symlink) of at most ``limit`` bytes."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_BINARY", 0))
    except OSError:
        return None
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(handle.fileno())
        if not stat.S_ISREG(info.st_mode) or info.st_size > limit:
            return None
        return handle.read(limit + 1)[:limit]


def safe_relative(relative: object) -> bool:
    """Whether ``relative`` is a plain relative POSIX path: no ``..``, no absolute or empty parts."""
    if not isinstance(relative, str) or not relative or relative.startswith("/"):
        return False
    if any(char in relative for char in "\\\0\n\r"):
        return False
    return all(part not in ("", ".", "..") for part in relative.split("/"))


def inside(root: Path, relative: str) -> Path | None:
    """``root / relative`` when ``relative`` is a plain relative POSIX path with no symlink on the way
    (anything else, e.g. from a hand-edited lock, is refused)."""
    if not safe_relative(relative):
        return None
    current = root
    for part in relative.split("/")[:-1]:
        current = current / part
        try:
            if not stat.S_ISDIR(os.lstat(current).st_mode):
                return None
        except OSError:
            return None
    return root / relative


class Exporter:
    """Puts images beside a page under ``<folder>/<hash>.png`` and returns their page-relative URLs.

    Names are content hashes, so a re-run rewrites nothing that did not change, and ``prune`` removes
    the images no page refers to any more.
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self.used: set[str] = set()

    def add_bytes(self, data: bytes, folder: str = "img") -> str:
        """Write ``data`` (a PNG) unless present; return its URL."""
        name = f"{folder}/{hash_bytes(data)[:32]}.png"
        if name not in self.used:
            self.used.add(name)
            target = self.root / name
            if not target.is_file():
                atomic_write_bytes(target, data)
        return name

    def existing(self, digest: str, folder: str = "img") -> str | None:
        """The URL of an image with content hash ``digest`` that an earlier run already wrote, if any."""
        name = f"{folder}/{digest[:32]}.png"
        if name in self.used or (_DIGEST.fullmatch(digest) and (self.root / name).is_file()):
            self.used.add(name)
            return name
        return None

    def add_blob(self, path: Path, digest: str, folder: str = "raw") -> str | None:
        """Hard-link (else copy) the cache blob ``path`` named ``digest``; None if it is not a sane blob."""
        if not _DIGEST.fullmatch(digest):
            return None
        name = f"{folder}/{digest[:32]}.png"
        if name in self.used:
            return name
        target = self.root / name
        try:
            info = os.lstat(path)
        except OSError:
            return None
        if not stat.S_ISREG(info.st_mode) or info.st_size > MAX_IMAGE_BYTES:
            return None
        if not target.is_file():
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.link(path, target, follow_symlinks=False)
            except OSError:
                data = read_regular(path)
                if data is None:
                    return None
                atomic_write_bytes(target, data)
        self.used.add(name)
        return name

    def prune(self, folders: Sequence[str] = ("img", "raw")) -> None:
        """Delete images of earlier runs that no page refers to now (only names this class writes)."""
        for folder in folders:
            directory = self.root / folder
            if not directory.is_dir():
                continue
            for path in directory.iterdir():
                name = f"{folder}/{path.name}"
                if name not in self.used and re.fullmatch(r"[0-9a-f]{32}\.png", path.name):
                    with contextlib.suppress(OSError):
                        path.unlink()


def sheet_frames(width: int, height: int, count: int, layout: Mapping[str, Any]) -> list[tuple[int, int, int, int]]:
    """Each frame's ``(x, y, w, h)`` on a ``width`` x ``height`` sheet of ``count`` frames laid out as
    ``layout`` (the same cut the atlas packer makes)."""
    if count <= 1:
        return [(0, 0, width, height)]
    from pixelbuild.sheets import layout_frames

    kind = str(layout.get("type", "strip"))
    columns = layout.get("columns")
    padding = int(layout.get("padding", 0))
    grid = layout_frames([(1, 1)] * count, kind, columns, padding)
    cell = (
        max(1, (width - (grid.columns - 1) * padding) // grid.columns),
        max(1, (height - (grid.rows - 1) * padding) // grid.rows),
    )
    cut = layout_frames([cell] * count, kind, columns, padding)
    return [(r.x, r.y, r.width, r.height) for r in cut.frames]


def atlas_rects(
    atlas: Any, members: Mapping[str, tuple[int, int, int, Mapping[str, Any]]]
) -> list[tuple[str, int, int, int, int]] | None:
    """Where each frame of ``atlas`` (an ``AtlasSpec``) lies, packed exactly as a build packs it from
    its members' ``(width, height, frames, layout)``; None if a member is unknown or packing fails."""
    from pixelbuild.errors import PixelbuildError
    from pixelbuild.pack.packer import PackItem, pack

    items: list[PackItem] = []
    for sprite_id in atlas.members:
        if sprite_id not in members:
            return None
        width, height, count, layout = members[sprite_id]
        frames = sheet_frames(width, height, count, layout)
        names = [sprite_id] if len(frames) == 1 else [f"{sprite_id}/{i}" for i in range(len(frames))]
        items.extend(PackItem(name, w, h) for name, (_x, _y, w, h) in zip(names, frames, strict=True))
    try:
        packed = pack(
            items,
            max_size=atlas.max_size,
            power_of_two=atlas.power_of_two,
            padding=atlas.padding,
            extrude=atlas.extrude,
        )
    except (PixelbuildError, ValueError):
        return None
    return [(p.name, p.x, p.y, p.width, p.height) for p in packed.placements]
