"""The atlas packer: no overlaps, gaps kept, deterministic and order-independent, clear errors."""

from __future__ import annotations

import random

import numpy as np
import pytest
from PIL import Image

from pixelbuild.pack import AtlasLayout, PackError, PackItem, layout_from_sheet, pack, render_atlas
from pixelbuild.sheets import layout_frames


def random_items(seed: int, count: int = 40) -> list[PackItem]:
    rng = random.Random(seed)
    return [PackItem(f"sprite_{i:03d}", rng.randint(1, 48), rng.randint(1, 48)) for i in range(count)]


def footprint(layout: AtlasLayout, index: int) -> tuple[int, int, int, int]:
    """An item's rectangle grown by its extrude border plus padding on the right and bottom."""
    p = layout.placements[index]
    e, pad = layout.extrude, layout.padding
    return p.x - e, p.y - e, p.x + p.width + e + pad, p.y + p.height + e + pad


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize(("padding", "extrude", "power_of_two"), [(0, 0, False), (2, 1, False), (1, 0, True)])
def test_no_overlaps_and_everything_inside(seed: int, padding: int, extrude: int, power_of_two: bool) -> None:
    items = random_items(seed)
    layout = pack(items, padding=padding, extrude=extrude, power_of_two=power_of_two)
    assert [p.name for p in layout.placements] == [item.name for item in items]
    occupied = np.zeros((layout.height + padding, layout.width + padding), dtype=np.int32)
    for index, (item, placement) in enumerate(zip(items, layout.placements, strict=True)):
        assert (placement.width, placement.height) == (item.width, item.height)
        x0, y0, x1, y1 = footprint(layout, index)
        assert x0 >= 0 and y0 >= 0
        assert x1 - padding <= layout.width and y1 - padding <= layout.height
        occupied[y0:y1, x0:x1] += 1
    assert occupied.max() == 1


def test_power_of_two_sizes() -> None:
    layout = pack(random_items(7), power_of_two=True)
    assert layout.width & (layout.width - 1) == 0
    assert layout.height & (layout.height - 1) == 0


def test_packing_is_reasonably_dense() -> None:
    items = random_items(8, 80)
    layout = pack(items)
    used = sum(item.width * item.height for item in items)
    assert used / (layout.width * layout.height) > 0.75


def test_deterministic_and_independent_of_input_order() -> None:
    items = random_items(9)
    first = pack(items, padding=1)
    again = pack(list(items), padding=1)
    shuffled = list(items)
    random.Random(1).shuffle(shuffled)
    reordered = pack(shuffled, padding=1)
    assert first == again
    assert (reordered.width, reordered.height) == (first.width, first.height)
    assert {p.name: (p.x, p.y) for p in reordered.placements} == {p.name: (p.x, p.y) for p in first.placements}


def test_an_item_larger_than_max_size_is_named() -> None:
    with pytest.raises(PackError, match="'hero' \\(40x20, with extrude 42x22\\) is larger than max_size 32x32"):
        pack([PackItem("coin", 8, 8), PackItem("hero", 40, 20)], max_size=32, extrude=1)


def test_items_that_do_not_fit_together() -> None:
    items = [PackItem(f"tile{i}", 16, 16) for i in range(5)]
    with pytest.raises(PackError, match=r"5 atlas items .* do not fit in max_size 32x32"):
        pack(items, max_size=32)
    assert pack(items[:4], max_size=32).width == 32


def test_repeated_names_are_rejected() -> None:
    with pytest.raises(PackError, match="unique; repeated: a"):
        pack([PackItem("a", 1, 1), PackItem("a", 2, 2)])


def test_empty_items_are_rejected() -> None:
    with pytest.raises(PackError, match="has no pixels"):
        pack([PackItem("a", 0, 3)])


def test_render_places_pixels_and_extrudes_edges() -> None:
    tile = Image.new("RGBA", (2, 2))
    tile.putdata([(255, 0, 0, 255), (0, 255, 0, 255), (0, 0, 255, 255), (255, 255, 0, 255)])
    layout = pack([PackItem("tile", 2, 2)], extrude=1)
    assert (layout.width, layout.height) == (4, 4)
    atlas = np.asarray(render_atlas(layout, {"tile": tile}))
    red, green, blue, yellow = (255, 0, 0, 255), (0, 255, 0, 255), (0, 0, 255, 255), (255, 255, 0, 255)
    expected = [
        [red, red, green, green],
        [red, red, green, green],
        [blue, blue, yellow, yellow],
        [blue, blue, yellow, yellow],
    ]
    assert atlas.tolist() == [[list(px) for px in row] for row in expected]


def test_render_checks_image_sizes() -> None:
    layout = pack([PackItem("a", 2, 2)])
    with pytest.raises(PackError, match="is 3x3, but was packed as 2x2"):
        render_atlas(layout, {"a": Image.new("RGBA", (3, 3))})


def test_trim_information_is_carried_to_placements() -> None:
    layout = pack([PackItem("a", 4, 5, source_width=8, source_height=9, offset_x=2, offset_y=3)])
    placement = layout.placement("a")
    assert placement.trimmed
    assert (placement.source_width, placement.source_height, placement.offset_x, placement.offset_y) == (
        8,
        9,
        2,
        3,
    )
    assert not pack([PackItem("b", 4, 5)]).placement("b").trimmed


def test_layout_from_a_frame_sheet() -> None:
    sheet = layout_frames([(4, 4)] * 3, "grid", columns=2, padding=1)
    layout = layout_from_sheet(sheet, ["walk_0", "walk_1", "walk_2"])
    assert (layout.width, layout.height) == (9, 9)
    assert [(p.name, p.x, p.y) for p in layout.placements] == [
        ("walk_0", 0, 0),
        ("walk_1", 5, 0),
        ("walk_2", 0, 5),
    ]
    with pytest.raises(ValueError, match="3 frames but 2 names"):
        layout_from_sheet(sheet, ["a", "b"])
