"""The prompt ledger read as hostile input, and the backend's use of it against fake servers."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from pixelbuild.backends.comfyui import ComfyUIBackend, create
from pixelbuild.backends.comfyui.ledger import (
    MAX_FILE_BYTES,
    MAX_PER_KEY,
    PromptLedger,
    PromptRecord,
    graph_fingerprint,
)
from pixelbuild.backends.comfyui.runner import expected_fingerprints
from pixelbuild.local.layout import ledger_path
from pixelbuild.testing import FakeComfyServer
from tests.comfyui.util import make_job

FP = "ab" * 32
NOW = 1_800_000_000.0


def _submit(**overrides: Any) -> str:
    record = {"op": "submit", "server": "http://127.0.0.1:8188", "prompt_id": "p1", "key": "k1", "graph": FP, "t": NOW}
    record.update(overrides)
    return json.dumps(record)


def _load(tmp_path: Path, lines: list[str]) -> dict[str, list[PromptRecord]]:
    path = tmp_path / "prompts.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return PromptLedger(path).load(now=NOW)


def test_valid_records_fold_in_order(tmp_path: Path) -> None:
    lines = [
        _submit(prompt_id="a", key="k1"),
        _submit(prompt_id="b", key="k1"),
        _submit(prompt_id="c", key="k2"),
        json.dumps({"op": "drop", "prompt_id": "a"}),
        json.dumps({"op": "settled", "key": "k2"}),
        _submit(prompt_id="d", key="k2"),  # submitted again after it settled (a later build)
    ]
    loaded = _load(tmp_path, lines)
    assert {key: [r.prompt_id for r in records] for key, records in loaded.items()} == {"k1": ["b"], "k2": ["d"]}
    # Compacted: the file now holds just those two, and reads back the same.
    assert len((tmp_path / "prompts.jsonl").read_text().splitlines()) == 2
    assert PromptLedger(tmp_path / "prompts.jsonl").load(now=NOW) == loaded


@pytest.mark.parametrize(
    "line",
    [
        "not json",
        '{"op": "submit", "server": "http://127.0.0.1:8188"',  # torn by a crash
        "[1, 2, 3]",
        _submit(prompt_id="../../system_stats"),
        _submit(prompt_id="a/b"),
        _submit(prompt_id="x" * 65),
        _submit(prompt_id=7),
        _submit(server="file:///etc/passwd"),
        _submit(server="http://evil.example/x?y=1#z"),
        _submit(server="http://user:pw@127.0.0.1:8188"),
        _submit(key=""),
        _submit(key="k" * 200),
        _submit(key={"a": 1}),
        _submit(graph="zz" * 32),
        _submit(graph=FP[:-1]),
        _submit(t="yesterday"),
        _submit(t=True),
        _submit(t=-5),
        _submit(t=NOW - 365 * 24 * 3600),  # older than any server's history
        _submit(extra="x" * 5000),  # an over-long line
        json.dumps({"op": "settled", "key": "k1"}) + "garbage",
    ],
)
def test_bad_lines_are_ignored(tmp_path: Path, line: str) -> None:
    assert _load(tmp_path, [line, _submit(prompt_id="good", key="k9")]) == {
        "k9": [PromptRecord("http://127.0.0.1:8188", "good", "k9", FP, NOW)]
    }


def test_a_hostile_id_cannot_settle_or_replace_another_key(tmp_path: Path) -> None:
    lines = [
        _submit(prompt_id="a", key="k1"),
        _submit(prompt_id="a", key="k2"),  # the same id claimed for another key: the newest line wins
        json.dumps({"op": "settled", "key": "k1"}),  # must not drop k2's record
    ]
    assert [r.key for records in _load(tmp_path, lines).values() for r in records] == ["k2"]


def test_sizes_are_bounded(tmp_path: Path) -> None:
    many = [_submit(prompt_id=f"p{n}", key="k1", t=NOW - 100 + n) for n in range(MAX_PER_KEY + 5)]
    (records,) = _load(tmp_path, many).values()
    assert [r.prompt_id for r in records] == [f"p{n}" for n in range(5, MAX_PER_KEY + 5)]  # the newest kept
    huge = tmp_path / "huge.jsonl"
    with huge.open("w") as handle:
        handle.write(_submit(prompt_id="first") + "\n")
        handle.write(" " * (MAX_FILE_BYTES + 10) + "\n")
        handle.write(_submit(prompt_id="beyond", key="k2") + "\n")
    assert list(PromptLedger(huge).load(now=NOW)) == ["k1"]


def test_a_fifo_in_place_of_the_ledger_is_not_read_and_is_replaced(tmp_path: Path) -> None:
    import os

    path = tmp_path / "prompts.jsonl"
    os.mkfifo(path)  # opening it to read would block forever
    ledger = PromptLedger(path)
    assert ledger.load(now=NOW) == {}
    ledger.submitted(PromptRecord("http://127.0.0.1:8188", "p", "k", FP, NOW))
    ledger.close()
    assert path.is_file() and list(PromptLedger(path).load(now=NOW)) == ["k"]


def test_an_unwritable_ledger_does_not_stop_generation(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    ledger = PromptLedger(blocker / "prompts.jsonl")  # its folder is a file
    ledger.submitted(PromptRecord("http://127.0.0.1:8188", "p", "k", FP, NOW))
    ledger.settled("k")
    assert "cannot write the ComfyUI prompt ledger" in caplog.text
    assert ledger.load() == {}


# --- the backend with a crafted ledger -----------------------------------------------------------------


@pytest.fixture
def backends(tmp_path: Path) -> Iterator[Callable[..., ComfyUIBackend]]:
    made: list[ComfyUIBackend] = []

    def make(*servers: FakeComfyServer) -> ComfyUIBackend:
        config = {"servers": [server.url for server in servers], "retries": 1, "unavailable_timeout": 1, "timeout": 5}
        backend = create(config, tmp_path)
        made.append(backend)
        return backend

    yield make
    for backend in made:
        backend.close()


def _write(tmp_path: Path, records: list[PromptRecord]) -> None:
    path = ledger_path(tmp_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(record.to_json()) + "\n" for record in records))


def test_a_record_pointing_at_another_keys_prompt_is_not_used(
    fake: FakeComfyServer, backends: Callable[..., ComfyUIBackend], tmp_path: Path
) -> None:
    one, two = make_job("k1", seed=1), make_job("k2", seed=2)
    first = backends(fake)
    first.start([one])
    result_one = first.result("k1")
    first.close()
    (record,) = PromptLedger(ledger_path(tmp_path)).load()["k1"]
    # Claim k1's finished prompt for k2, with k1's fingerprint, then with the one k2 would have.
    k2_fingerprint = sorted(expected_fingerprints(_task(backends(fake), two), "pixelbuild"))[0]
    for claimed in (record.graph, k2_fingerprint):
        _write(tmp_path, [PromptRecord(record.server, record.prompt_id, "k2", claimed, time.time())])
        accepted = fake.accepted
        second = backends(fake)
        second.start([two])
        result_two = second.result("k2")
        second.settled("k2")
        assert fake.accepted == accepted + 1  # submitted: the record was not trusted
        assert second.resume_stats is not None and second.resume_stats.dropped == 1
        assert not np.array_equal(np.asarray(result_two.images[0]), np.asarray(result_one.images[0]))


def test_a_record_for_a_server_not_configured_is_never_contacted(
    fake_factory: Callable[..., FakeComfyServer], backends: Callable[..., ComfyUIBackend], tmp_path: Path
) -> None:
    ours, stranger = fake_factory(), fake_factory()
    job = make_job("k1", seed=1)
    fingerprint = sorted(expected_fingerprints(_task(backends(ours), job), "pixelbuild"))[0]
    _write(tmp_path, [PromptRecord(stranger.url, "p1", "k1", fingerprint, time.time())])
    before = sum(stranger.requests.values())
    backend = backends(ours)
    backend.start([job])
    backend.result("k1")
    assert sum(stranger.requests.values()) == before and ours.accepted == 1
    # Kept for when that server is configured again, until it ages out.
    assert next(r.server for r in PromptLedger(ledger_path(tmp_path)).load()["k1"]) == stranger.url


def test_a_prompt_the_server_no_longer_knows_is_dropped_and_submitted(
    fake: FakeComfyServer, backends: Callable[..., ComfyUIBackend], tmp_path: Path
) -> None:
    job = make_job("k1", seed=1)
    fingerprint = sorted(expected_fingerprints(_task(backends(fake), job), "pixelbuild"))[0]
    _write(tmp_path, [PromptRecord(fake.url, "gone", "k1", fingerprint, time.time())])
    backend = backends(fake)
    backend.start([job])
    backend.result("k1")
    assert fake.accepted == 1 and backend.resume_stats is not None and backend.resume_stats.dropped == 1
    assert [r.prompt_id for r in PromptLedger(ledger_path(tmp_path)).load()["k1"]] != ["gone"]


def test_finished_prompt_with_deleted_files_is_submitted_again(
    fake: FakeComfyServer, backends: Callable[..., ComfyUIBackend], tmp_path: Path
) -> None:
    job = make_job("k1", seed=1)
    first = backends(fake)
    first.start([job])
    expected = np.asarray(first.result("k1").images[0])
    first.close()
    for name in [name for name in fake.files if name[0] == "output"]:
        del fake.files[name]
    second = backends(fake)
    second.start([job])
    assert np.array_equal(np.asarray(second.result("k1").images[0]), expected)
    assert second.resume_stats is not None and second.resume_stats.collected == 1
    # Submitted again: the identical prompt replays the deleted names from the cache, then a fresh prefix.
    assert second.resume_stats.resubmitted == 1 and fake.accepted == 3


def _task(backend: ComfyUIBackend, job: Any) -> Any:
    (task,) = backend._prepare([job])
    return task


def test_fingerprint_is_key_order_independent() -> None:
    assert graph_fingerprint({"a": 1, "b": {"c": 2.5}}) == graph_fingerprint({"b": {"c": 2.5}, "a": 1})
    assert graph_fingerprint({"a": 1}) != graph_fingerprint({"a": 1.0})


def test_a_dangling_link_in_place_of_the_ledger_is_never_appended_through(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    victim = tmp_path / "outside" / "created-by-pixelbuild.txt"
    victim.parent.mkdir()
    path = tmp_path / "prompts.jsonl"
    path.symlink_to(victim)  # dangling: load() has nothing to compact, so the first append opens it
    ledger = PromptLedger(path)
    assert ledger.load(now=NOW) == {}
    ledger.submitted(PromptRecord("http://127.0.0.1:8188", "p", "k", FP, NOW))
    ledger.close()
    assert not victim.exists()
    assert "cannot write the ComfyUI prompt ledger" in caplog.text
