"""The remote cache against a real S3-compatible server (moto on 127.0.0.1, through obstore over HTTP) and a
folder remote: push/pull between clones, read-through and write-through builds, damage, outages, secrets."""

from __future__ import annotations

import json
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from pixelbuild.builder import BuildOptions, build
from pixelbuild.testing.s3server import KEY_ID, SECRET, S3Server
from tests.conftest import Result, snapshot
from tests.remote.conftest import BUCKET, committed, counting, no_generator

MANIFEST = """\
version: 1
project:
  output: assets
{remote}
defaults:
  size: 64
  post:
    - resize: {{size: 16, filter: box}}
sprites:
  - id: hero
    prompt: blue knight
  - id: slime
    prompt: green slime
    seed: 7
  - id: items/coin
    prompt: gold coin
atlases:
  - id: all
    sprites: ["*", "items/*"]
    formats: [texturepacker-hash]
"""


def manifest(remote: str | None = None) -> str:
    """The test manifest, with ``project.remote`` set to ``remote`` (a YAML value) when given."""
    return MANIFEST.format(remote=f"  remote: {remote}" if remote else "")


def project(root: Path, remote: str | None = None) -> Path:
    """Write the test project into ``root``."""
    root.mkdir(parents=True)
    (root / "pixelbuild.yaml").write_text(manifest(remote))
    return root


def edit_post(root: Path) -> None:
    """A post-only edit: the resize target changes, the prompts and seeds do not."""
    path = root / "pixelbuild.yaml"
    path.write_text(path.read_text().replace("size: 16,", "size: 8,"))


def objects(s3: S3Server, url: str) -> dict[str, bytes]:
    """Every object under the remote ``url``, by name relative to its prefix."""
    prefix = url.removeprefix(f"s3://{BUCKET}/") + "/"
    client = s3.client()
    found = {}
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix):
        for item in page.get("Contents", []):
            found[item["Key"].removeprefix(prefix)] = client.get_object(Bucket=BUCKET, Key=item["Key"])["Body"].read()
    return found


# --------------------------------------------------------------------------------- push, pull, clones


def test_push_from_one_clone_pull_into_a_fresh_one_needs_no_generator(
    cli: Callable[..., Result], tmp_path: Path, s3: S3Server, s3_url: str
) -> None:
    first = project(tmp_path / "a")
    calls: list[str] = []
    assert build(first / "pixelbuild.yaml", BuildOptions(backend_factory=counting(calls), no_remote=True)).ok
    assert len(calls) == 3

    pushed = cli("push", "-C", first, "--remote", s3_url, "--json")
    assert pushed.code == 0, pushed.out + pushed.err
    document = pushed.json
    # 3 generations, 3 post-processed outputs, 1 atlas
    assert (document["stages"], document["pushed"], document["present"], document["failed"]) == (7, 7, 0, 0)
    stored = objects(s3, s3_url)
    assert sum(name.startswith("ac/") for name in stored) == 7
    assert all(name.startswith(("ac/", "cas/")) for name in stored)
    again = cli("push", "-C", first, "--remote", s3_url, "--json").json
    assert (again["pushed"], again["present"]) == (0, 7)  # nothing sent twice

    second = committed(first, tmp_path / "b", assets=False)  # lock and manifest only
    pulled = cli("pull", "-C", second, "--remote", s3_url, "--json")
    assert pulled.code == 0, pulled.out + pulled.err
    assert (pulled.json["pulled"], pulled.json["missing"], pulled.json["failed"]) == (7, 0, 0)
    report = build(second / "pixelbuild.yaml", BuildOptions(backend_factory=no_generator, no_remote=True))
    assert report.ok, report.failures
    assert report.generator_calls == 0
    assert snapshot(second) == snapshot(first)  # byte-identical tree (lock included)


