"""``pixelbuild diff [REV]``: what the asset tree and the lock changed since a git revision, visually.

The new side is the working tree (its lock, with any unfolded journal, and its files); the old side is
read from git only (``pixelbuild.review.gitrev``). Per added, removed or changed sprite: before and after
at the same crisp scale, which spec fields changed (from the lock's per-field digests) with their old and
new manifest values; per atlas: which members moved. Output: ``index.html``, a PNG contact sheet
``diff.png`` small enough to paste into a pull-request comment, and a JSON document for bots.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from html import escape
from pathlib import Path
from typing import Any

from pixelbuild.errors import ManifestError, PixelbuildError
from pixelbuild.local.layout import LOCK_NAME, STATE_DIR, ProjectPaths
from pixelbuild.lock import AtlasEntry, Lock, LockEntry, parse_lock
from pixelbuild.plan import FileState
from pixelbuild.resolver import Resolved
from pixelbuild.review import page
from pixelbuild.review.describe import field_label, field_value, frame_count
from pixelbuild.review.gitrev import MAX_FILE_BYTES, Revision
from pixelbuild.review.media import (
    Exporter,
    atlas_rects,
    inside,
    png_size,
    read_regular,
    safe_relative,
    sheet_frames,
)

DIFF_FPS = 10.0
MAX_LOCK_BYTES = 64 << 20
#: Largest old manifest document (in YAML nodes, aliases expanded) that is resolved: an alias bomb is not.
MAX_YAML_NODES = 2_000_000


@dataclass(frozen=True, slots=True)
class Picture:
    """One side's image: its bytes (for diff.png), URL beside the page and size."""

    data: bytes
    url: str
    width: int
    height: int


@dataclass(slots=True)
class FieldChange:
    """One spec field whose lock digest changed, with its manifest values at both revisions."""

    name: str
    label: str
    old: str
    new: str


@dataclass(slots=True)
class SpriteChange:
    """An added, removed or changed sprite."""

    id: str
    change: str  # added | removed | changed
    fields: list[FieldChange] = field(default_factory=list)
    old_output: str | None = None
    new_output: str | None = None
    notes: list[str] = field(default_factory=list)
    before: Picture | None = None
    after: Picture | None = None
    frames: tuple[int, int] = (1, 1)
    layouts: tuple[Mapping[str, Any], Mapping[str, Any]] = ({}, {})


@dataclass(slots=True)
class AtlasChange:
    """An added, removed or repacked atlas and the members that moved in it."""

    id: str
    change: str
    moved: list[str] = field(default_factory=list)
    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    redrawn: list[str] = field(default_factory=list)
    before: Picture | None = None
    after: Picture | None = None
    old_rects: list[tuple[str, int, int, int, int]] = field(default_factory=list)
    new_rects: list[tuple[str, int, int, int, int]] = field(default_factory=list)


@dataclass(slots=True)
class DiffResult:
    """Everything ``pixelbuild diff`` found and wrote."""

    rev: str
    commit: str
    sprites: list[SpriteChange]
    atlases: list[AtlasChange]
    notes: list[str]
    index: Path
    contact_sheet: Path
    contact_bytes: int
    seconds: float

    @property
    def changed(self) -> bool:
        """Whether anything differs."""
        return bool(self.sprites or self.atlases)

    def document(self) -> dict[str, Any]:
        """The ``--json`` document."""

        def picture(value: Picture | None) -> str | None:
            return str(self.index.parent / value.url) if value is not None else None

        return {
            "rev": self.rev,
            "commit": self.commit,
            "changed": self.changed,
            "index": str(self.index),
            "contact_sheet": str(self.contact_sheet),
            "sprites": [
                {
                    "id": change.id,
                    "change": change.change,
                    "fields": [{"name": f.name, "label": f.label, "old": f.old, "new": f.new} for f in change.fields],
                    "output": {"old": change.old_output, "new": change.new_output},
                    "notes": change.notes,
                    "before": picture(change.before),
                    "after": picture(change.after),
                }
                for change in self.sprites
            ],
            "atlases": [
                {
                    "id": change.id,
                    "change": change.change,
                    "moved": change.moved,
                    "added": change.added,
                    "removed": change.removed,
                    "redrawn": change.redrawn,
                    "before": picture(change.before),
                    "after": picture(change.after),
                }
                for change in self.atlases
            ],
            "notes": self.notes,
            "seconds": round(self.seconds, 3),
        }

    def text(self) -> str:
        """The report for people: one line per change, then where the page and the sheet are."""
        lines = []
        for change in self.sprites:
            what = ", ".join(f.label for f in change.fields) or "; ".join(change.notes)
            lines.append(
                f"{change.change:<8} {change.id}" + (f"  {what}" if what and change.change == "changed" else "")
            )
        for atlas in self.atlases:
            moved = f"  {len(atlas.moved)} member(s) moved" if atlas.moved else ""
            lines.append(f"{atlas.change:<8} atlas {atlas.id}{moved}")
        lines.extend(f"note: {note}" for note in self.notes)
        if not self.changed:
            lines.append(f"no changes since {self.rev}")
        else:
            lines.append(f"{len(self.sprites)} sprite(s), {len(self.atlases)} atlas(es) changed since {self.rev}")
        lines.append(str(self.index))
        lines.append(f"{self.contact_sheet} ({self.contact_bytes / 1024:.0f} KiB)")
        return "\n".join(lines)


