"""The lock spliced per changed entry: byte-identical to a full render, whatever the edits."""

from __future__ import annotations

import json
import random
import re

import pytest

from pixelbuild.lock import AtlasEntry, Lock, LockEntry, LockFormatError, LockText, OutputRecord, render_lock

#: Ids that stress the block layout: JSON escapes, non-ASCII, text that looks like the layout itself.
_AWKWARD = ['q"uote', "back\\slash", "ü/ñ", "line\u2028sep", 'fake": {', "a/b/c", "emoji🙂", "Z", "_", "~"]
_SAFE = re.compile(r'["\\\u2028]')


def _entry(rng: random.Random, sprite_id: str) -> LockEntry:
    seed = rng.randrange(1 << 32)
    frames = rng.randint(1, 3)
    backend = {"name": "placeholder", "version": "1", "models": [], "note": '\n    "x": {\n    }'}
    pixels = rng.random() < 0.8
    return LockEntry(
        generations=tuple((f"{rng.getrandbits(128):032x}", seed + i) for i in range(frames)),
        post_key=f"{rng.getrandbits(128):032x}",
        backend=backend,
        fields={"prompt": f"{rng.getrandbits(64):016x}", "seed": f"{rng.getrandbits(64):016x}"},
        outputs=(
            OutputRecord(
                _SAFE.sub("_", sprite_id) + ".png",
                f"{rng.getrandbits(128):032x}",
                f"{rng.getrandbits(128):032x}" if pixels else None,
                16 if pixels else None,
                16 if pixels else None,
            ),
        ),
    )


def _atlas(rng: random.Random, members: list[str]) -> AtlasEntry:
    return AtlasEntry(
        f"{rng.getrandbits(128):032x}",
        tuple(rng.sample(members, min(len(members), 3))),
        (OutputRecord("atlas.png", f"{rng.getrandbits(128):032x}", f"{rng.getrandbits(128):032x}", 64, 64),),
    )


def _new_id(rng: random.Random) -> str:
    return rng.choice([*_AWKWARD, f"set{rng.randrange(100):02d}/s{rng.randrange(10_000)}", f"s{rng.randrange(50)}"])


@pytest.mark.parametrize("seed", range(40))
def test_splice_equals_a_full_render_over_random_edits(seed: int) -> None:
    rng = random.Random(seed)
    sprites = {_new_id(rng): None for _ in range(rng.choice([0, 1, 2, 5, 30]))}
    lock = Lock({sprite_id: _entry(rng, sprite_id) for sprite_id in sprites})
    if rng.random() < 0.5 and lock.sprites:
        lock.atlases = {f"atlas{i}": _atlas(rng, list(lock.sprites)) for i in range(rng.randint(1, 3))}
    for _round in range(4):
        raw = render_lock(lock)
        text = LockText.index(raw)
        assert text is not None
        probe = rng.choice([*lock.sprites, _new_id(rng)])
        assert text.entry(probe) == lock.sprites.get(probe)
        assert text.contains(probe) == (probe in lock.sprites)
        changes: dict[str, LockEntry | None] = {}
        for _edit in range(rng.choice([1, 2, 5])):
            kind = rng.choice(["edit", "add", "remove", "rename"])
            existing = sorted(set(lock.sprites) - set(changes))
            if kind in ("edit", "remove", "rename") and existing:
                victim = rng.choice(existing)
                changes[victim] = None if kind != "edit" else _entry(rng, victim)
                if kind == "rename":
                    renamed = victim + rng.choice(["x", "", "/2", " b"])
                    changes[renamed] = _entry(rng, renamed)
            else:
                added = _new_id(rng)
                changes[added] = _entry(rng, added)
        atlas_changes: dict[str, AtlasEntry | None] = {}
        if rng.random() < 0.3:
            survivors = [s for s in {**lock.sprites, **changes} if changes.get(s, lock.sprites.get(s)) is not None]
            atlas_id = rng.choice(["atlas0", "atlas1", "atlas9"])
            atlas_changes[atlas_id] = _atlas(rng, survivors) if survivors and rng.random() < 0.6 else None
        new = Lock(dict(lock.sprites), dict(lock.atlases))
        for sprite_id, change in changes.items():
            if change is None:
                new.sprites.pop(sprite_id, None)
            else:
                new.sprites[sprite_id] = change
        for atlas_id, atlas in atlas_changes.items():
            if atlas is None:
                new.atlases.pop(atlas_id, None)
            else:
                new.atlases[atlas_id] = atlas
        assert text.splice(changes, atlas_changes) == render_lock(new)
        lock = new


