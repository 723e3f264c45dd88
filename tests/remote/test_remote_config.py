"""Which remote a command uses, how a bad one is refused, and the transfer progress line."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path

import pytest

from pixelbuild.errors import UsageError
from pixelbuild.local.store import GenerationRecord, RawImage
from pixelbuild.remote.cache import decode_record, encode_record
from pixelbuild.remote.config import (
    DEFAULT_TRANSFERS,
    BadRemote,
    RemoteConfig,
    check_url,
    from_manifest,
    resolve_remote,
)
from pixelbuild.remote.sync import TransferProgress
from tests.conftest import Result

BASE = Path("/work/game")


def test_the_override_order() -> None:
    manifest = RemoteConfig("s3://from-manifest/p", push=False, transfers=4)
    env = {"PIXELBUILD_REMOTE": "s3://from-env/p"}
    assert resolve_remote(None, {}, BASE) is None
    assert resolve_remote(manifest, {}, BASE) == manifest
    assert resolve_remote(manifest, env, BASE) == RemoteConfig("s3://from-env/p", False, 4)
    assert resolve_remote(manifest, env, BASE, cli_url="s3://from-cli") == RemoteConfig("s3://from-cli", False, 4)
    assert resolve_remote(manifest, env, BASE, cli_url="s3://from-cli", disabled=True) is None
    assert resolve_remote(None, env, BASE) == RemoteConfig("s3://from-env/p", True, DEFAULT_TRANSFERS)
    assert resolve_remote(None, {"PIXELBUILD_REMOTE": "  "}, BASE) is None  # set but empty: not set
    assert resolve_remote(None, env, BASE, no_push=True, transfers=2) == RemoteConfig("s3://from-env/p", False, 2)


def test_folders_and_file_urls_become_absolute_paths() -> None:
    assert check_url("cache", BASE) == "/work/game/cache"
    assert check_url("../shared/cache/", BASE) == "/work/shared/cache"
    assert check_url("file:///mnt/art%20cache", BASE) == "/mnt/art cache"
    assert check_url("s3://bucket//a/b/", BASE) == "s3://bucket/a/b"


@pytest.mark.parametrize(
    "url",
    [
        "",
        "s3://",
        "s3://UPPER/p",
        "s3://key:secret@bucket/p",
        "s3://bucket/../p",
        "s3://bucket/p?endpoint=x",
        "s3://bucket/a b",
        "http://example.com/cache",
        "file://otherhost/share",
    ],
)
def test_bad_remotes_are_refused_naming_where(url: str) -> None:
    with pytest.raises(BadRemote):
        check_url(url, BASE)
    with pytest.raises(UsageError, match=r"^PIXELBUILD_REMOTE: "):
        resolve_remote(None, {"PIXELBUILD_REMOTE": url or "s3://"}, BASE)
    with pytest.raises(UsageError, match=r"^--remote: "):
        resolve_remote(None, {}, BASE, cli_url=url)


def test_the_manifest_form() -> None:
    assert from_manifest("s3://art/x", BASE) == RemoteConfig("s3://art/x")
    assert from_manifest({"url": "c", "push": False}, BASE) == RemoteConfig("/work/game/c", False)
    with pytest.raises(BadRemote):
        from_manifest({"url": "c", "transfers": 0}, BASE)


def test_a_bad_remote_in_the_manifest_is_a_located_error(
    cli: Callable[..., Result], make_project: Callable[..., Path]
) -> None:
    root = make_project("version: 1\nproject:\n  remote: {url: s3://b/p, push: maybe}\nsprites: []\n")
    result = cli("build", "-C", root, "--json")
    assert result.code == 2
    assert result.json["error"]["line"] == 3
    root = make_project("version: 1\nproject:\n  remote: s3://Bad_Bucket/p\nsprites: []\n")
    result = cli("build", "-C", root)
    assert result.code == 2 and "pixelbuild.yaml:3:" in result.err
    assert "'s3://Bad_Bucket/p' is not s3://bucket/prefix" in result.err


def test_records_round_trip_and_refuse_a_kind_they_are_not() -> None:
    record = GenerationRecord([RawImage("a" * 32, 4, 4)], {"name": "placeholder"}, seed=3)
    raw = encode_record("gen", record, {"a" * 32: 120})
    assert decode_record("gen", raw) == (record, {"a" * 32: 120})
    assert decode_record("post", raw) is None
    assert decode_record("gen", encode_record("gen", record, {"b" * 32: 120})) is None  # sizes of other blobs
    assert decode_record("gen", encode_record("gen", record, {"a" * 32: 0})) is None
    assert decode_record("gen", b"[" * 100_000) is None
    assert decode_record("gen", b'{"format": 1, "kind": "gen", "record": NaN}') is None


def test_progress_redraws_one_line() -> None:
    stream = io.StringIO()
    progress = TransferProgress("pulled", 3, stream)
    for done in (1, 2, 3):
        progress(done)
    text = stream.getvalue()
    assert text.startswith("\rpulled 1/3") and text.endswith("\rpulled 3/3\n")
    TransferProgress("pulled", 3, None)(1)  # not a terminal: nothing


def test_push_and_pull_documents_match_their_schema(cli: Callable[..., Result], tmp_path: Path) -> None:
    import json

    from jsonschema import Draft202012Validator
    from referencing import Registry, Resource

    from tests.conftest import REPO

    schemas = [json.loads(path.read_text()) for path in sorted((REPO / "schemas").glob("*.schema.json"))]
    registry: Registry = Registry().with_resources((s["$id"], Resource.from_contents(s)) for s in schemas)
    schema = json.loads((REPO / "schemas/transfer.schema.json").read_text())
    validator = Draft202012Validator(schema, registry=registry)
    shared = tmp_path / "shared"
    shared.mkdir()
    root = tmp_path / "a"
    root.mkdir()
    (root / "pixelbuild.yaml").write_text("version: 1\nsprites:\n  - {id: hero, prompt: knight, size: 16}\n")
    assert cli("build", "-C", root, "--no-remote").code == 0
    documents = [
        cli("push", "-C", root, "--remote", str(shared), "--json"),  # ok
        cli("pull", "-C", root, "--remote", str(tmp_path / "absent"), "--json"),  # nothing to do: ok
        cli("push", "-C", root, "--remote", str(tmp_path / "absent"), "--json"),  # failed: exit 1
        cli("push", "-C", root, "--json"),  # no remote: exit 2
    ]
    assert [result.code for result in documents] == [0, 0, 1, 2]
    for result in documents:
        validator.validate(result.json)
