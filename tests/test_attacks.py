"""Attacks through the review and editing commands: ``diff`` against hostile old revisions, ``pin`` on
unusual YAML, ``eject`` with hostile arguments, and every command run with ``-C`` into a folder whose local
state is hostile. Each case must end with a clear exit (no traceback, no internal error), write nothing
outside the project, and never hang (every command runs in-process here, under pytest's timeout)."""

from __future__ import annotations

import os
import struct
import subprocess
import zlib
from collections.abc import Callable
from pathlib import Path

import pytest

from pixelbuild import notices
from tests.conftest import Result

BASE = (
    "version: 1\nproject:\n  output: assets\ndefaults:\n  size: 32\nsprites:\n"
    "  - id: hero\n    prompt: blue knight\n  - id: slime\n    prompt: green slime\n    seed: 7\n"
)


@pytest.fixture(autouse=True)
def _fresh_warnings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(notices, "_said", set())


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A folder outside every project holding a file no command may touch."""
    folder = tmp_path / "outside"
    folder.mkdir()
    (folder / "victim.txt").write_text("precious")
    return folder


def _untouched(outside: Path) -> bool:
    return sorted(path.name for path in outside.rglob("*")) == ["victim.txt"] and (
        (outside / "victim.txt").read_text() == "precious"
    )


def _clean(result: Result) -> bool:
    shown = result.out + result.err
    return "Traceback" not in shown and "internal error" not in shown


def _git(folder: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=folder, check=True, capture_output=True)


def _repo(cli: Callable[..., Result], root: Path, manifest: str = BASE) -> Path:
    project = root / "game"
    project.mkdir()
    (project / "pixelbuild.yaml").write_text(manifest)
    _git(project, "init", "-q")
    _git(project, "config", "user.email", "redteam@example.com")
    _git(project, "config", "user.name", "redteam")
    assert cli("build", "-C", project).code == 0
    return project


def _png_claiming(width: int, height: int) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = zlib.compress(b"\0" * (1 + (width + 7) // 8) * height, 9)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0))
        + chunk(b"IDAT", rows)
        + chunk(b"IEND", b"")
    )


_LOCK_DAMAGE: dict[str, Callable[[str, Path], str]] = {
    "escaping-path": lambda text, _o: text.replace('"path": "hero.png"', '"path": "../../outside/victim.txt"'),
    "absolute-path": lambda text, o: text.replace('"path": "hero.png"', f'"path": "{o}/victim.txt"'),
    "nan": lambda text, _o: text.replace('"height": 32', '"height": NaN', 1),
    "garbage": lambda _text, _o: "\x00\xff" * 100,
    "deep": lambda _text, _o: "[" * 100_000 + "]" * 100_000,
}


@pytest.mark.parametrize("damage", sorted(_LOCK_DAMAGE))
def test_diff_against_a_revision_with_a_hostile_lock(
    cli: Callable[..., Result], tmp_path: Path, outside: Path, damage: str
) -> None:
    project = _repo(cli, tmp_path)
    lock = project / "pixelbuild.lock"
    lock.write_text(_LOCK_DAMAGE[damage](lock.read_text(), outside))
    _git(project, "add", "-A")
    _git(project, "commit", "-qm", "hostile")
    assert cli("build", "-C", project, "--force").code in (0, 2)
    lock.unlink()
    assert cli("build", "-C", project).code == 0
    result = cli("diff", "HEAD", "-C", project)
    assert result.code in (0, 2) and _clean(result), result
    assert _untouched(outside)


_MANIFESTS = {
    "alias-bomb": "version: 1\na: &a [x,x,x,x,x,x,x,x,x]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\n"
    "c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\ne: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]\n"
    "f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]\ng: [*f,*f,*f,*f,*f,*f,*f,*f,*f]\nsprites: []\n",
    "python-tag": "version: 1\nsprites:\n  - id: !!python/object/apply:os.system ['touch PWNED']\n    prompt: x\n",
    "non-utf8": "version: 1\nsprites:\n  - id: h\xe9ro\n    prompt: x\n",
}


@pytest.mark.parametrize("name", sorted(_MANIFESTS))
def test_diff_against_a_revision_with_a_hostile_manifest(
    cli: Callable[..., Result], tmp_path: Path, outside: Path, name: str
) -> None:
    project = _repo(cli, tmp_path)
    (project / "pixelbuild.yaml").write_bytes(_MANIFESTS[name].encode("latin-1"))
    _git(project, "add", "-A")
    _git(project, "commit", "-qm", "hostile")
    (project / "pixelbuild.yaml").write_text(BASE)
    assert cli("build", "-C", project).code == 0
    result = cli("diff", "HEAD", "-C", project)
    assert result.code in (0, 2) and _clean(result), result
    assert not (project / "PWNED").exists() and _untouched(outside)


@pytest.mark.parametrize("asset", ["png-bomb", "symlink"])
def test_diff_against_a_revision_with_a_hostile_asset(
    cli: Callable[..., Result], tmp_path: Path, outside: Path, asset: str
) -> None:
    project = _repo(cli, tmp_path)
    hero = project / "assets/hero.png"
    hero.unlink()
    if asset == "png-bomb":
        hero.write_bytes(_png_claiming(20000, 20000))
    else:
        hero.symlink_to(outside / "victim.txt")
    _git(project, "add", "-A")
    _git(project, "commit", "-qm", "hostile")
    hero.unlink()
    assert cli("build", "-C", project).code == 0
    result = cli("diff", "HEAD", "-C", project)
    assert result.code == 0 and _clean(result), result
    assert _untouched(outside)


@pytest.mark.parametrize("rev", ["HEAD;touch PWNED", "$(touch PWNED)", "--output=PWNED", "-p", "nonexistent"])
def test_diff_with_a_hostile_revision_argument(cli: Callable[..., Result], tmp_path: Path, rev: str) -> None:
    project = _repo(cli, tmp_path)
    _git(project, "add", "-A")
    _git(project, "commit", "-qm", "base")
    result = cli("diff", f"--exit-code={rev}" if rev.startswith("-") else rev, "-C", project)
    assert result.code == 2 and _clean(result), result
    assert not (project / "PWNED").exists() and not Path("PWNED").exists()


_WEIRD = {
    "anchors": "version: 1\ndefaults: &d\n  size: 32\nsprites:\n  - &h\n    id: hero\n    prompt: blue\n"
    "  - <<: *h\n    id: hero2\n",
    "flow": "version: 1\ndefaults: {size: 32}\nsprites: [{id: hero, prompt: blue knight}, {id: slime, prompt: s}]\n",
    "crlf": BASE.replace("\n", "\r\n"),
    "bom": "\ufeff" + BASE,
    "comments": BASE.replace("prompt: blue knight", "prompt: blue knight   # the hero\n    # seed: 1"),
    "quoted-key": "version: 1\ndefaults: {size: 32}\nsprites:\n  - \"id\": 'hero'\n    prompt: x\n",
    "matrix": "version: 1\ndefaults: {size: 32}\nsprites:\n  - id: hero-{c}\n    prompt: '{c} knight'\n"
    "    matrix: {c: [red, blue]}\n",
}


@pytest.mark.parametrize("name", sorted(_WEIRD))
def test_pin_on_unusual_yaml_edits_exactly_or_refuses(
    cli: Callable[..., Result], make_project: Callable[..., Path], name: str
) -> None:
    project = make_project(_WEIRD[name])
    manifest = project / "pixelbuild.yaml"
    before = manifest.read_bytes()
    sprite = "hero-red" if name == "matrix" else "hero"
    result = cli("pin", sprite, "12345", "-C", project)
    assert result.code in (0, 2) and _clean(result), result
    if result.code == 2:
        assert manifest.read_bytes() == before  # refused: not a byte changed
        return
    assert cli("validate", "-C", project).code == 0
    plan = cli("plan", "-C", project, "--json").json
    assert any(entry["id"] == "hero" for entry in plan["sprites"])
    after = manifest.read_bytes()
    assert after.count(b"12345") == 1 and after.startswith(before[:3])  # a BOM or the first line is kept
    assert (b"\r\n" in after) == (b"\r\n" in before)


@pytest.mark.parametrize(
    "args",
    [("nope",), ("../../x",), ("hero", "-o", "{outside}/victim.txt"), ("hero", "-o", "{outside}")],
)
def test_eject_with_hostile_arguments(
    cli: Callable[..., Result], make_project: Callable[..., Path], outside: Path, args: tuple[str, ...]
) -> None:
    project = make_project(BASE)
    assert cli("build", "-C", project).code == 0
    result = cli("eject", *(arg.format(outside=outside) for arg in args), "-C", project)
    assert result.code in (0, 2) and _clean(result), result
    assert (outside / "victim.txt").read_text() == "precious"


@pytest.mark.parametrize("command", ["check", "plan", "build", "gc", "gallery", "validate"])
def test_commands_in_a_folder_with_hostile_state(
    cli: Callable[..., Result], make_project: Callable[..., Path], outside: Path, command: str
) -> None:
    project = make_project(BASE)
    assert cli("build", "-C", project).code == 0
    for path in (project / ".pixelbuild").rglob("*.json"):
        path.write_bytes(b"\x80\x04" + b"x" * 10)  # a pickle's first bytes: never unpickled, never trusted
    record = '{"op":"set","id":"evil","entry":{"outputs":[{"path":"../../outside/victim.txt"}]}}\n'
    (project / ".pixelbuild/journal.jsonl").write_text(record * 3)
    result = cli(command, "-C", project)
    assert result.code == 0 and _clean(result), result
    assert _untouched(outside) and os.path.exists(project / "assets/hero.png")