# ------------------------------------------------------------------------------------------ the sides


@dataclass(slots=True)
class Side:
    """One side of the comparison: its lock, its resolved manifest (None if unreadable) and a reader of
    files under its output root."""

    lock: Lock
    resolved: Resolved | None
    output: str  # output root, relative to the project folder

    def sprite(self, sprite_id: str) -> Any:
        """The resolved sprite ``sprite_id`` or None."""
        return self.resolved.by_id.get(sprite_id) if self.resolved is not None else None

    def atlas(self, atlas_id: str) -> Any:
        """The resolved atlas ``atlas_id`` or None."""
        if self.resolved is None:
            return None
        return next((atlas for atlas in self.resolved.atlases if atlas.id == atlas_id), None)


def _old_side(revision: Revision, paths: ProjectPaths, current_output: str, notes: list[str]) -> Side:
    display = f"{revision.rev}:{paths.display(paths.lock)}"
    raw = revision.read(LOCK_NAME, MAX_LOCK_BYTES)
    if raw is None:
        notes.append(f"{revision.rev} has no readable {LOCK_NAME}: everything in the lock counts as added")
        lock = Lock()
    else:
        try:
            lock = parse_lock(raw, display, skip_bad_entries=True)
        except RecursionError:
            raise ManifestError("the lock file nests too deeply to be a pixelbuild lock", file=display) from None
    manifest_name = paths.display(paths.manifest)
    resolved = None
    with tempfile.TemporaryDirectory(prefix="pixelbuild-diff-") as temp:
        root = Path(temp)
        try:
            revision.materialize(root, skip=(current_output, STATE_DIR))
            old_manifest = inside(root, manifest_name)
            if old_manifest is None or not old_manifest.is_file():
                raise ManifestError(f"{revision.rev} has no {manifest_name}")
            for document in (*root.rglob("*.yaml"), *root.rglob("*.yml")):
                if yaml_nodes(document.read_bytes()) > MAX_YAML_NODES:
                    raise ManifestError(
                        f"{document.relative_to(root)} expands to over {MAX_YAML_NODES:,} YAML nodes (aliases)"
                    )
            from pixelbuild.manifest import load_manifest
            from pixelbuild.resolver import resolve

            # The parse cache is content-addressed: an old file parsed before (a branch's base) is not again.
            resolved = resolve(load_manifest(old_manifest, cache_dir=paths.parse_cache))
        except (PixelbuildError, RecursionError, OSError) as error:
            notes.append(f"the manifest at {revision.rev} could not be resolved ({error}); old values are not shown")
    output = resolved.project.output if resolved is not None else current_output
    return Side(lock, resolved, output)


def yaml_nodes(raw: bytes) -> int:
    """How many nodes a YAML document holds once its aliases are expanded (counted on the shared graph,
    so a billion-laughs document is measured, not expanded); a huge count for unparsable input."""
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml's composer: 20x faster
    try:
        root = yaml.compose(raw, Loader=loader)
    except yaml.YAMLError:
        return 0  # the manifest loader reports it
    sizes: dict[int, int] = {}

    def size(node: Any) -> int:
        known = sizes.get(id(node))
        if known is not None:
            return known
        sizes[id(node)] = 1  # a cycle counts once
        children: list[Any] = []
        if isinstance(node, yaml.SequenceNode):
            children = node.value
        elif isinstance(node, yaml.MappingNode):
            children = [item for pair in node.value for item in pair]
        total = 1
        for child in children:
            total += size(child)
            if total > MAX_YAML_NODES:
                break
        sizes[id(node)] = total
        return total

    try:
        return size(root) if root is not None else 0
    except RecursionError:
        return MAX_YAML_NODES + 1