def test_entries_read_through_the_index_are_the_parsed_ones() -> None:
    rng = random.Random(7)
    lock = Lock({sprite_id: _entry(rng, sprite_id) for sprite_id in [*_AWKWARD, "plain"]})
    lock.atlases = {"atlas": _atlas(rng, list(lock.sprites))}
    text = LockText.index(render_lock(lock))
    assert text is not None
    for sprite_id, entry in lock.sprites.items():
        assert text.entry(sprite_id) == entry
    assert text.entry("absent") is None
    assert text.atlas("atlas") == lock.atlases["atlas"]
    assert text.ids("atlases") == ["atlas"] and text.ids("sprites") == sorted(lock.sprites)
    assert text.atlas("plain") is None


def test_the_search_finds_every_entry_of_a_large_lock_and_nothing_else() -> None:
    rng = random.Random(11)
    ids = sorted({_new_id(rng) + "x" * rng.randrange(40) for _ in range(600)} | set(_AWKWARD))
    present = ids[::2]
    lock = Lock({sprite_id: _entry(rng, sprite_id) for sprite_id in present})
    text = LockText.index(render_lock(lock))
    assert text is not None
    for sprite_id in ids:
        assert text.entry(sprite_id) == lock.sprites.get(sprite_id)
    for probe in ["", " ", "\uffff", ids[0][:-1], ids[-1] + "~"]:
        assert text.contains(probe) == (probe in lock.sprites)


def test_an_entry_read_through_the_index_is_still_validated() -> None:
    rng = random.Random(3)
    lock = Lock({"a": _entry(rng, "a"), "b": _entry(rng, "b")})
    raw = render_lock(lock)
    escaping = raw.replace(b'"path": "a.png"', b'"path": "../../etc/passwd"')
    assert escaping != raw
    text = LockText.index(escaping)
    assert text is not None
    with pytest.raises(LockFormatError):
        text.entry("a")
    assert text.entry("b") == lock.sprites["b"]


@pytest.mark.parametrize(
    "damage",
    [
        lambda raw: raw.replace(b"\n    ", b"\n   "),  # re-indented
        lambda raw: json.dumps(json.loads(raw), indent=2).encode(),  # another writer's layout
        lambda raw: raw[:-1],  # cut short
        lambda raw: raw + b"\n",
        lambda raw: raw.replace(b'"version": 1', b'"version": 2'),
        lambda raw: raw.replace(b"\n  }\n}", b'\n  },\n  "extra": {}\n}'),
    ],
)
def test_bytes_not_laid_out_by_render_lock_are_not_indexed(damage: object) -> None:
    rng = random.Random(5)
    raw = render_lock(Lock({"a": _entry(rng, "a"), "b": _entry(rng, "b")}))
    assert LockText.index(raw) is not None
    assert callable(damage)
    assert LockText.index(damage(raw)) is None


def test_an_empty_lock_splices() -> None:
    rng = random.Random(1)
    text = LockText.index(render_lock(Lock()))
    assert text is not None
    assert text.splice({}, {}) == render_lock(Lock())
    added = _entry(rng, "x")
    assert text.splice({"x": added}, {}) == render_lock(Lock({"x": added}))


@pytest.mark.parametrize("bad_id", ["", "tab\there", "esc\x1b", "del\x7f", "x" * 1025])
def test_a_lock_with_a_bad_id_is_refused_or_skips_it(bad_id: str) -> None:
    """The fast reader checks every id in one search; one bad id among good ones still fails the lock."""
    from pixelbuild.errors import ManifestError
    from pixelbuild.lock import parse_lock

    rng = random.Random(7)
    good = {f"s{index}": _entry(rng, f"s{index}") for index in range(5)}
    raw = render_lock(Lock({**good, bad_id: _entry(rng, "bad")}))
    with pytest.raises(ManifestError, match="the id is not a valid id"):
        parse_lock(raw, "pixelbuild.lock")
    assert parse_lock(raw, "pixelbuild.lock", skip_bad_entries=True).sprites.keys() == good.keys()