def test_a_fresh_clone_with_a_post_only_edit_fetches_the_generations(tmp_path: Path, s3: S3Server, s3_url: str) -> None:
    first = project(tmp_path / "a", s3_url)
    report = build(first / "pixelbuild.yaml", BuildOptions(backend_factory=counting([])))
    assert report.ok and report.generator_calls == 3 and report.fetched == 0
    assert not report.warnings
    assert sum(name.startswith("ac/") for name in objects(s3, s3_url)) == 7  # written through

    second = committed(first, tmp_path / "b")  # lock and assets committed, no .pixelbuild
    edit_post(second)
    report = build(second / "pixelbuild.yaml", BuildOptions(backend_factory=no_generator))
    assert report.ok, report.failures
    assert (report.generator_calls, report.fetched, report.post_processed) == (0, 3, 3)
    assert "3 fetched" in report.summary()

    # The second clone wrote its post-processed outputs and atlas through: a third one only restores them.
    third = committed(first, tmp_path / "c")
    edit_post(third)
    report = build(third / "pixelbuild.yaml", BuildOptions(backend_factory=no_generator))
    assert report.ok, report.failures
    assert (report.generator_calls, report.fetched, report.post_processed, report.restored) == (0, 4, 0, 4)
    assert snapshot(third) == snapshot(second)


def test_pull_only_takes_the_matching_sprites_raw_generations_included(
    cli: Callable[..., Result], tmp_path: Path, s3: S3Server, s3_url: str
) -> None:
    first = project(tmp_path / "a", s3_url)
    assert build(first / "pixelbuild.yaml").ok
    second = committed(first, tmp_path / "b")
    pulled = cli("pull", "-C", second, "--only", "hero", "--json")
    assert pulled.code == 0, pulled.out + pulled.err
    assert pulled.json["pulled"] == 2  # its generation and its post-processed output
    edit_post(second)
    (second / "pixelbuild.yaml").write_text((second / "pixelbuild.yaml").read_text().replace(f"remote: {s3_url}", ""))
    report = build(second / "pixelbuild.yaml", BuildOptions(only=("hero",), backend_factory=no_generator))
    assert report.ok and report.post_processed == 1 and report.generator_calls == 0
    missing = cli("pull", "-C", second, "--only", "nobody", "--remote", s3_url)
    assert missing.code == 2 and "matches no sprite" in missing.err


def test_transfers_need_a_remote(cli: Callable[..., Result], tmp_path: Path, s3: S3Server) -> None:
    first = project(tmp_path / "a")
    result = cli("push", "-C", first, "--json")
    assert result.code == 2
    assert "no remote cache" in result.json["error"]["message"]


# --------------------------------------------------------------------------------- damage and outages


def test_a_damaged_remote_blob_is_discarded_and_the_work_redone(
    cli: Callable[..., Result], tmp_path: Path, s3: S3Server, s3_url: str
) -> None:
    first = project(tmp_path / "a", s3_url)
    assert build(first / "pixelbuild.yaml").ok
    stored = objects(s3, s3_url)
    # Damage the blob of one raw generation: same size, other bytes.
    generation_records = {name: json.loads(data) for name, data in stored.items() if name.startswith("ac/")}
    victim_key, victim = next((name, doc) for name, doc in generation_records.items() if doc["kind"] == "gen")
    digest = victim["record"]["images"][0]["blob"]
    bad = bytearray(stored[f"cas/{digest}"])
    bad[-5] ^= 0xFF
    prefix = s3_url.removeprefix(f"s3://{BUCKET}/")
    s3.client().put_object(Bucket=BUCKET, Key=f"{prefix}/cas/{digest}", Body=bytes(bad))

    second = committed(first, tmp_path / "b")
    edit_post(second)
    calls: list[str] = []
    report = build(second / "pixelbuild.yaml", BuildOptions(backend_factory=counting(calls)))
    assert report.ok, report.failures
    assert calls == [victim_key.removeprefix("ac/")]  # only the damaged one is made again
    assert report.fetched == 2
    damage = [warning for warning in report.warnings if "damaged" in warning]
    assert len(damage) == 1 and f"cas/{digest}" in damage[0]
    # Writing through repaired the remote: the next clone needs no generator.
    assert objects(s3, s3_url)[f"cas/{digest}"] == stored[f"cas/{digest}"]
    third = committed(first, tmp_path / "c")
    edit_post(third)
    report = build(third / "pixelbuild.yaml", BuildOptions(backend_factory=no_generator))
    assert report.ok and report.generator_calls == 0 and not report.warnings


