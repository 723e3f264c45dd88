"""``pixelbuild eject ID``: hand a generated sprite over to an artist.

The sprite's current output (or, with ``--raw``, its cached raw generation) is copied to a PNG in the
project, and its manifest entry switches to ``source:`` with a located text edit (``yamledit``). Ejecting
the output also sets ``post: []``, since the file is already post-processed; ejecting the raw keeps the
chain. Either way the next build reads the file and writes the very same pixels, with no generator call.
Animations become sheets with a ``frame_size``. A matrix entry, a padded frame layout or anything the new
entry would not reproduce pixel for pixel is refused, and nothing is ever overwritten.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pixelbuild.errors import ManifestError, PixelbuildError, UsageError
from pixelbuild.local.layout import ProjectPaths
from pixelbuild.yamledit import entry_keys, entry_node, manifest_entry, remove_key, set_key, verified

if TYPE_CHECKING:
    from PIL import Image

    from pixelbuild.project import Session
    from pixelbuild.spec import SpriteSpec


@dataclass(frozen=True, slots=True)
class Ejected:
    """What ``eject`` wrote: the image, and the manifest line that now names it."""

    sprite: str
    file: str
    manifest: str
    line: int
    source: Any
    raw: bool

    def text(self) -> str:
        """One line for people."""
        what = "raw generation" if self.raw else "output"
        return f"{self.manifest}:{self.line}: {self.sprite} is now drawn by hand: its {what} is {self.file}"


def _frame_count(sprite: SpriteSpec) -> int:
    return sum(generation.batch_size for generation in sprite.generations)


def _current_output(session: Session, sprite: SpriteSpec) -> bytes:
    """The sprite's output file, if it is what the manifest makes now (else the user must build first)."""
    from pixelbuild.hashing import hash_bytes
    from pixelbuild.lock import read_lock
    from pixelbuild.plan import FileState
    from pixelbuild.project import compare_output

    paths = session.paths
    entry = read_lock(paths.lock, paths.display(paths.lock)).sprites.get(sprite.id)
    keys = session.keys[sprite.id]
    stale = UsageError(f"sprite '{sprite.id}' is not built as the manifest says; run 'pixelbuild build' first")
    if entry is None or entry.post_key != keys.post or [o.path for o in entry.outputs] != [sprite.output]:
        raise stale
    target = session.output_dir / sprite.output
    try:
        data = target.read_bytes()
    except FileNotFoundError:
        raise stale from None
    if compare_output(target, hash_bytes(data), entry.outputs[0]) is not FileState.OK:
        raise stale
    return data


def _raw_frames(session: Session, sprite: SpriteSpec) -> list[Image.Image]:
    """The sprite's raw generations from the cache, every frame in order."""
    from pixelbuild.png import decode_png

    frames: list[Image.Image] = []
    for key in session.keys[sprite.id].generations:
        record = session.store.get_action("gen", key)
        blobs = [session.store.read_blob(item.blob) for item in record.images] if record else [None]
        if any(blob is None for blob in blobs):
            raise UsageError(
                f"sprite '{sprite.id}': its raw generation is not in the local cache; "
                "build it first, or eject its output (without --raw)"
            )
        frames.extend(decode_png(blob) for blob in blobs if blob is not None)
    return frames


#: An image for a source file: its PNG bytes, frame size (None: one frame), frame count and cell count.
Sheet = tuple[bytes, "tuple[int, int] | None", int, int]


def _sheet_of_output(data: bytes, sprite: SpriteSpec) -> Sheet:
    """The output PNG as a source sheet."""
    from pixelbuild.backends.source import cut_frames
    from pixelbuild.png import decode_png
    from pixelbuild.sheets import assemble_frames, layout_frames

    count = _frame_count(sprite)
    if count == 1:
        return data, None, 1, 1
    layout = sprite.layout
    if layout.get("padding"):
        raise UsageError(
            f"sprite '{sprite.id}': its frames are laid out with padding, which a source sheet cannot express; "
            "eject the raw frames with --raw, or remove the padding first"
        )
    sheet = decode_png(data).convert("RGBA")
    grid = layout_frames([(1, 1)] * count, layout["type"], layout.get("columns"), 0)
    width, height = sheet.width // grid.width, sheet.height // grid.height
    unclear = UsageError(
        f"sprite '{sprite.id}': its {count} frames are not equal cells of its {sheet.width}x{sheet.height} sheet; "
        "eject the raw frames with --raw"
    )
    if width * grid.width != sheet.width or height * grid.height != sheet.height:
        raise unclear
    columns = sheet.width // width
    try:
        frames = cut_frames(sheet, (width, height), count)
    except ValueError:
        raise unclear from None
    again = assemble_frames(frames, {"type": layout["type"], "columns": layout.get("columns"), "padding": 0})
    # The build cuts the sheet row-major at `columns` cells a row: it must give back these very frames.
    if again.tobytes() != sheet.tobytes() or columns != grid.width:
        raise unclear
    return data, (width, height), count, grid.width * grid.height


