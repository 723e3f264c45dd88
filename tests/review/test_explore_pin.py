"""``explore`` (seed candidates through the backend and cache) and ``pin`` (a located YAML edit)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import pytest
import yaml

from pixelbuild.backends import Backend, BackendRequest, create_backend
from pixelbuild.builder import BuildOptions, build
from pixelbuild.errors import PixelbuildError, UsageError
from pixelbuild.local.layout import ProjectPaths
from pixelbuild.review.explore import explore
from pixelbuild.review.pin import edit_seed
from tests.conftest import Result
from tests.review.helpers import built, write_project


class CountingBackend(Backend):
    """Wraps the placeholder backend and counts the generations it is asked for."""

    calls: ClassVar[list[str]] = []

    def __init__(self, inner: Backend) -> None:
        self.inner = inner
        self.name = inner.name

    def start(self, jobs: Any) -> None:
        CountingBackend.calls.extend(job.key for job in jobs)
        self.inner.start(jobs)

    def result(self, key: str) -> Any:
        return self.inner.result(key)

    def cancel(self) -> None:
        self.inner.cancel()

    def close(self) -> None:
        self.inner.close()


def counting(request: BackendRequest) -> Backend:
    """A ``BackendFactory``: the named backend, counted."""
    return CountingBackend(create_backend(request))


@pytest.fixture
def counted() -> list[str]:
    CountingBackend.calls = []
    return CountingBackend.calls


def snapshot(root: Path) -> dict[str, bytes]:
    files = [root / "pixelbuild.lock", root / "pixelbuild.yaml", *sorted((root / "assets").rglob("*"))]
    return {str(p.relative_to(root)): p.read_bytes() for p in files if p.is_file()}


def test_explore_then_pin_then_build_calls_no_generator(
    cli: Callable[..., Result], tmp_path: Path, counted: list[str]
) -> None:
    root = write_project(tmp_path / "p")
    built(root)
    before = snapshot(root)
    counted.clear()
    paths = ProjectPaths.for_manifest(root / "pixelbuild.yaml")
    result = explore(paths, "monsters/bat", 3, backend_factory=counting)
    seeds = [seed for seed, _ in result.candidates]
    current = yaml.safe_load((root / "pixelbuild.yaml").read_text())
    assert len(seeds) == 3 and len(set(seeds)) == 3
    # The current seed's candidate is the built sprite, from the cache; the two others generated (a batch of 3).
    assert result.reused == 1 and result.generated == 2 and len(counted) == 2
    assert result.candidates[0][1].read_bytes() == (root / "assets/monsters/bat.png").read_bytes()
    assert snapshot(root) == before  # never the asset tree, the lock or the manifest
    # A larger N reuses every earlier candidate (the command line says so in its JSON).
    counted.clear()
    again = cli("explore", "monsters/bat", "--seeds", "5", "-C", root, "--json").json
    assert [c["seed"] for c in again["candidates"]][:3] == seeds
    assert again["reused"] == 3 and again["generated"] == 2
    assert "seed " + str(seeds[2]) in Path(again["index"]).read_text()
    chosen = seeds[2]
    candidate = Path(again["candidates"][2]["image"]).read_bytes()
    # Pin it, and the build restores that candidate from the cache with no generator call.
    pinned = cli("pin", "monsters/bat", str(chosen), "-C", root)
    assert pinned.code == 0, pinned.err
    counted.clear()
    report = build(root / "pixelbuild.yaml", BuildOptions(backend_factory=counting))
    assert report.ok and report.generator_calls == 0 and counted == []
    assert (root / "assets/monsters/bat.png").read_bytes() == candidate
    assert current["sprites"][3].get("seed") is None
    assert yaml.safe_load((root / "pixelbuild.yaml").read_text())["sprites"][3]["seed"] == chosen


def test_explore_keeps_frame_seeds_the_manifest_sets(
    tmp_path: Path, counted: list[str], cli: Callable[..., Result]
) -> None:
    manifest = """\
    version: 1
    defaults: {size: 64, post: [{resize: {size: 16, filter: nearest}}]}
    sprites:
      - id: walk
        prompt: red knight
        frames: [{}, {seed: 99}, {prompt: red knight walking}]
    """
    root = write_project(tmp_path / "p", manifest)
    built(root)
    result = cli("explore", "walk", "--seeds", "2", "--start", "500", "-C", root, "--json")
    assert result.code == 0, result.err
    assert cli("pin", "walk", "501", "-C", root).code == 0
    counted.clear()
    report = build(root / "pixelbuild.yaml", BuildOptions(backend_factory=counting))
    assert report.ok and report.generator_calls == 0 and counted == []
    lock = (root / "pixelbuild.lock").read_text()
    assert '"seed": 501' in lock and '"seed": 99' in lock and '"seed": 503' in lock


def test_explore_unknown_sprite_is_a_usage_error(cli: Callable[..., Result], tmp_path: Path) -> None:
    root = write_project(tmp_path / "p")
    result = cli("explore", "monsters/slim", "-C", root)
    assert result.code == 2 and "did you mean 'monsters/slime'" in result.err
    assert cli("explore", "monsters/slime", "--seeds", "0", "-C", root).code == 2


TEXT = """\
version: 1
# leading comment
sprites:
  - id: hero        # the hero
    prompt: "blue knight"   # quoted, with a comment

  - id: slime
    seed: 7         # lucky
    prompt: green slime
  - {id: coin, prompt: gold coin}
  - id: knight_{dir}
    prompt: knight {dir}
    matrix: {dir: [n, s]}
