"""``file_digest``, pixelbuild's one file hasher: the same digest whatever the size and the read pattern."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest
import xxhash

from pixelbuild.local import filehashes
from pixelbuild.local.filehashes import file_digest
from pixelbuild.local.seal import NotRegularFile


@pytest.mark.parametrize("size", [0, 1, 9, 10, 11, 25, 1000])
def test_digests_of_any_size_in_one_read_or_in_chunks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, size: int
) -> None:
    path = tmp_path / "file"
    data = os.urandom(size)
    path.write_bytes(data)
    expected = xxhash.xxh3_128_hexdigest(data)
    assert file_digest(str(path)) == expected
    assert file_digest(str(path), algorithm="sha256") == hashlib.sha256(data).hexdigest()
    # Small pieces: a file above the one-read size is read in chunks, with the same digest.
    monkeypatch.setattr(filehashes, "_ONE_READ", 10)
    monkeypatch.setattr(filehashes, "_CHUNK", 3)
    assert file_digest(str(path)) == expected
    assert file_digest(str(path), limit=size) == expected
    if size:
        with pytest.raises(NotRegularFile, match="larger than"):
            file_digest(str(path), limit=size - 1)


def test_a_file_that_grows_past_its_size_is_read_to_its_end(tmp_path: Path) -> None:
    # /proc files say they are empty and are not: the read goes on until the end, whatever fstat said.
    status = "/proc/self/status"
    if not os.path.exists(status):
        pytest.skip("no /proc on this system")
    assert os.stat(status).st_size == 0
    assert len(file_digest(status)) == 32
    with pytest.raises(NotRegularFile, match="larger than"):
        file_digest(status, limit=10)


def test_what_is_not_a_readable_regular_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        file_digest(str(tmp_path / "absent"))
    with pytest.raises(NotRegularFile, match="not a regular file"):
        file_digest(str(tmp_path))
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    with pytest.raises(NotRegularFile, match="not a regular file"):
        file_digest(str(fifo))  # without hanging


def test_the_hash_table_comes_back_and_a_strange_one_is_a_miss(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from pixelbuild.local.filehashes import FileHashCache
    from pixelbuild.local.seal import seal

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "user-cache"))
    old = 1_000_000_000_000_000_000  # files changed long before "now": not racily clean
    table = tmp_path / "files.json"
    files = {name: tmp_path / name for name in ("héro.png", "slime.png")}
    for name, path in files.items():
        path.write_bytes(name.encode())
        os.utime(path, ns=(old, old))
    cache = FileHashCache(table, clock=lambda: 2 * old)
    digests = {name: cache.hash(path) for name, path in files.items()}
    cache.save()
    again = FileHashCache(table, clock=lambda: 2 * old)
    assert again._load() == cache._load() and len(again._load()) == 2
    (tmp_path / "slime.png").write_bytes(b"changed")  # a new signature: hashed again, not taken from the table
    assert again.hash(files["héro.png"]) == digests["héro.png"]
    assert again.hash(files["slime.png"]) == xxhash.xxh3_128_hexdigest(b"changed")
    for strange in (b'{"version": NaN}', b"[1, 2]", b'{"version": 1e999, "files": {}}', b"\xff"):
        table.write_bytes(seal("hashes", table.name, strange))
        assert FileHashCache(table)._load() == {}
