"""Local state that drives decisions (parse cache, resolution cache, file hashes, no-op stamp) is trusted
only when this user's pixelbuild sealed it: planted, carried or renamed state is a miss, never a skip."""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Callable
from pathlib import Path

import pytest

from pixelbuild import notices
from pixelbuild.hashing import hash_bytes
from pixelbuild.local import seal as sealing
from pixelbuild.local.filehashes import file_digest
from tests.conftest import BASIC_MANIFEST, Result, build_json


@pytest.fixture(autouse=True)
def _own_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh key folder per test (and once-only warnings said afresh)."""
    monkeypatch.setattr(notices, "_said", set())
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.setattr(sealing, "_key", None)
    return tmp_path / "xdg"


def _unsealed(path: Path) -> bytes:
    data = path.read_bytes()
    assert data.startswith(sealing.MAGIC)
    return data[data.index(b"\n") + 1 :]


def test_key_is_private_and_kept_outside_the_project(tmp_path: Path) -> None:
    key = sealing.state_key()
    path = Path(sealing.key_path())
    assert path == tmp_path / "xdg/pixelbuild/state.key"
    assert path.read_bytes() == key and len(key) == 32
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    sealed = sealing.seal("stamp", "noop.json", b"{}")
    assert sealing.unseal("stamp", "noop.json", sealed) == b"{}"
    assert sealing.unseal("stamp", "other.json", sealed) is None  # bound to its name...
    assert sealing.unseal("hashes", "noop.json", sealed) is None  # ...and its purpose
    assert sealing.unseal("stamp", "noop.json", sealed[:-1] + b"]") is None
    assert sealing.unseal("stamp", "noop.json", b"{}") is None


def test_a_key_others_can_read_or_a_link_is_replaced(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = Path(sealing.key_path())
    path.parent.mkdir(parents=True)
    path.write_bytes(b"k" * 32)
    path.chmod(0o644)  # readable by others: they could forge state
    key = sealing.state_key()
    assert key != b"k" * 32 and path.read_bytes() == key and stat.S_IMODE(path.stat().st_mode) == 0o600
    monkeypatch.setattr(sealing, "_key", None)
    path.unlink()
    chosen = tmp_path / "chosen.key"
    chosen.write_bytes(b"c" * 32)
    chosen.chmod(0o600)
    path.symlink_to(chosen)  # a key someone else chose, through a link
    assert sealing.state_key() != b"c" * 32 and not path.is_symlink()


def test_without_a_place_for_the_key_state_lasts_one_run(
    cli: Callable[..., Result], make_project: Callable[..., Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "blocked").write_text("a file where the folder would go")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "blocked"))
    project = make_project()
    assert build_json(cli, project)["generated"] == 3
    assert len(sealing.state_key()) == 32 and not (tmp_path / "blocked/pixelbuild").exists()
    assert cli("check", "-C", project).code == 0


def test_parse_cache_entry_planted_for_an_invalid_manifest_skips_no_validation(
    cli: Callable[..., Result], make_project: Callable[..., Path]
) -> None:
    project = make_project()
    build_json(cli, project)
    folder = project / ".pixelbuild/state/manifests"
    (header,) = [entry for entry in folder.iterdir() if not entry.name.endswith(".sprites.json")]
    digest = header.name.split(".")[0]
    assert digest == hash_bytes((project / "pixelbuild.yaml").read_bytes())
    # An invalid manifest, and the valid one's entries planted under its digest (as an archive could carry).
    bad = BASIC_MANIFEST.replace("size: 64", "size: -5")
    (project / "pixelbuild.yaml").write_text(bad)
    bad_digest = hash_bytes(bad.encode())
    for entry in list(folder.iterdir()):
        (folder / entry.name.replace(digest, bad_digest)).write_bytes(entry.read_bytes())
    result = cli("plan", "-C", project)
    assert result.code == 2 and "pixelbuild.yaml:5" in result.err and "Traceback" not in result.err, result
    for entry in list(folder.iterdir()):  # the same, unsealed
        if bad_digest in entry.name:
            entry.write_bytes(_unsealed(entry))
    assert cli("build", "-C", project).code == 2


def test_resolution_cache_entry_carried_to_another_name_never_skips_an_edit(
    cli: Callable[..., Result], make_project: Callable[..., Path]
) -> None:
    project = make_project()
    build_json(cli, project)
    resolved = project / ".pixelbuild/state/resolved"
    (old,) = resolved.iterdir()
    manifest = project / "pixelbuild.yaml"
    manifest.write_text(BASIC_MANIFEST.replace("blue knight", "red knight"))
    assert cli("plan", "-C", project).code == 0  # resolves the edited file: a second entry
    (new,) = [entry for entry in resolved.iterdir() if entry != old]
    for planted in (old.read_bytes(), _unsealed(old)):  # sealed for its own name; unsealed
        new.write_bytes(planted)
        result = cli("plan", "-C", project, "--json")
        assert result.code == 0 and result.json["counts"]["generate"] == 1, result
        assert result.err.count("pixelbuild: warning:") == 1 and "resolution cache" in result.err
        notices._said.clear()
        new.write_bytes(planted)
    report = build_json(cli, project)
    assert report["generated"] == 1


def test_forged_stamp_never_skips_an_edit(cli: Callable[..., Result], make_project: Callable[..., Path]) -> None:
    project = make_project()
    build_json(cli, project)
    stamp_path = project / ".pixelbuild/state/noop.json"
    stamp = json.loads(_unsealed(stamp_path))
    manifest = project / "pixelbuild.yaml"
    manifest.write_text(BASIC_MANIFEST.replace("blue knight", "red knight"))
    # What an attacker who knows the format writes: the stamp with the edited manifest's digest.
    stamp["manifests"] = [[name, file_digest(str(project / name))] for name, _digest in stamp["manifests"]]
    forged = json.dumps(stamp, separators=(",", ":")).encode()
    for planted in (forged, sealing.MAGIC + b"0" * 32 + b"\n" + forged):
        stamp_path.write_bytes(planted)
        result = cli("build", "-C", project, "--frozen")
        assert result.code == 1 and "up to date" not in result.out, result
    assert build_json(cli, project)["generated"] == 1


def test_forged_file_hashes_never_make_a_hand_edit_look_like_pixelbuilds(
    cli: Callable[..., Result], make_project: Callable[..., Path]
) -> None:
    project = make_project()
    build_json(cli, project)
    slime = project / "assets/slime.png"
    slime.write_bytes(b"my own slime")
    lock = json.loads((project / "pixelbuild.lock").read_text())
    recorded = lock["sprites"]["slime"]["outputs"][0]["file_hash"]
    info = os.stat(slime)
    hashes = project / ".pixelbuild/state/files.json"
    table = json.loads(_unsealed(hashes))
    table["files"][str(slime)] = [info.st_size, info.st_mtime_ns, info.st_ctime_ns, info.st_ino, recorded]
    hashes.write_bytes(json.dumps(table).encode())
    (project / "pixelbuild.yaml").write_text(BASIC_MANIFEST.replace("green slime", "red slime"))
    result = cli("build", "-C", project)
    shown = result.out + result.err
    assert result.code == 1 and "slime: would overwrite assets/slime.png" in shown and "FAILED" in shown, result
    assert slime.read_bytes() == b"my own slime"