def _sheet_of_raw(frames: list[Image.Image], sprite: SpriteSpec) -> Sheet:
    """The raw frames as one PNG: a single image, or a strip of equal frames."""
    from PIL import Image

    from pixelbuild.backends.source import MAX_PIXELS
    from pixelbuild.png import encode_png

    if len(frames) == 1:
        return encode_png(frames[0], indexed=False), None, 1, 1
    width, height = frames[0].size
    if any(frame.size != (width, height) for frame in frames) or width * height * len(frames) > MAX_PIXELS:
        raise UsageError(f"sprite '{sprite.id}': its raw frames do not fit one sheet; eject its output instead")
    strip = Image.new("RGBA", (width * len(frames), height))
    for index, frame in enumerate(frames):
        strip.paste(frame.convert("RGBA"), (index * width, 0))
    return encode_png(strip, indexed=False), (width, height), len(frames), len(frames)


def _target(paths: ProjectPaths, session: Session, manifest_dir: Path, sprite: SpriteSpec, output: str | None) -> Path:
    """Where the image goes: ``-o PATH``, or ``art/<id>.png`` beside the manifest file of the entry."""
    target = Path(os.path.abspath(output if output else manifest_dir / "art" / f"{sprite.id}.png"))
    project = paths.project_dir.resolve()
    resolved = target.resolve()  # through any symlinked folder on the way
    if not resolved.is_relative_to(project):
        raise UsageError(f"{target}: the hand-drawn sprite must be a file inside the project ({project})")
    for managed in (session.output_dir.resolve(), paths.state_dir.resolve()):
        if resolved.is_relative_to(managed):
            raise UsageError(f"{target}: pixelbuild manages {managed}; put hand-drawn sprites elsewhere")
    if target.suffix.lower() != ".png":
        raise UsageError(f"{target}: a source image is a .png file")
    if target.exists() or target.is_symlink():
        raise UsageError(f"{paths.display(target)} already exists; eject never overwrites a file (use -o PATH)")
    return target


def _write_new(target: Path, data: bytes) -> None:
    """Write ``data`` to ``target`` whole, failing if the file exists (even if it appeared meanwhile)."""
    from pixelbuild.names import TEMP_PREFIX

    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(f"{TEMP_PREFIX}{target.name}")
    temporary.write_bytes(data)
    try:
        os.link(temporary, target)  # atomic, and refuses to replace an existing file
    except FileExistsError:
        raise UsageError(f"{target} already exists; eject never overwrites a file") from None
    finally:
        temporary.unlink(missing_ok=True)


def eject(paths: ProjectPaths, sprite_id: str, output: str | None = None, raw: bool = False) -> Ejected:
    """Copy ``sprite_id``'s output (or raw generation) to a PNG and make its entry ``source:`` that file."""
    from pixelbuild.fsutil import atomic_write_bytes
    from pixelbuild.project import open_session
    from pixelbuild.review.workflow import find_generated_sprite

    session = open_session(paths)
    sprite = find_generated_sprite(session, sprite_id, "eject")
    manifest_file, index = manifest_entry(session, sprite)
    display = manifest_file.display
    original = manifest_file.path.read_bytes()
    text = original.decode("utf-8")
    entry = entry_node(text, index, display)
    if "matrix" in entry_keys(entry):
        raise UsageError(
            f"{display}:{entry.start_mark.line + 1}: sprite '{sprite_id}' is one variant of a matrix entry; "
            "eject works on a plain entry (split the variant out first)"
        )
    if raw:
        data, frame_size, count, cells = _sheet_of_raw(_raw_frames(session, sprite), sprite)
    else:
        data, frame_size, count, cells = _sheet_of_output(_current_output(session, sprite), sprite)
    target = _target(paths, session, manifest_file.path.parent, sprite, output)
    ref = Path(os.path.relpath(target, manifest_file.path.parent)).as_posix()
    source: Any = ref if frame_size is None else {"file": ref, "frame_size": list(frame_size)}
    if frame_size is not None and cells != count:
        source["frames"] = count  # a grid's last row has empty cells
    changes: dict[str, Any] = {"source": source}
    if not raw and sprite.post:
        changes["post"] = []
    removed = [name for name in ("frames",) if name in entry_keys(entry)]
    edited = text
    for name in removed:
        edited = remove_key(edited, index, name, display)
    # A new key goes right under the id (block style) or at the end (flow style): `source` comes first.
    for name, value in changes.items() if entry.flow_style else reversed(changes.items()):
        edited, _line, _changed = set_key(edited, index, name, value, display)
    line = entry_keys(entry_node(edited, index, display))["source"][0].start_mark.line + 1
    problem = ManifestError(
        "could not switch this entry to 'source:' without changing anything else; edit it by hand",
        file=display,
        line=entry.start_mark.line + 1,
        sprite=sprite_id,
    )
    edited = verified(text, edited, index, changes, removed, problem)
    _write_new(target, data)
    try:
        atomic_write_bytes(manifest_file.path, edited.encode("utf-8"))
        open_session(paths)  # the edited manifest must resolve, or everything goes back as it was
    except PixelbuildError:
        atomic_write_bytes(manifest_file.path, original)
        target.unlink(missing_ok=True)
        raise
    return Ejected(sprite_id, paths.display(target), display, line, source, raw)
