"""``diff.png``: one small contact sheet of a diff, to paste into a pull-request comment.

One row per change: its id and kind, then before and after at the same integer scale (nearest
neighbour, never blurred) on a checkerboard. Rows go in two columns past a handful; past ``MAX_ROWS``
the rest is summarised in one line. The sheet is saved as an optimised palette PNG.
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING, Any

from PIL import Image, ImageDraw, ImageFont

from pixelbuild.review.media import MAX_PIXELS, png_size

if TYPE_CHECKING:
    from pixelbuild.review.diff import DiffResult, Picture

CELL = 64  # the box each image is scaled into
LABEL = 250
PAD = 6
ROW = CELL + 2 * PAD
MAX_ROWS = 60
_COLOURS = {"added": (63, 185, 80), "removed": (248, 81, 73), "changed": (210, 153, 34)}
_BG = (23, 24, 29)
_FG = (236, 237, 242)
_MUTED = (163, 168, 184)


def _decode(picture: Picture | None) -> Image.Image | None:
    if picture is None:
        return None
    size = png_size(picture.data)
    if size is None or size[0] * size[1] > MAX_PIXELS:
        return None
    try:
        with Image.open(io.BytesIO(picture.data)) as opened:
            opened.load()
            return opened.convert("RGBA")
    except (OSError, ValueError, Image.DecompressionBombError):
        return None


def _checker(width: int, height: int) -> Image.Image:
    tile = Image.new("RGB", (16, 16), (255, 255, 255))
    draw = ImageDraw.Draw(tile)
    draw.rectangle((0, 0, 7, 7), fill=(200, 200, 200))
    draw.rectangle((8, 8, 15, 15), fill=(200, 200, 200))
    board = Image.new("RGB", (width, height))
    for y in range(0, height, 16):
        for x in range(0, width, 16):
            board.paste(tile, (x, y))
    return board


def _fit(image: Image.Image, scale: float) -> Image.Image:
    width, height = max(1, round(image.width * scale)), max(1, round(image.height * scale))
    return image.resize((width, height), Image.Resampling.NEAREST)


def _pair_scale(images: list[Image.Image]) -> float:
    side = max((max(image.width, image.height) for image in images), default=1)
    # Integer upscales keep pixels square; a large image (an atlas) is shrunk to fit instead.
    return float(CELL // side) if side <= CELL else CELL / side


def _font(size: int) -> Any:
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, OSError):  # Pillow without FreeType: the small bitmap font
        return ImageFont.load_default()


def _what(kind: str, details: list[str]) -> str:
    """``changed: prompt, seed`` (shortened to fit the label column)."""
    text = f"{kind}: {', '.join(details)}" if details else kind
    return text if len(text) <= 36 else text[:35] + "…"


def contact_sheet(result: DiffResult) -> bytes:
    """The PNG bytes of the contact sheet of ``result``."""
    entries: list[tuple[str, str, str, Picture | None, Picture | None]] = [
        (change.change, change.id, _what(change.change, [f.label for f in change.fields]), change.before, change.after)
        for change in result.sprites
    ]
    entries += [
        (
            change.change,
            f"atlas {change.id}",
            _what(change.change, [f"{len(change.moved)} moved"] if change.moved else []),
            change.before,
            change.after,
        )
        for change in result.atlases
    ]
    shown = entries[:MAX_ROWS]
    columns = 1 if len(shown) <= 8 else 2
    rows = max(1, -(-len(shown) // columns))
    column_width = LABEL + 2 * (CELL + PAD) + 3 * PAD
    header = 28
    footer = 20 if len(entries) > len(shown) else 0
    sheet = Image.new("RGB", (columns * column_width, header + rows * ROW + footer), _BG)
    draw = ImageDraw.Draw(sheet)
    title, small = _font(15), _font(12)
    summary = (
        f"pixelbuild diff {result.rev} ({result.commit[:10]}): "
        f"{len(result.sprites)} sprite(s), {len(result.atlases)} atlas(es)"
    )
    draw.text((PAD, 6), summary if entries else f"pixelbuild diff {result.rev}: no changes", fill=_FG, font=title)
    for index, (kind, name, what, before, after) in enumerate(shown):
        column, row = divmod(index, rows)
        x0, y0 = column * column_width, header + row * ROW
        draw.rectangle((x0 + PAD, y0 + PAD, x0 + PAD + 3, y0 + ROW - PAD), fill=_COLOURS.get(kind, _MUTED))
        label = name if len(name) <= 30 else "…" + name[-29:]
        draw.text((x0 + 2 * PAD + 4, y0 + PAD + 10), label, fill=_FG, font=title)
        draw.text((x0 + 2 * PAD + 4, y0 + PAD + 32), what, fill=_COLOURS.get(kind, _MUTED), font=small)
        images = [image for image in (_decode(before), _decode(after)) if image is not None]
        scale = _pair_scale(images)
        for slot, picture in enumerate((before, after)):
            left = x0 + LABEL + PAD + slot * (CELL + PAD)
            image = _decode(picture)
            if image is None:
                draw.rectangle((left, y0 + PAD, left + CELL - 1, y0 + PAD + CELL - 1), outline=(60, 63, 74))
                draw.line((left, y0 + PAD + CELL - 1, left + CELL - 1, y0 + PAD), fill=(60, 63, 74))
                continue
            fitted = _fit(image, scale)
            top = y0 + PAD + (CELL - fitted.height) // 2
            offset = left + (CELL - fitted.width) // 2
            board = _checker(fitted.width, fitted.height)
            board.paste(fitted, (0, 0), fitted)
            sheet.paste(board, (offset, top))
    if footer:
        draw.text(
            (PAD, header + rows * ROW + 2),
            f"… and {len(entries) - len(shown)} more: see index.html",
            fill=_MUTED,
            font=small,
        )
    buffer = io.BytesIO()
    sheet.quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE).save(
        buffer, format="PNG", optimize=True
    )
    return buffer.getvalue()
