"""``pixelbuild gallery``: a static page of every sprite and atlas as built, with what made it.

Per sprite: the final image upscaled with crisp pixels on a checkerboard, the raw generation(s) from the
cache when present, the animation playing at its fps, and its spec (prompt, seeds, checkpoint, LoRAs,
workflow, post chain). Atlases show their frames outlined. Images are copied or hard-linked beside
``index.html`` so the folder opens from ``file://`` or can be zipped and shared.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from html import escape
from pathlib import Path
from typing import Any

from pixelbuild.local.filehashes import FileHashCache
from pixelbuild.local.store import Store
from pixelbuild.lock import Lock, LockEntry, OutputRecord
from pixelbuild.project import Session
from pixelbuild.review import page
from pixelbuild.review.describe import frame_count, sprite_rows, tags
from pixelbuild.review.media import Exporter, atlas_rects, inside, png_size, read_regular, sheet_frames
from pixelbuild.spec import SpriteSpec

#: Raw generations shown per sprite (an animation of 24 frames shows the first few).
MAX_RAW = 4
DEFAULT_FPS = 10.0


@dataclass(frozen=True, slots=True)
class GalleryReport:
    """What ``write_gallery`` wrote."""

    index: Path
    sprites: int
    atlases: int
    missing: int
    seconds: float


@dataclass(frozen=True, slots=True)
class Shown:
    """A finished image as a page shows it: its URL and size."""

    url: str
    width: int
    height: int


def export_output(
    exporter: Exporter,
    output_dir: Path,
    relative: str,
    hashes: FileHashCache | None = None,
    record: OutputRecord | None = None,
) -> Shown | None:
    """Copy the output file ``relative`` (under ``output_dir``) beside the page; None if absent or not a PNG.

    With the project's file hashes and the output's lock ``record``, an image an earlier run already
    copied is found by its (stat-cached) hash without reading the file again.
    """
    path = inside(output_dir, relative)
    known = path is not None and hashes is not None and record is not None and hashes.hash(path) == record.file_hash
    if known and record is not None and record.width and record.height:
        url = exporter.existing(record.file_hash)
        if url is not None:
            return Shown(url, record.width, record.height)
    data = read_regular(path) if path is not None else None
    size = png_size(data) if data is not None else None
    if data is None or size is None:
        return None
    return Shown(exporter.add_bytes(data), size[0], size[1])


def export_raw(exporter: Exporter, store: Store, generation_keys: tuple[str, ...]) -> list[Shown]:
    """Link the cached raw generations of a sprite beside the page (at most ``MAX_RAW``)."""
    shown: list[Shown] = []
    for key in dict.fromkeys(generation_keys):
        record = store.get_action("gen", key)
        for item in record.images if record else ():
            if len(shown) >= MAX_RAW:
                return shown
            width, height = item.width, item.height
            if width is None or height is None or width > 1 << 16 or height > 1 << 16:
                continue
            url = exporter.add_blob(store.blob_path(item.blob), item.blob)
            if url is not None:
                shown.append(Shown(url, width, height))
    return shown


def sprite_fps(session: Session) -> dict[str, float]:
    """Each sprite's playback rate: the fps of the first atlas that holds it, else ``DEFAULT_FPS``."""
    fps: dict[str, float] = {}
    for atlas in session.resolved.atlases:
        for member in atlas.members:
            fps.setdefault(member, atlas.fps)
    return fps


def sprite_figure(shown: Shown, sprite: SpriteSpec, fps: float, caption: str = "final") -> str:
    """The final image of a sprite, and for an animation the animation playing beside its sheet."""
    count = frame_count(sprite)
    frames = sheet_frames(shown.width, shown.height, count, sprite.layout)
    if count > 1:
        cell = max(frames[0][2], frames[0][3])
        scale = page.scale_for(cell, cell)
        sheet_scale = page.scale_for(shown.width, shown.height, page.THUMB * 2)
        return (
            f"<figure>{page.animation(shown.url, (shown.width, shown.height), frames, fps, scale, sprite.id)}"
            f"<figcaption>{count} frames @ {fps:g} fps</figcaption></figure>"
            f"<figure>{page.image(shown.url, shown.width, shown.height, sheet_scale, sprite.id + ' sheet')}"
            f"<figcaption>sheet {shown.width}×{shown.height}</figcaption></figure>"
        )
    scale = page.scale_for(shown.width, shown.height)
    return (
        f"<figure>{page.image(shown.url, shown.width, shown.height, scale, sprite.id)}"
        f"<figcaption>{escape(caption)} {shown.width}×{shown.height} ×{scale}</figcaption></figure>"
    )