def _valid_lock(lock: Lock) -> None:
    """Refuse lock entries whose output paths are not plain relative paths (a crafted old lock)."""

    def sane(entry: LockEntry | AtlasEntry) -> bool:
        return all(safe_relative(o.path) for o in entry.outputs)

    lock.sprites = {key: entry for key, entry in lock.sprites.items() if isinstance(key, str) and sane(entry)}
    lock.atlases = {key: entry for key, entry in lock.atlases.items() if isinstance(key, str) and sane(entry)}


# ---------------------------------------------------------------------------------------- comparison


def _picture(exporter: Exporter, data: bytes | None) -> Picture | None:
    size = png_size(data) if data is not None else None
    if data is None or size is None:
        return None
    return Picture(data, exporter.add_bytes(data), size[0], size[1])


def _field_changes(old: LockEntry, new: LockEntry, old_side: Side, new_side: Side, sprite_id: str) -> list[FieldChange]:
    names = sorted(name for name in set(old.fields) | set(new.fields) if old.fields.get(name) != new.fields.get(name))
    old_sprite, new_sprite = old_side.sprite(sprite_id), new_side.sprite(sprite_id)
    changes = []
    for name in names:
        if not isinstance(name, str):
            continue
        try:
            old_value = field_value(old_sprite, name) if old_sprite is not None else "?"
        except (ValueError, TypeError, AttributeError):
            old_value = "?"
        try:
            new_value = field_value(new_sprite, name) if new_sprite is not None else "?"
        except (ValueError, TypeError, AttributeError):
            new_value = "?"
        if name == "post" and old_sprite is not None and new_sprite is not None:
            old_value, new_value = _post_delta(old_sprite, new_sprite)
        changes.append(FieldChange(name, field_label(name), old_value, new_value))
    return changes


def _post_delta(old_sprite: Any, new_sprite: Any) -> tuple[str, str]:
    """Only the steps of two post chains that differ (``#2 remove_background(...)``), for a short diff."""
    from pixelbuild.review.describe import post_text

    old_steps = [post_text((op,)) for op in old_sprite.post]
    new_steps = [post_text((op,)) for op in new_sprite.post]
    old_out, new_out = [], []
    for index in range(max(len(old_steps), len(new_steps))):
        before = old_steps[index] if index < len(old_steps) else None
        after = new_steps[index] if index < len(new_steps) else None
        if before != after:
            old_out.append(f"#{index + 1} {before}" if before else f"#{index + 1} —")
            new_out.append(f"#{index + 1} {after}" if after else f"#{index + 1} —")
    if dict(old_sprite.layout) != dict(new_sprite.layout):
        old_out.append(f"layout {dict(old_sprite.layout)}")
        new_out.append(f"layout {dict(new_sprite.layout)}")
    return "; ".join(old_out) or "(same steps)", "; ".join(new_out) or "(same steps)"


def compare(
    old: Side,
    new: Side,
    read_old: Any,
    read_new: Any,
    exporter: Exporter,
    file_state: Any = None,
) -> tuple[list[SpriteChange], list[AtlasChange]]:
    """Every sprite and atlas that differs between the two sides, sorted by id. ``file_state`` (an
    ``OutputRecord`` → ``FileState``) also reports outputs of the working tree that differ from its lock."""

    def picture_old(path: str) -> Picture | None:
        return _picture(exporter, read_old(path))

    def picture_new(path: str) -> Picture | None:
        return _picture(exporter, read_new(path))

    sprites = [
        change
        for sprite_id in sorted(set(old.lock.sprites) | set(new.lock.sprites))
        if (change := _sprite_change(sprite_id, old, new, picture_old, picture_new, file_state)) is not None
    ]
    atlases = [
        repacked
        for atlas_id in sorted(set(old.lock.atlases) | set(new.lock.atlases))
        if (repacked := _atlas_change(atlas_id, old, new, picture_old, picture_new)) is not None
    ]
    return sprites, atlases


def _kind(before: object | None, after: object | None) -> str:
    return "added" if before is None else "removed" if after is None else "changed"


