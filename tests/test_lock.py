"""The lock: deterministic bytes, valid against its schema, merge-friendly, safe against crashes."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import jsonschema
import pytest

from pixelbuild.local.journal import Journal, read_journal
from pixelbuild.lock import Lock, LockEntry, OutputRecord, apply_journal, render_lock
from tests.conftest import REPO, Result, build_json


def entry(seed: int) -> LockEntry:
    return LockEntry(
        generations=((f"{seed:032x}", seed),),
        post_key=f"{seed + 1:032x}",
        backend={"name": "placeholder", "version": "1", "models": []},
        fields={"prompt": f"{seed:016x}"},
        outputs=(OutputRecord(f"s{seed}.png", f"{seed + 2:032x}", f"{seed + 3:032x}", 16, 16),),
    )


def test_render_is_sorted_and_independent_of_insertion_order() -> None:
    forward = Lock({f"s{i}": entry(i) for i in range(5)})
    backward = Lock({f"s{i}": entry(i) for i in reversed(range(5))})
    assert render_lock(forward) == render_lock(backward)
    data = json.loads(render_lock(forward))
    assert list(data["sprites"]) == sorted(data["sprites"])
    assert b"time" not in render_lock(forward)


def test_built_lock_matches_its_schema(cli: Callable[..., Result], make_project: Callable[..., Path]) -> None:
    project = make_project()
    build_json(cli, project)
    schema = json.loads((REPO / "schemas/lock.schema.json").read_text())
    jsonschema.validate(json.loads((project / "pixelbuild.lock").read_text()), schema)


def test_journal_survives_a_torn_last_line(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "journal.jsonl")
    journal.record_set("a", entry(1))
    journal.record_set("b", entry(2))
    journal.record_remove("a")
    journal.close()
    with open(tmp_path / "journal.jsonl", "a") as handle:
        handle.write('{"op": "set", "id": "c", "entry": {"gener')  # a crash mid-line
    records = read_journal(tmp_path / "journal.jsonl")
    assert [(r["op"], r["id"]) for r in records] == [("set", "a"), ("set", "b"), ("remove", "a")]
    lock = apply_journal(Lock({"z": entry(9)}), records)
    assert sorted(lock.sprites) == ["b", "z"]


def test_journal_writes_a_chunk_whole_and_takes_nothing_once_closed(tmp_path: Path) -> None:
    path = tmp_path / "journal.jsonl"
    journal = Journal(path)
    journal.record_sets([("a", entry(1)), ("b", entry(2)), ("c", entry(3))])
    assert [r["id"] for r in read_journal(path)] == ["a", "b", "c"]
    journal.close()
    path.unlink()  # folded into the lock by the build
    # A thread that outlived an interrupted build must not bring back a journal the lock already holds.
    journal.record_set("d", entry(4))
    journal.record_sets([("e", entry(5))])
    assert not path.exists()


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_branches_touching_different_sprites_merge_cleanly(
    cli: Callable[..., Result], make_project: Callable[..., Path]
) -> None:
    project = make_project(
        "version: 1\ndefaults: {size: 32}\nsprites:\n"
        + "".join(f"  - id: s{i}\n    prompt: creature {i}\n" for i in range(6))
    )
    build_json(cli, project)

    def git(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["git", "-c", "user.name=t", "-c", "user.email=t@t", *args],
            cwd=project,
            capture_output=True,
            text=True,
            check=False,
        )

    assert git("init", "-q", "-b", "main").returncode == 0
    git("add", "-A")
    git("commit", "-qm", "base")
    manifest = project / "pixelbuild.yaml"
    base = manifest.read_text()

    git("checkout", "-qb", "one")
    manifest.write_text(base.replace("creature 1\n", "red creature 1\n"))
    build_json(cli, project)
    git("commit", "-qam", "one")

    git("checkout", "-q", "main")
    git("checkout", "-qb", "two")
    manifest.write_text(base.replace("creature 4\n", "blue creature 4\n"))
    build_json(cli, project)
    git("commit", "-qam", "two")

    git("checkout", "-q", "one")
    # The manifest merges too; this test is about the lock.
    merge = git("merge", "-q", "--no-edit", "two")
    assert merge.returncode == 0, merge.stdout + merge.stderr
    assert "<<<<<<<" not in (project / "pixelbuild.lock").read_text()
    result = cli("check", "-C", project)
    assert result.code == 0, result.out


def test_the_lock_is_written_through_the_scratch_folder_or_beside_it_on_another_file_system(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import errno
    import os

    from pixelbuild.fsutil import atomic_write_bytes
    from pixelbuild.names import TEMP_PREFIX

    lock, scratch = tmp_path / "pixelbuild.lock", tmp_path / ".pixelbuild"
    real_replace = os.replace
    sources: list[Path] = []
    other_file_system: list[bool] = [False]

    def replace(src: Path, dst: Path) -> None:
        sources.append(Path(src))
        if other_file_system[0] and Path(src).parent == scratch:  # as a rename across file systems fails
            raise OSError(errno.EXDEV, "Invalid cross-device link")
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", replace)
    atomic_write_bytes(lock, b"one", durable=True, scratch=scratch)
    assert lock.read_bytes() == b"one" and [path.parent for path in sources] == [scratch]
    other_file_system[0] = True
    atomic_write_bytes(lock, b"two", durable=True, scratch=scratch)
    assert lock.read_bytes() == b"two"
    assert [path.parent for path in sources[1:]] == [scratch, tmp_path]
    assert [path.name for path in tmp_path.rglob(f"{TEMP_PREFIX}*")] == []