def raw_figures(raws: list[Shown]) -> str:
    """The raw generations, downscaled smoothly to thumbnail size (they are large)."""
    out = []
    for index, raw in enumerate(raws):
        side = max(raw.width, raw.height)
        width, height = max(1, raw.width * page.THUMB // side), max(1, raw.height * page.THUMB // side)
        label = "raw" if len(raws) == 1 else f"raw {index}"
        out.append(
            f'<figure><span class="checker raw"><img loading="lazy" decoding="async" src="{escape(raw.url)}" '
            f'width="{width}" height="{height}" alt="{label}"></span>'
            f"<figcaption>{label} {raw.width}×{raw.height}</figcaption></figure>"
        )
    return "".join(out)


def search_text(sprite: SpriteSpec, tag_list: list[str]) -> str:
    """What the search box matches: id, prompts and tags, lower-case."""
    prompts = " ".join(dict.fromkeys(generation.prompt for generation in sprite.generations))
    return " ".join([sprite.id, prompts, *tag_list]).lower()


def sprite_card(
    sprite: SpriteSpec,
    entry: LockEntry | None,
    current: bool,
    shown: Shown | None,
    raws: list[Shown],
    fps: float,
    atlases: list[str],
) -> str:
    """One sprite's card."""
    tag_list = tags(sprite.id, atlases)
    badge = ""
    if shown is None:
        badge = '<span class="badge missing">not built</span>'
    elif entry is None or not current:
        badge = '<span class="badge stale">out of date</span>'
    figures = (sprite_figure(shown, sprite, fps) if shown is not None else "") + raw_figures(raws)
    rows = [(label, escape(value)) for label, value in sprite_rows(sprite)]
    if tag_list:
        rows.append(("tags", "".join(f'<span class="tag">{escape(t)}</span>' for t in tag_list)))
    return (
        f'<section class="card" id="{escape(sprite.id)}" data-search="{escape(search_text(sprite, tag_list))}">'
        f"<h2>{badge}{escape(sprite.id)}</h2><div class=row>{figures}</div>{page.info_table(rows)}</section>\n"
    )


def atlas_card(session: Session, lock: Lock, exporter: Exporter, atlas: Any) -> str:
    """An atlas's card: its image with every frame outlined, and its members."""
    entry = lock.atlases.get(atlas.id)
    shown = export_output(exporter, session.output_dir, atlas.output)
    members: dict[str, tuple[int, int, int, Mapping[str, Any]]] = {}
    for member in atlas.members:
        sprite_entry = lock.sprites.get(member)
        output = sprite_entry.outputs[0] if sprite_entry and sprite_entry.outputs else None
        if output is not None and output.width and output.height:
            sprite = session.resolved.by_id[member]
            members[member] = (output.width, output.height, frame_count(sprite), sprite.layout)
    current = entry is not None and entry.pack_key == session.atlas_keys.get(atlas.id)
    rects = atlas_rects(atlas, members) if current else None
    if shown is None:
        figure = '<span class="badge missing">not built</span>'
    else:
        scale = page.scale_for(shown.width, shown.height, page.THUMB * 4)
        outlined = [(name, x, y, w, h, False) for name, x, y, w, h in rects or ()]
        figure = (
            f"<figure>{page.outlined(shown.url, (shown.width, shown.height), outlined, scale, atlas.id)}"
            f"<figcaption>{shown.width}×{shown.height} ×{scale}, {len(outlined)} frames outlined</figcaption></figure>"
        )
        if not current:
            figure = '<span class="badge stale">out of date</span>' + figure
    rows = [
        ("members", escape(", ".join(atlas.members))),
        ("output", escape(atlas.output)),
        ("formats", escape(", ".join(atlas.formats))),
        ("fps", f"{atlas.fps:g}"),
    ]
    search = " ".join([atlas.id, "atlas", *atlas.members]).lower()
    return (
        f'<section class="card" style="grid-column:1/-1" id="atlas-{escape(atlas.id)}" data-search="{escape(search)}">'
        f'<h2><span class="tag">atlas</span>{escape(atlas.id)}</h2><div class=row>{figure}</div>'
        f"{page.info_table(rows)}</section>\n"
    )


def render_gallery(session: Session, lock: Lock, exporter: Exporter) -> tuple[str, int]:
    """The gallery's HTML and how many sprites have no built image."""
    fps = sprite_fps(session)
    in_atlases: dict[str, list[str]] = {}
    for atlas in session.resolved.atlases:
        for member in atlas.members:
            in_atlases.setdefault(member, []).append(atlas.id)
    cards = []
    missing = 0
    for sprite in session.resolved.sprites:
        entry = lock.sprites.get(sprite.id)
        keys = session.keys[sprite.id]
        current = entry is not None and entry.post_key == keys.post
        record = entry.outputs[0] if entry is not None and entry.outputs else None
        shown = export_output(exporter, session.output_dir, sprite.output, session.hashes, record)
        missing += shown is None
        raws = export_raw(exporter, session.store, keys.generations)
        cards.append(
            sprite_card(
                sprite, entry, current, shown, raws, fps.get(sprite.id, DEFAULT_FPS), in_atlases.get(sprite.id, [])
            )
        )
    cards.extend(atlas_card(session, lock, exporter, atlas) for atlas in session.resolved.atlases)
    count = len(session.resolved.sprites)
    meta = (
        f"{count} sprite{'s' if count != 1 else ''}, {len(session.resolved.atlases)} atlas(es)"
        f" · {escape(session.paths.display(session.paths.manifest))}"
    )
    return page.page("pixelbuild gallery", meta, "".join(cards)), missing


def write_gallery(session: Session, lock: Lock, folder: Path) -> GalleryReport:
    """Write the gallery of ``session`` (as ``lock`` records it) into ``folder``; return where."""
    from pixelbuild.fsutil import atomic_write_bytes

    started = time.perf_counter()
    exporter = Exporter(folder)
    html, missing = render_gallery(session, lock, exporter)
    index = folder / "index.html"
    atomic_write_bytes(index, html.encode("utf-8"))
    exporter.prune()
    return GalleryReport(
        index, len(session.resolved.sprites), len(session.resolved.atlases), missing, time.perf_counter() - started
    )