def _disk_notes(entry: LockEntry | None, file_state: Any) -> list[str]:
    """What differs on disk from the working tree's lock entry ``entry`` (none without ``file_state``)."""
    if file_state is None or entry is None:
        return []
    on_disk = [(output.path, file_state(output)) for output in entry.outputs]
    return [f"{path} is {state.value} on disk (the lock says otherwise)" for path, state in on_disk if state != "ok"]


def _sprite_change(
    sprite_id: str,
    old: Side,
    new: Side,
    picture_old: Callable[[str], Picture | None],
    picture_new: Callable[[str], Picture | None],
    file_state: Any,
) -> SpriteChange | None:
    """How the sprite ``sprite_id`` differs between the sides, or None when it does not."""
    before_entry, after_entry = old.lock.sprites.get(sprite_id), new.lock.sprites.get(sprite_id)
    off = _disk_notes(after_entry, file_state)
    same = before_entry is not None and after_entry is not None and before_entry.to_json() == after_entry.to_json()
    if same and not off:
        return None
    change = SpriteChange(sprite_id, _kind(before_entry, after_entry))
    if before_entry is not None and before_entry.outputs:
        change.old_output = before_entry.outputs[0].path
        change.before = picture_old(change.old_output)
    if after_entry is not None and after_entry.outputs:
        change.new_output = after_entry.outputs[0].path
        change.after = picture_new(change.new_output)
    if before_entry is not None and after_entry is not None:
        change.fields = _field_changes(before_entry, after_entry, old, new, sprite_id)
        change.notes.extend(off)
        change.notes.extend(_change_notes(change, before_entry, after_entry, pixels_checked=not off))
    old_sprite, new_sprite = old.sprite(sprite_id), new.sprite(sprite_id)
    change.frames = (
        frame_count(old_sprite) if old_sprite is not None else 1,
        frame_count(new_sprite) if new_sprite is not None else 1,
    )
    change.layouts = (
        old_sprite.layout if old_sprite is not None else {},
        new_sprite.layout if new_sprite is not None else {},
    )
    return change


def _change_notes(change: SpriteChange, before: LockEntry, after: LockEntry, *, pixels_checked: bool) -> list[str]:
    """Notes on a sprite in both locks: a moved output, a version-only change, pixels that stayed."""
    notes = []
    if change.old_output != change.new_output:
        notes.append(f"output moved: {change.old_output} → {change.new_output}")
    if not change.fields and before.post_key != after.post_key:
        notes.append("generator or post-processing version changed")
    if (
        pixels_checked
        and before.outputs
        and after.outputs
        and before.outputs[0].pixel_hash == after.outputs[0].pixel_hash
    ):
        notes.append("pixels unchanged")
    return notes


def _atlas_change(
    atlas_id: str,
    old: Side,
    new: Side,
    picture_old: Callable[[str], Picture | None],
    picture_new: Callable[[str], Picture | None],
) -> AtlasChange | None:
    """How the atlas ``atlas_id`` differs between the sides, or None when it does not."""
    before, after = old.lock.atlases.get(atlas_id), new.lock.atlases.get(atlas_id)
    if before is not None and after is not None and before.to_json() == after.to_json():
        return None
    change = AtlasChange(atlas_id, _kind(before, after))
    if before is not None and before.outputs:
        change.before = picture_old(before.outputs[0].path)
        change.old_rects = _rects(old, atlas_id, before)
    if after is not None and after.outputs:
        change.after = picture_new(after.outputs[0].path)
        change.new_rects = _rects(new, atlas_id, after)
    if before is not None and after is not None:
        _compare_members(change, before, after, old, new)
    return change


def _compare_members(change: AtlasChange, before: AtlasEntry, after: AtlasEntry, old: Side, new: Side) -> None:
    """Fill in the members of an atlas in both locks that were added, removed, redrawn or moved."""
    change.added = [m for m in after.members if m not in before.members]
    change.redrawn = [
        m
        for m in after.members
        if m in before.members
        and (old_member := old.lock.sprites.get(m)) is not None
        and (new_member := new.lock.sprites.get(m)) is not None
        and old_member.post_key != new_member.post_key
    ]
    change.removed = [m for m in before.members if m not in after.members]
    old_at = {name: tuple(rect) for name, *rect in change.old_rects}
    new_at = {name: tuple(rect) for name, *rect in change.new_rects}
    members = set(before.members) | set(after.members)
    change.moved = sorted(
        {_member_of(name, members) for name in set(old_at) & set(new_at) if old_at[name] != new_at[name]}
        - set(change.added)
    )