def test_the_server_stopped_mid_build_costs_one_warning(tmp_path: Path, own_s3: S3Server) -> None:
    url = f"s3://{BUCKET}/mid"
    root = project(tmp_path / "a", url)
    calls: list[str] = []

    def stop_after_first(count: int) -> None:
        if count == 1:
            own_s3.stop()

    report = build(root / "pixelbuild.yaml", BuildOptions(backend_factory=counting(calls, stop_after_first)))
    assert report.ok, report.failures
    assert len(calls) == 3 and report.generated == 3 and report.packed == 1
    remote_warnings = [warning for warning in report.warnings if "remote cache" in warning]
    assert len(remote_warnings) == 1, report.warnings
    assert "not reachable" in remote_warnings[0] and url in remote_warnings[0]
    assert (root / "assets/atlases/all.png").is_file()


def test_a_remote_down_from_the_start_costs_one_warning(tmp_path: Path, own_s3: S3Server) -> None:
    own_s3.stop()
    root = project(tmp_path / "a", f"s3://{BUCKET}/down")
    report = build(root / "pixelbuild.yaml", BuildOptions(backend_factory=counting([])))
    assert report.ok and report.generated == 3
    assert len(report.warnings) == 1 and "not reachable" in report.warnings[0]


# --------------------------------------------------------------------------------- the folder remote


