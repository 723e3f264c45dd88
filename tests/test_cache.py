"""The content-addressed cache: what gc keeps and what it prunes."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pixelbuild.local.store import Identity, Store
from tests.conftest import Result, build_json


def cache_files(project: Path) -> int:
    return sum(1 for p in (project / ".pixelbuild/cache").rglob("*") if p.is_file())


def test_gc_prunes_what_the_lock_and_manifest_no_longer_use(
    cli: Callable[..., Result], make_project: Callable[..., Path]
) -> None:
    project = make_project()
    build_json(cli, project)
    manifest = project / "pixelbuild.yaml"
    manifest.write_text(manifest.read_text().replace("blue knight", "red knight"))
    build_json(cli, project)
    before = cache_files(project)
    result = cli("gc", "-C", project, "--json")
    assert result.code == 0
    removed = result.json
    # the old knight: one raw generation and one post-processed result, each an action and a blob
    assert (removed["actions"], removed["blobs"]) == (2, 2)
    assert cache_files(project) == before - 4
    # what is in use survives: a lost output is restored without the generator
    (project / "assets/slime.png").unlink()
    assert build_json(cli, project)["generator_calls"] == 0
    # and the reverted edit now needs the generator again
    manifest.write_text(manifest.read_text().replace("red knight", "blue knight"))
    assert build_json(cli, project)["generator_calls"] == 1


def test_gc_keep_days_keeps_recent_entries(cli: Callable[..., Result], make_project: Callable[..., Path]) -> None:
    project = make_project()
    build_json(cli, project)
    manifest = project / "pixelbuild.yaml"
    manifest.write_text(manifest.read_text().replace("blue knight", "red knight"))
    build_json(cli, project)
    assert cli("gc", "-C", project, "--keep-days", "1", "--json").json["actions"] == 0
    manifest.write_text(manifest.read_text().replace("red knight", "blue knight"))
    assert build_json(cli, project)["generator_calls"] == 0


def test_damaged_blob_is_treated_as_missing(tmp_path: Path) -> None:
    store = Store(tmp_path)
    digest = store.put_blob(b"pixels")
    assert store.read_blob(digest) == b"pixels"
    (tmp_path / "blobs" / digest[:2] / digest).write_bytes(b"pixelz")
    assert store.read_blob(digest) is None


def _lock_entry(project: Path, sprite_id: str) -> dict[str, Any]:
    entry: dict[str, Any] = json.loads((project / "pixelbuild.lock").read_text())["sprites"][sprite_id]
    return entry


def _action(project: Path, kind: str, key: str) -> Path:
    return project / ".pixelbuild/cache/actions" / kind / key[:2] / f"{key}.json"


def _blob(project: Path, kind: str, key: str, index: int = 0) -> Path:
    digest = json.loads(_action(project, kind, key).read_text())["images"][index]["blob"]
    return project / ".pixelbuild/cache/blobs" / digest[:2] / digest


def _warnings(result: Result) -> list[str]:
    return [line for line in result.err.splitlines() if "warning" in line]


def test_missing_post_blob_is_post_processed_again(
    cli: Callable[..., Result], make_project: Callable[..., Path]
) -> None:
    project = make_project()
    build_json(cli, project)
    (project / "assets/slime.png").unlink()  # the plan restores it from the cache...
    _blob(project, "post", _lock_entry(project, "slime")["post_key"]).unlink()  # ...which lost the file
    result = cli("build", "-C", project, "--json")
    assert result.code == 0, result.out + result.err
    report = result.json
    assert (report["post_processed"], report["generator_calls"], report["failures"]) == (1, 0, {})
    assert len(_warnings(result)) == 1 and "slime" in _warnings(result)[0]
    assert report["warnings"] == [_warnings(result)[0].removeprefix("pixelbuild: warning: ")]
    from tests.test_json_schemas import _errors

    assert _errors("build", report) == []
    assert cli("check", "-C", project).code == 0
    assert build_json(cli, project)["noop"] is True


def test_damaged_raw_generation_is_generated_again(
    cli: Callable[..., Result], make_project: Callable[..., Path]
) -> None:
    project = make_project()
    build_json(cli, project)
    entry = _lock_entry(project, "slime")
    gen_key = entry["generations"][0]["key"]
    (project / "assets/slime.png").unlink()
    _action(project, "post", entry["post_key"]).unlink()  # the plan post-processes the raw generation...
    raw = _blob(project, "gen", gen_key)
    good = raw.read_bytes()
    raw.write_bytes(b"\0" * len(good))  # ...whose file is damaged
    # --frozen may not call the generator: it says why, once.
    frozen = cli("build", "-C", project, "--frozen")
    assert frozen.code == 1 and "--frozen" in frozen.out and "slime" in frozen.out
    result = cli("build", "-C", project, "--json")
    assert result.code == 0, result.out + result.err
    assert (result.json["generator_calls"], result.json["failures"]) == (1, {})
    assert len(_warnings(result)) <= 1  # the frozen run dropped the entry already
    assert raw.read_bytes() == good  # the damaged file was replaced, not kept
    assert cli("check", "-C", project).code == 0


def test_unreadable_action_record_is_a_cache_miss(
    cli: Callable[..., Result], make_project: Callable[..., Path]
) -> None:
    project = make_project()
    build_json(cli, project)
    (project / "assets/hero.png").unlink()
    _action(project, "post", _lock_entry(project, "hero")["post_key"]).write_text('{"images": [{"blob": "../x"}]')
    result = cli("build", "-C", project, "--json")
    assert result.code == 0, result.out + result.err
    assert (result.json["post_processed"], result.json["generator_calls"]) == (1, 0)
    assert len(_warnings(result)) == 1


def test_damaged_atlas_in_the_cache_is_packed_again(
    cli: Callable[..., Result], make_project: Callable[..., Path]
) -> None:
    manifest = (
        "version: 1\ndefaults: {size: 32, post: [{resize: {size: 8}}]}\n"
        "sprites:\n  - {id: a, prompt: knight}\n  - {id: b, prompt: slime}\n"
        "atlases:\n  - {id: all, sprites: [a, b]}\n"
    )
    project = make_project(manifest)
    build_json(cli, project)
    pack_key = json.loads((project / "pixelbuild.lock").read_text())["atlases"]["all"]["pack_key"]
    (project / "assets/atlases/all.png").unlink()
    blob = _blob(project, "pack", pack_key)
    blob.write_bytes(b"garbage")
    result = cli("build", "-C", project, "--json")
    assert result.code == 0, result.out + result.err
    assert (result.json["packed"], result.json["failures"]) == (1, {})
    assert len(_warnings(result)) == 1 and "atlas all" in _warnings(result)[0]
    assert cli("check", "-C", project).code == 0


def test_gc_takes_the_build_lock(cli: Callable[..., Result], make_project: Callable[..., Path]) -> None:
    import signal

    from tests.test_interrupt import MANIFEST, start_slow_build, wait_for_journal_lines

    project = make_project(MANIFEST)
    build = start_slow_build(project)
    try:
        wait_for_journal_lines(project, 1, build)
        before = cache_files(project)
        result = cli("gc", "-C", project)
        assert result.code != 0 and "cannot gc" in result.err and "build.lock" in result.err, result
        assert cache_files(project) >= before  # nothing was pruned under the running build
    finally:
        build.send_signal(signal.SIGINT)
        build.communicate(timeout=30)
    assert cli("gc", "-C", project).code == 0


def test_typed_records_come_back_as_written_and_anything_else_is_a_miss(tmp_path: Path) -> None:
    from pixelbuild.local.store import (
        FinishedImage,
        GenerationRecord,
        PackedFile,
        PackRecord,
        PostRecord,
        RawImage,
        kind_of,
        record_from_json,
        record_to_json,
    )

    store = Store(tmp_path)
    blob = store.put_blob(b"frame")
    key = "ab" * 16
    identity: Identity = {"name": "placeholder", "version": "1", "models": ["m.safetensors"]}
    written = [
        GenerationRecord([RawImage(blob, 8, 8)], identity, seed=7),
        PostRecord([FinishedImage(blob, "cd" * 16, 8, 8)], identity),
        PackRecord([PackedFile(blob, "cd" * 16, 8, 8), PackedFile(blob)]),
    ]
    for record in written:
        store.put_action(key, record)
    assert [store.get_action(kind, key) for kind in ("gen", "post", "pack")] == written
    assert [record_from_json(kind_of(record), record_to_json(record)) for record in written] == written
    assert json.loads((tmp_path / "actions/pack" / key[:2] / f"{key}.json").read_bytes()) == {
        "images": [{"blob": blob, "pixel_hash": "cd" * 16, "width": 8, "height": 8}, {"blob": blob}]
    }
    image = {"blob": blob, "pixel_hash": "cd" * 16, "width": 8, "height": 8}
    crafted = [
        {"images": [{**image, "blob": "../../../../etc/passwd"}], "identity": {}},  # a blob name is a path
        {"images": [{**image, "width": True}], "identity": {}},  # a bool is not a size
        {"images": [{**image, "width": 0}], "identity": {}},
        {"images": [{**image, "height": 1 << 21}], "identity": {}},
        {"images": [], "identity": {}},
        {"images": [image] * 4097, "identity": {}},
        {"images": [{k: v for k, v in image.items() if k != "pixel_hash"}], "identity": {}},  # post needs it
        {"images": [image], "identity": []},
        {"images": [image], "identity": {"nested": {"deep": 1}}},
        {"images": [image]},
        [image],
    ]
    path = tmp_path / "actions/post" / key[:2] / f"{key}.json"
    for record in crafted:
        path.write_text(json.dumps(record))
        assert store.get_action("post", key) is None, record
        assert record_from_json("post", record) is None, record  # as a remote cache's document embeds it
    path.write_bytes(b'{"images": [' + b" " * (1 << 20) + b"]}")  # over the size bound
    assert store.get_action("post", key) is None
    path.write_text(json.dumps({"images": [{**image, "blob": "ef" * 16}], "identity": {}}))  # a missing blob
    assert store.get_action("post", key) is None
    path.write_text(json.dumps({"images": [image], "identity": {}}))
    assert store.get_action("post", key) == PostRecord([FinishedImage(blob, "cd" * 16, 8, 8)], {})


def test_gc_keeps_what_live_actions_names(tmp_path: Path) -> None:
    from pixelbuild.keys import SpriteKeys
    from pixelbuild.local.store import GenerationRecord, PostRecord, RawImage, live_actions
    from pixelbuild.lock import Lock

    store = Store(tmp_path)
    blobs = [store.put_blob(bytes([n])) for n in range(3)]
    keys = [f"{n:02x}" * 16 for n in range(3)]
    for key, blob in zip(keys, blobs, strict=True):
        store.put_action(key, GenerationRecord([RawImage(blob)], {}))
    store.put_action(keys[0], PostRecord([], {}))  # not a valid record: gc drops it as garbage
    live = live_actions(Lock(), [SpriteKeys((keys[1],), keys[0], {})])
    assert live == {("gen", keys[1]), ("post", keys[0])}
    report = store.gc(live)
    assert (report.actions, report.blobs) == (3, 2)
    assert store.get_action("gen", keys[1]) is not None and store.read_blob(blobs[1]) == bytes([1])
    assert all(store.get_action("gen", key) is None for key in (keys[0], keys[2]))