def _member_of(frame: str, members: set[str]) -> str:
    """The sprite a packed frame belongs to (``id`` for a still sprite, ``id/3`` for an animation frame)."""
    return frame if frame in members else frame.rpartition("/")[0]


def _rects(side: Side, atlas_id: str, entry: AtlasEntry) -> list[tuple[str, int, int, int, int]]:
    """Where each frame of an atlas lies on one side, packed from that side's spec and member sizes."""
    atlas = side.atlas(atlas_id)
    if atlas is None or tuple(atlas.members) != tuple(entry.members):
        return []
    members: dict[str, tuple[int, int, int, Mapping[str, Any]]] = {}
    for member in atlas.members:
        sprite_entry, sprite = side.lock.sprites.get(member), side.sprite(member)
        output = sprite_entry.outputs[0] if sprite_entry is not None and sprite_entry.outputs else None
        if output is None or sprite is None or not output.width or not output.height:
            return []
        if not (0 < output.width <= 1 << 16 and 0 < output.height <= 1 << 16):
            return []
        members[member] = (output.width, output.height, frame_count(sprite), sprite.layout)
    return atlas_rects(atlas, members) or []


# ---------------------------------------------------------------------------------------------- HTML


def _pair(before: Picture | None, after: Picture | None, box: int) -> tuple[str, str, int]:
    sizes = [(p.width, p.height) for p in (before, after) if p is not None]
    scale = page.scale_for(max((w for w, _ in sizes), default=1), max((h for _, h in sizes), default=1), box)
    return _side_html(before, scale, "before"), _side_html(after, scale, "after"), scale


def _side_html(picture: Picture | None, scale: int, label: str) -> str:
    if picture is None:
        return f'<figure><span class="note">—</span><figcaption>{label}: none</figcaption></figure>'
    return (
        f"<figure>{page.image(picture.url, picture.width, picture.height, scale, label)}"
        f"<figcaption>{label} {picture.width}×{picture.height} ×{scale}</figcaption></figure>"
    )


def _animations(change: SpriteChange) -> str:
    """Before and after animations (same scale, per-side frame layout) when a side is a sheet."""
    sides = []
    for label, picture, count, layout in (
        ("before", change.before, change.frames[0], change.layouts[0]),
        ("after", change.after, change.frames[1], change.layouts[1]),
    ):
        if picture is not None and count > 1:
            frames = sheet_frames(picture.width, picture.height, count, layout)
            sides.append((label, picture, frames))
    if not sides:
        return ""
    cell = max(max(frames[0][2], frames[0][3]) for _label, _picture, frames in sides)
    scale = page.scale_for(cell, cell)
    return '<span class="note">→</span>'.join(
        f"<figure>{page.animation(p.url, (p.width, p.height), frames, DIFF_FPS, scale, label)}"
        f"<figcaption>{label}: {len(frames)} frames @ {DIFF_FPS:g} fps</figcaption></figure>"
        for label, p, frames in sides
    )


def _sprite_card(change: SpriteChange) -> str:
    animated = max(change.frames) > 1
    before, after, _scale = _pair(change.before, change.after, page.THUMB * 2 if animated else page.THUMB)
    playing = _animations(change)
    wide = ' style="grid-column:span 2"' if animated else ""
    rows = [(f.label, f"<del>{escape(f.old)}</del><br><ins>{escape(f.new)}</ins>") for f in change.fields]
    if change.change != "changed" and (change.old_output or change.new_output):
        rows.append(("output", escape(change.new_output or change.old_output or "")))
    rows.extend(("note", escape(note)) for note in change.notes)
    search = " ".join([change.id, change.change, *(f.label for f in change.fields)]).lower()
    return (
        f'<section class="card"{wide} data-search="{escape(search)}">'
        f'<h2><span class="badge {change.change}">{change.change}</span>{escape(change.id)}</h2>'
        f"<div class=row>{before}<span class=note>→</span>{after}</div>"
        f"{f'<div class=row>{playing}</div>' if playing else ''}{page.info_table(rows)}</section>\n"
    )


def _atlas_figure(
    picture: Picture | None, rects: list[tuple[str, int, int, int, int]], hot: set[str], scale: int, label: str
) -> str:
    if picture is None:
        return f'<figure><span class="note">—</span><figcaption>{label}: none</figcaption></figure>'
    shapes = [(name, x, y, w, h, (name.rpartition("/")[0] or name) in hot or name in hot) for name, x, y, w, h in rects]
    return (
        f"<figure>{page.outlined(picture.url, (picture.width, picture.height), shapes, scale, label)}"
        f"<figcaption>{label} {picture.width}×{picture.height} ×{scale}</figcaption></figure>"
    )


