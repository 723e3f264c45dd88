"""``pixelbuild gallery``: a static page of every sprite, self-contained, with hostile inputs refused."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

from PIL import Image

from tests.conftest import Result
from tests.review.helpers import built, edit, write_project


def images_of(html: str) -> list[str]:
    return re.findall(r'<img[^>]* src="([^"]+)"', html)


def test_gallery_shows_every_sprite_with_its_spec(cli: Callable[..., Result], tmp_path: Path) -> None:
    root = write_project(tmp_path / "p")
    built(root)
    result = cli("gallery", "-C", root)
    assert result.code == 0, result.err
    index = root / ".pixelbuild/gallery/index.html"
    assert result.out.splitlines()[0] == str(index)
    html = index.read_text()
    for sprite_id in ("characters/hero", "monsters/slime", "items/coin", "monsters/bat"):
        assert f'id="{sprite_id}"' in html
    assert "blue knight" in html and "gold coin" in html
    assert "resize(size=[16, 16], filter=nearest) → remove_background(mode=flood" in html
    sources = images_of(html)
    assert sources and all(not s.startswith(("/", "http", "file:")) and ".." not in s for s in sources)
    for source in sources:
        assert Image.open(index.parent / source).size[0] > 0  # every image lies beside the page
    assert 'loading="lazy"' in html and "image-rendering:pixelated" in html
    # The final sprite is byte-identical to the asset; the raw generation is the cached one.
    hero = (root / "assets/characters/hero.png").read_bytes()
    assert any((index.parent / s).read_bytes() == hero for s in sources)
    assert sum(1 for s in sources if s.startswith("raw/")) >= 4
    # The animation plays at the atlas fps, frames from the strip layout.
    bat = re.search(r'class="checker anim"[^>]*data-frames="([^"]+)" data-fps="([^"]+)"', html)
    assert bat is not None and bat.group(2) == "12"
    offsets = [tuple(map(int, pair.split(","))) for pair in bat.group(1).split(";")]
    assert len(offsets) == 3 and offsets[0] == (0, 0) and offsets[1][1] == 0 and offsets[1][0] > 0
    # The atlas has one outline per packed frame (3 bat frames + 3 stills), as the packer placed them.
    frames = json.loads((root / "assets/atlases/sprites.json").read_text())["frames"]
    rects = re.findall(r'<rect x="([\d.]+)" y="([\d.]+)"[^>]*><title>([^<]+)</title>', html)
    assert len(rects) == len(frames) == 6
    for x, y, name in rects:
        assert (float(x) - 0.5, float(y) - 0.5) == (frames[name]["frame"]["x"], frames[name]["frame"]["y"])
    # Search data: id, prompt and tags.
    assert 'data-search="monsters/slime green slime monsters atlas:sprites"' in html


def test_gallery_marks_unbuilt_and_stale_sprites(cli: Callable[..., Result], tmp_path: Path) -> None:
    root = write_project(tmp_path / "p")
    built(root)
    edit(root, "prompt: gold coin", "prompt: silver coin")
    edit(root, "  - id: monsters/bat", "  - id: items/gem\n    prompt: red gem\n  - id: monsters/bat")
    out = tmp_path / "elsewhere"
    result = cli("gallery", "-C", root, "-o", out, "--json")
    assert result.code == 0, result.err
    assert result.json["not_built"] == 1 and result.json["index"] == str(out / "index.html")
    html = (out / "index.html").read_text()
    gem = html[html.index('id="items/gem"') :]
    assert "not built" in gem[: gem.index("</section>")]
    coin = html[html.index('id="items/coin"') :]
    assert "out of date" in coin[: coin.index("</section>")]


def test_gallery_rerun_prunes_old_images(cli: Callable[..., Result], tmp_path: Path) -> None:
    root = write_project(tmp_path / "p")
    built(root)
    assert cli("gallery", "-C", root).code == 0
    edit(root, "prompt: gold coin", "prompt: silver coin")
    built(root)
    assert cli("gallery", "-C", root).code == 0
    folder = root / ".pixelbuild/gallery"
    used = set(images_of((folder / "index.html").read_text()))
    on_disk = {f"{p.parent.name}/{p.name}" for p in folder.glob("*/*.png")}
    assert on_disk == used


def test_gallery_never_follows_symlinks_or_crafted_cache_records(cli: Callable[..., Result], tmp_path: Path) -> None:
    root = write_project(tmp_path / "p")
    built(root)
    secret = tmp_path / "secret.png"
    secret.write_bytes((root / "assets/items/coin.png").read_bytes() + b"SECRET")
    coin = root / "assets/items/coin.png"
    coin.unlink()
    coin.symlink_to(secret)
    # A cache record pointing its blob outside the cache.
    for record_path in (root / ".pixelbuild/cache/actions/gen").glob("*/*.json"):
        record = json.loads(record_path.read_text())
        for image in record["images"]:
            image["blob"] = "../../../secret.png"  # blobs/.. is the cache, then up to tmp_path
        record_path.write_text(json.dumps(record))
    result = cli("gallery", "-C", root)
    assert result.code == 0, result.err
    folder = root / ".pixelbuild/gallery"
    assert all(b"SECRET" not in p.read_bytes() for p in folder.glob("*/*.png"))
    assert not (folder / "raw").exists() or not any((folder / "raw").iterdir())
    html = (folder / "index.html").read_text()
    assert all(".." not in source for source in images_of(html)) and "secret" not in html
    assert sorted(p.name for p in tmp_path.rglob("secret*")) == ["secret.png"]