def test_the_folder_remote(cli: Callable[..., Result], tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    first = project(tmp_path / "a", f"file://{shared}")
    assert build(first / "pixelbuild.yaml").ok
    names = sorted(path.relative_to(shared).as_posix() for path in shared.rglob("*") if path.is_file())
    assert sum(name.startswith("ac/") for name in names) == 7
    assert all(name.startswith(("ac/", "cas/")) and ".tmp-" not in name for name in names)

    second = committed(first, tmp_path / "b", assets=False)
    (second / "pixelbuild.yaml").write_text(manifest())  # no remote in the manifest: the command line's
    missing = cli("pull", "-C", second, "--remote", "shared", "--json")  # relative to -C: no such folder
    assert missing.code == 1 and "no such folder" in missing.err
    pulled = cli("pull", "-C", second, "--remote", "../shared", "--json")
    assert pulled.code == 0 and pulled.json["pulled"] == 7, pulled.out + pulled.err
    report = build(second / "pixelbuild.yaml", BuildOptions(backend_factory=no_generator))
    assert report.ok and report.generator_calls == 0
    del (built := snapshot(second))["pixelbuild.yaml"]  # the only file that differs: it names no remote
    assert built == {name: data for name, data in snapshot(first).items() if name != "pixelbuild.yaml"}


def test_hostile_records_in_a_folder_remote_are_misses(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    first = project(tmp_path / "a", str(shared))
    shared.mkdir()
    assert build(first / "pixelbuild.yaml").ok
    outside = tmp_path / "outside"
    for path in (shared / "ac").iterdir():
        document = json.loads(path.read_bytes())
        if document["kind"] == "gen":
            document["record"]["images"][0]["blob"] = "../../outside"  # a path, not a digest
        elif document["kind"] == "post":
            document["sizes"] = {name: 1 << 40 for name in document["sizes"]}  # beyond any bound
        else:
            document = {"format": 1, "kind": "pack", "record": "x" * 10}
        path.write_text(json.dumps(document))
    second = committed(first, tmp_path / "b")
    edit_post(second)
    calls: list[str] = []
    report = build(second / "pixelbuild.yaml", BuildOptions(backend_factory=counting(calls), no_push=True))
    assert report.ok and report.fetched == 0 and len(calls) == 3
    assert not outside.exists()
    assert len([w for w in report.warnings if "damaged" in w]) == 1


# --------------------------------------------------------------------------------- configuration, secrets


def test_the_command_line_beats_the_environment_beats_the_manifest(
    cli: Callable[..., Result], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folders = {name: tmp_path / name for name in ("manifest", "env", "cli")}
    for folder in folders.values():
        folder.mkdir()
    root = project(tmp_path / "a", str(folders["manifest"]))

    def written() -> dict[str, int]:
        found = {name: folder / "ac" for name, folder in folders.items()}
        return {name: len(list(folder.glob("*"))) for name, folder in found.items() if folder.exists()}

    assert cli("build", "-C", root, "--no-remote").code == 0
    assert written() == {}
    monkeypatch.setenv("PIXELBUILD_REMOTE", str(folders["env"]))
    assert cli("push", "-C", root, "--remote", str(folders["cli"])).code == 0
    assert written() == {"cli": 7}
    assert cli("push", "-C", root).code == 0
    assert written() == {"cli": 7, "env": 7}
    monkeypatch.delenv("PIXELBUILD_REMOTE")
    assert cli("push", "-C", root).code == 0
    assert written() == {"cli": 7, "env": 7, "manifest": 7}


def test_push_false_reads_but_never_writes(cli: Callable[..., Result], tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    root = project(tmp_path / "a", textwrap.dedent(f"{{url: '{shared}', push: false, transfers: 4}}"))
    report = build(root / "pixelbuild.yaml")
    assert report.ok and not list(shared.iterdir())
    assert cli("push", "-C", root).code == 0  # push is asked for by name: it writes
    before = sorted(path.name for path in shared.rglob("*"))
    # CI: a fresh clone, a post-only edit, --frozen (no generator allowed), a read-only remote.
    clone = committed(root, tmp_path / "ci")
    edit_post(clone)
    result = cli("build", "-C", clone, "--frozen", "--json")
    assert result.code == 0, result.out + result.err
    assert (result.json["fetched"], result.json["generator_calls"], result.json["post_processed"]) == (3, 0, 3)
    assert sorted(path.name for path in shared.rglob("*")) == before


def test_secrets_and_the_endpoint_are_never_shown(cli: Callable[..., Result], tmp_path: Path, own_s3: S3Server) -> None:
    url = f"s3://{BUCKET}/secret"
    root = project(tmp_path / "a", url)
    outputs = [cli("build", "-C", root, "--json"), cli("push", "-C", root, "--json"), cli("push", "-C", root)]
    clone = committed(root, tmp_path / "b", assets=False)
    outputs += [cli("pull", "-C", clone, "--json"), cli("build", "-C", clone, "--json")]
    own_s3.stop()  # now every command meets errors
    edit_post(clone)
    outputs += [
        cli("build", "-C", clone, "--json"),
        cli("build", "-C", clone, "--force"),
        cli("pull", "-C", clone, "--json"),
        cli("push", "-C", clone),
    ]
    assert outputs[-1].code == 1 and "not reachable" in outputs[-1].err  # the errors were met
    assert any("warning" in result.err for result in outputs[5:7])
    shown = "".join(result.out + result.err for result in outputs)
    shown += "".join(path.read_text() for project_dir in (root, clone) for path in project_dir.glob("pixelbuild.lock"))
    for secret in (SECRET, KEY_ID, own_s3.endpoint, f"127.0.0.1:{own_s3.port}", str(own_s3.port)):
        assert secret not in shown


def test_a_remote_that_never_answers_costs_one_bounded_wait(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import socket

    from pixelbuild.testing.s3server import KEY_ID, SECRET

    with socket.socket() as silent:  # accepts connections (the kernel does) and never answers a request
        silent.bind(("127.0.0.1", 0))
        silent.listen(64)
        port = silent.getsockname()[1]
        monkeypatch.delenv("PIXELBUILD_REMOTE", raising=False)
        for name, value in {
            "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}",
            "AWS_ALLOW_HTTP": "true",
            "AWS_ACCESS_KEY_ID": KEY_ID,
            "AWS_SECRET_ACCESS_KEY": SECRET,
            "AWS_REGION": "us-east-1",
        }.items():
            monkeypatch.setenv(name, value)
        root = project(tmp_path / "a", f"{{url: 's3://{BUCKET}/silent', timeout: 0.5}}")
        report = build(root / "pixelbuild.yaml", BuildOptions(backend_factory=counting([])))
    assert report.ok and report.generated == 3 and report.packed == 1
    assert len(report.warnings) == 1 and "timed out" in report.warnings[0], report.warnings