def _atlas_card(change: AtlasChange) -> str:
    sizes = [(p.width, p.height) for p in (change.before, change.after) if p is not None]
    scale = page.scale_for(max((w for w, _ in sizes), default=1), max((h for _, h in sizes), default=1), page.THUMB * 3)
    hot = set(change.moved) | set(change.added) | set(change.removed)
    rows = []
    if change.moved:
        rows.append(("moved", escape(", ".join(change.moved))))
    if change.added:
        rows.append(("added", escape(", ".join(change.added))))
    if change.removed:
        rows.append(("removed", escape(", ".join(change.removed))))
    if change.redrawn:
        rows.append(("redrawn", escape(", ".join(change.redrawn))))
    if change.change == "changed" and not hot and not change.redrawn:
        rows.append(("note", "no member moved or changed (settings or data changed)"))
    search = " ".join([change.id, "atlas", change.change, *change.moved]).lower()
    before = _atlas_figure(change.before, change.old_rects, hot, scale, "before")
    after = _atlas_figure(change.after, change.new_rects, hot, scale, "after")
    return (
        f'<section class="card" style="grid-column:1/-1" data-search="{escape(search)}"><h2>'
        f'<span class="badge {change.change}">{change.change}</span><span class="tag">atlas</span>'
        f"{escape(change.id)}</h2><div class=row>{before}<span class=note>→</span>{after}</div>"
        f"{page.info_table(rows)}</section>\n"
    )


def render(result: DiffResult) -> str:
    """The diff page."""
    cards = [_sprite_card(change) for change in result.sprites] + [_atlas_card(change) for change in result.atlases]
    if not cards:
        cards = [
            '<section class="card"><h2>no changes</h2><p class=note>the asset tree and the lock match '
            f"{escape(result.rev)}</p></section>"
        ]
    notes = "".join(f'<p class="note">{escape(note)}</p>' for note in result.notes)
    meta = (
        f"{len(result.sprites)} sprite(s), {len(result.atlases)} atlas(es) changed since "
        f'{escape(result.rev)} ({escape(result.commit[:12])}) · <a href="diff.png" style="color:inherit">diff.png</a>'
    )
    return page.page("pixelbuild diff", meta, notes + "".join(cards), search="filter by id or field")


# ------------------------------------------------------------------------------------------- command


def run_diff(paths: ProjectPaths, rev: str, folder: Path) -> DiffResult:
    """Compare the working tree's lock and assets with ``rev``; write the page, diff.png; return the result."""
    from pixelbuild.fsutil import atomic_write_bytes
    from pixelbuild.project import open_session, read_current_lock
    from pixelbuild.review.contact import contact_sheet

    started = time.perf_counter()
    notes: list[str] = []
    new_lock = read_current_lock(paths)
    session = open_session(paths)  # the working tree's resolution comes from the spec cache
    new_resolved = session.resolved
    new_output = new_resolved.project.output
    new = Side(new_lock, new_resolved, new_output)
    exporter = Exporter(folder)
    with Revision(paths.project_dir, rev) as revision:
        old = _old_side(revision, paths, new_output, notes)
        _valid_lock(old.lock)
        old_root = old.output.rstrip("/")
        new_root = paths.project_dir / new_output

        def read_old(relative: str) -> bytes | None:
            return revision.read(f"{old_root}/{relative}", MAX_FILE_BYTES) if safe_relative(relative) else None

        def read_new(relative: str) -> bytes | None:
            target = inside(new_root, relative)
            return read_regular(target) if target is not None else None

        from pixelbuild.project import compare_output

        hashes = session.hashes

        def file_state(record: Any) -> Any:
            target = inside(new_root, record.path)
            if target is None:
                return FileState.MISSING
            return compare_output(target, hashes.hash(target), record)

        sprites, atlases = compare(old, new, read_old, read_new, exporter, file_state)
        hashes.save()
        commit = revision.commit
    sheet = folder / "diff.png"
    result = DiffResult(rev, commit, sprites, atlases, notes, folder / "index.html", sheet, 0, 0.0)
    png = contact_sheet(result)
    atomic_write_bytes(sheet, png)
    result.contact_bytes = len(png)
    atomic_write_bytes(result.index, render(result).encode("utf-8"))
    exporter.prune(("img",))
    result.seconds = time.perf_counter() - started
    return result