"""


def test_pin_inserts_under_the_id_and_keeps_everything_else() -> None:
    edited, line, changed = edit_seed(TEXT, 0, 1234, "m.yaml")
    assert changed and line == 5
    assert edited == TEXT.replace("# the hero\n", "# the hero\n    seed: 1234\n")


def test_pin_replaces_an_existing_seed_in_place() -> None:
    edited, line, changed = edit_seed(TEXT, 1, 8, "m.yaml")
    assert changed and line == 8
    assert edited == TEXT.replace("seed: 7         # lucky", "seed: 8         # lucky")
    assert edit_seed(TEXT, 1, 7, "m.yaml") == (TEXT, 8, False)


def test_pin_flow_mapping_and_crlf() -> None:
    edited, _line, _changed = edit_seed(TEXT, 2, 5, "m.yaml")
    assert "  - {id: coin, prompt: gold coin, seed: 5}\n" in edited
    crlf = TEXT.replace("\n", "\r\n")
    edited, _line, _changed = edit_seed(crlf, 0, 3, "m.yaml")
    assert edited == crlf.replace("# the hero\r\n", "# the hero\r\n    seed: 3\r\n")


def test_pin_refuses_a_matrix_entry() -> None:
    with pytest.raises(UsageError, match="matrix"):
        edit_seed(TEXT, 3, 1, "m.yaml")


def test_pin_command_writes_the_manifest_and_reports_the_line(cli: Callable[..., Result], tmp_path: Path) -> None:
    root = write_project(tmp_path / "p")
    original = (root / "pixelbuild.yaml").read_text()
    result = cli("pin", "characters/hero", "42", "-C", root)
    assert result.code == 0 and result.out.strip().endswith("pixelbuild.yaml:11: pinned seed 42")
    assert (root / "pixelbuild.yaml").read_text() == original.replace("# the hero\n", "# the hero\n    seed: 42\n")
    assert cli("pin", "nobody", "1", "-C", root).code == 2
    assert cli("pin", "characters/hero", "-1", "-C", root).code == 2
    with pytest.raises(PixelbuildError):
        from pixelbuild.local.layout import ProjectPaths
        from pixelbuild.review.pin import pin

        pin(ProjectPaths.for_manifest(root / "pixelbuild.yaml"), "characters/hero", 1 << 64)


def test_pin_edits_the_included_file_that_declares_the_sprite(cli: Callable[..., Result], tmp_path: Path) -> None:
    root = write_project(
        tmp_path / "p",
        """\
        version: 1
        include: [more/*.yaml]
        defaults: {size: 64}
        sprites:
          - id: hero
            prompt: blue knight
        """,
    )
    (root / "more").mkdir()
    (root / "more/monsters.yaml").write_text("sprites:\n  # bats\n  - id: bat\n    prompt: purple bat\n")
    result = cli("pin", "bat", "77", "-C", root)
    assert result.code == 0, result.err
    assert (root / "more/monsters.yaml").read_text() == (
        "sprites:\n  # bats\n  - id: bat\n    seed: 77\n    prompt: purple bat\n"
    )
    assert "seed" not in (root / "pixelbuild.yaml").read_text()
