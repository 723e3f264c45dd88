"""Bad manifests: one clear located paragraph, exit code 2, nothing written."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import Result

CASES = {
    "syntax": (
        """\
        version: 1
        sprites:
          - id: hero
            prompt: [knight
        """,
        ["pixelbuild.yaml:", "YAML syntax error"],
    ),
    "wrong type": (
        """\
        version: 1
        sprites:
          - id: hero
            prompt: knight
            steps: twenty
        """,
        ["pixelbuild.yaml:5:", "sprite 'hero'", "field 'steps'", "expected a whole number", '"twenty"'],
    ),
    "unknown key": (
        """\
        version: 1
        sprites:
          - id: hero
            prompt: knight
            negative_promt: blurry
        """,
        ["pixelbuild.yaml:5:5", "sprite 'hero'", "unknown key 'negative_promt'", "did you mean 'negative_prompt'"],
    ),
    "unknown top-level key": (
        """\
        version: 1
        sprite:
          - id: hero
        """,
        ["pixelbuild.yaml:2:1", "unknown key 'sprite'", "did you mean 'sprites'"],
    ),
    "duplicate id": (
        """\
        version: 1
        sprites:
          - id: hero
            prompt: knight
          - id: slime
            prompt: slime
          - id: hero
            prompt: other knight
        """,
        ["pixelbuild.yaml:7:", "sprite 'hero'", "duplicate id 'hero'"],
    ),
    "duplicate key": (
        """\
        version: 1
        sprites:
          - id: hero
            prompt: knight
            prompt: wizard
        """,
        ["pixelbuild.yaml:5:5", "duplicate key 'prompt'"],
    ),
    "output escapes with ..": (
        """\
        version: 1
        sprites:
          - id: hero
            prompt: knight
            output: ../outside.png
        """,
        ["pixelbuild.yaml:5:", "sprite 'hero'", "field 'output'", "must stay inside the output root"],
    ),
    "absolute output": (
        """\
        version: 1
        sprites:
          - id: hero
            prompt: knight
            output: /tmp/hero.png
        """,
        ["pixelbuild.yaml:5:", "sprite 'hero'", "field 'output'", "must stay inside the output root"],
    ),
    "id escaping": (
        """\
        version: 1
        sprites:
          - id: ../hero
            prompt: knight
        """,
        ["pixelbuild.yaml:3:", "field 'id'", "not well formed"],
    ),
    "missing prompt": (
        """\
        version: 1
        sprites:
          - id: hero
        """,
        ["pixelbuild.yaml:3:", "sprite 'hero'", "missing required key 'prompt'"],
    ),
    "unknown workflow": (
        """\
        version: 1
        sprites:
          - id: hero
            prompt: knight
            workflow: txt2img_sdx
        """,
        ["pixelbuild.yaml:5:", "sprite 'hero'", "unknown workflow 'txt2img_sdx'", "did you mean 'txt2img_sdxl'"],
    ),
    "bad value in defaults": (
        """\
        version: 1
        defaults:
          cfg: high
        sprites:
          - id: hero
            prompt: knight
        """,
        ["pixelbuild.yaml:3:", "field 'defaults.cfg'", "expected a number"],
    ),
    "unknown post op": (
        """\
        version: 1
        sprites:
          - id: hero
            prompt: knight
            post:
              - resise: {size: 16}
        """,
        ["pixelbuild.yaml:6:", "sprite 'hero'", "resise"],
    ),
    "missing init image": (
        """\
        version: 1
        sprites:
          - id: hero
            prompt: knight
            init_image: refs/hero.png
        """,
        ["pixelbuild.yaml:5:", "sprite 'hero'", "file 'refs/hero.png' does not exist"],
    ),
    "wrong version": (
        """\
        version: 2
        sprites: []
        """,
        ["pixelbuild.yaml:1:", "field 'version'"],
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("command", ["build", "validate", "plan", "check"])
def test_bad_manifest_is_one_located_paragraph(
    case: str, command: str, cli: Callable[..., Result], make_project: Callable[..., Path]
) -> None:
    manifest, expected = CASES[case]
    project = make_project(manifest)
    result = cli(command, "-C", project)
    assert result.code == 2, result.err
    assert result.out == ""
    message = result.err.strip()
    assert message.startswith("pixelbuild: error: ")
    assert "\n" not in message, "one paragraph"
    assert "Traceback" not in message
    for fragment in expected:
        assert fragment in message, f"{fragment!r} not in {message!r}"
    # nothing written
    assert not (project / "pixelbuild.lock").exists()
    assert not (project / "assets").exists()


def test_error_in_included_file_names_that_file(cli: Callable[..., Result], make_project: Callable[..., Path]) -> None:
    project = make_project(
        """\
        version: 1
        include: [sprites/*.yaml]
        """,
        files={
            "sprites/a.yaml": """\
                sprites:
                  - id: a
                    prompt: fine
                """,
            "sprites/b.yaml": """\
                sprites:
                  - id: b
                    prompt: broken
                    size: huge
                """,
        },
    )
    result = cli("validate", "-C", project)
    assert result.code == 2
    assert "sprites/b.yaml:4:" in result.err
    assert "sprite 'b'" in result.err and "field 'size'" in result.err


def test_include_errors(cli: Callable[..., Result], make_project: Callable[..., Path]) -> None:
    project = make_project("version: 1\ninclude: [parts/*.yaml]\n")
    result = cli("validate", "-C", project)
    assert result.code == 2 and "matches no file" in result.err and "pixelbuild.yaml:2:" in result.err
    project = make_project("version: 1\ninclude: [../elsewhere.yaml]\n", files={"../elsewhere.yaml": "sprites: []\n"})
    result = cli("validate", "-C", project)
    assert result.code == 2 and "outside the project" in result.err


def test_duplicate_id_across_files(cli: Callable[..., Result], make_project: Callable[..., Path]) -> None:
    project = make_project(
        """\
        version: 1
        include: [more.yaml]
        sprites:
          - id: hero
            prompt: knight
        """,
        files={"more.yaml": "sprites:\n  - id: hero\n    prompt: again\n"},
    )
    result = cli("validate", "-C", project)
    assert result.code == 2
    assert "more.yaml:2:" in result.err and "duplicate id 'hero'" in result.err and "pixelbuild.yaml" in result.err


def test_missing_manifest(cli: Callable[..., Result], tmp_path: Path) -> None:
    result = cli("build", "-C", tmp_path)
    assert result.code == 2
    assert "manifest not found" in result.err and "pixelbuild.yaml" in result.err


def test_damaged_lock_is_a_clear_error(cli: Callable[..., Result], make_project: Callable[..., Path]) -> None:
    project = make_project()
    assert cli("build", "-C", project).code == 0
    lock = project / "pixelbuild.lock"
    lock.write_text(lock.read_text()[:-40])
    result = cli("build", "-C", project)
    assert result.code == 2
    assert "pixelbuild.lock:" in result.err and "not valid JSON" in result.err
    assert "\n" not in result.err.strip()


def test_numbers_read_as_pyyaml_reads_them() -> None:
    """The loader tags each distinct scalar once per file (by its text and whether it was quoted); every
    spelling still means what YAML 1.1 says: octal, '_', sexagesimal, '+', explicit tags, quoted text."""
    import yaml

    from pixelbuild.manifest import parse_yaml

    spellings = [
        "1", "-1", "0", "-0", "010", "1_000", "+1", "1:30", "12345678901234567890", "1.5", "-0.5", "-0.0", "1.",
        ".5", "00.5", "1e3", "1.0e+3", "!!int 7", "!!float 3", '"1"', "'2.5'", "0x1F", "0o17", "true", "~",
    ]  # fmt: skip
    for spelling in spellings:
        text = f"a: {spelling}\nb: [{spelling}, {spelling}]\n"
        ours, theirs = parse_yaml(text.encode(), Path("x.yaml")), yaml.safe_load(text)
        assert ours == theirs and type(ours["a"]) is type(theirs["a"]), spelling
        assert [type(item) for item in ours["b"]] == [type(item) for item in theirs["b"]], spelling
    # In one file: a value met plain, then quoted (or tagged), is read afresh each way.
    plain = [spelling for spelling in spellings if not spelling.startswith(("!", "'", '"'))]
    text = "".join(
        f"k{index}: [{spelling}, '{spelling}', !!str {spelling}, {spelling}]\n" for index, spelling in enumerate(plain)
    )
    ours, theirs = parse_yaml(text.encode(), Path("x.yaml")), yaml.safe_load(text)
    assert ours == theirs
    assert [type(item) for row in ours.values() for item in row] == [type(i) for r in theirs.values() for i in r]
