"""schemas/{build,plan,check,validate,error}.schema.json against what the CLI really prints with ``--json``:
successes, failures and disagreements, and bad input, on small placeholder projects."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from referencing import Registry, Resource

from tests.conftest import REPO, Result, build_json

SCHEMAS = REPO / "schemas"
COMMANDS = ("build", "plan", "check", "validate")

ATLAS_MANIFEST = """\
version: 1
project:
  output: assets
defaults:
  size: 32
  post:
    - resize: {size: 8, filter: box}
sprites:
  - id: hero
    prompt: blue knight
  - id: slime
    prompt: green slime
    seed: 7
  - id: coin
    prompt: gold coin
    post: [{resize: {size: 4, filter: box}}]
atlases:
  - id: all
    sprites: ["*"]
    formats: [texturepacker-hash]
"""


def _registry() -> Registry:
    resources = []
    for path in sorted(SCHEMAS.glob("*.schema.json")):
        schema = json.loads(path.read_text())
        resources.append((schema["$id"], Resource.from_contents(schema)))
    registry: Registry = Registry().with_resources(resources)
    return registry


REGISTRY = _registry()


def _validator(name: str) -> Draft202012Validator:
    schema = json.loads((SCHEMAS / f"{name}.schema.json").read_text())
    return Draft202012Validator(schema, registry=REGISTRY)


def _errors(name: str, document: Any) -> list[str]:
    return [f"{list(error.absolute_path)}: {error.message}" for error in _validator(name).iter_errors(document)]


def _valid(name: str, result: Result) -> dict[str, Any]:
    """The command's stdout as a JSON document that its schema accepts."""
    document: dict[str, Any] = json.loads(result.out)
    assert _errors(name, document) == [], json.dumps(document, indent=1)
    return document


def _error_document(name: str, result: Result, kind: str, code: int) -> dict[str, Any]:
    """A failed command's document: the schema accepts it, and its error says what the exit code says."""
    assert result.code == code, result.out + result.err
    document = _valid(name, result)
    assert document["ok"] is False and document["error"]["kind"] == kind and document["error"]["exit_code"] == code
    return document


@pytest.mark.parametrize("name", [*COMMANDS, "error"])
def test_schemas_are_valid_draft_2020_12(name: str) -> None:
    schema = json.loads((SCHEMAS / f"{name}.schema.json").read_text())
    Draft202012Validator.check_schema(schema)
    assert schema["$id"] == f"https://pixelbuild.dev/schemas/{name}.schema.json"


@pytest.fixture
def project(make_project: Callable[..., Path]) -> Path:
    return make_project(ATLAS_MANIFEST)


def test_success_documents(cli: Callable[..., Result], project: Path) -> None:
    validate = _valid("validate", cli("validate", "-C", project, "--json"))
    assert validate == {"ok": True, "sprites": 3, "files": 1}
    plan = _valid("plan", cli("plan", "-C", project, "--json"))
    assert {sprite["action"] for sprite in plan["sprites"]} == {"generate"} and plan["counts"]["pack"] == 1
    build = cli("build", "-C", project, "--json")
    assert build.code == 0
    assert _valid("build", build)["generated"] == 3
    noop = _valid("build", cli("build", "-C", project, "--json"))
    assert noop["noop"] is True
    check = _valid("check", cli("check", "-C", project, "--json"))
    assert check["ok"] is True and check["problems"] == []
    plan = _valid("plan", cli("plan", "-C", project, "--json", "--all"))
    assert plan["counts"]["up-to-date"] == 4


def test_plan_with_every_action(cli: Callable[..., Result], project: Path) -> None:
    build_json(cli, project)
    manifest = project / "pixelbuild.yaml"
    text = manifest.read_text()
    text = text.replace("prompt: blue knight", "prompt: red knight")  # generate
    text = text.replace("post: [{resize: {size: 4, filter: box}}]", "post: [{resize: {size: 2, filter: box}}]")  # post
    text = text.replace("  - id: slime\n    prompt: green slime\n    seed: 7\n", "")  # remove
    text = text.replace('sprites: ["*"]', "sprites: [hero, coin]")  # pack
    manifest.write_text(text)
    (project / "assets/coin.png").unlink()
    plan = _valid("plan", cli("plan", "-C", project, "--json", "--all"))
    actions = {sprite["id"]: sprite["action"] for sprite in plan["sprites"]}
    assert actions == {"hero": "generate", "coin": "post", "slime": "remove"}
    assert [(atlas["id"], atlas["action"]) for atlas in plan["atlases"]] == [("all", "pack")]
    # Restore: back to the built manifest, with an output deleted.
    manifest.write_text(ATLAS_MANIFEST)
    plan = _valid("plan", cli("plan", "-C", project, "--json"))
    assert {sprite["id"]: sprite["action"] for sprite in plan["sprites"]}["coin"] == "restore"


def test_check_document_with_every_kind_of_disagreement(cli: Callable[..., Result], project: Path) -> None:
    build_json(cli, project)
    lock = project / "pixelbuild.lock"
    built = lock.read_text()
    (project / "assets/coin.png").write_bytes((project / "assets/hero.png").read_bytes())  # modified
    (project / "assets/slime.png").unlink()  # missing
    (project / "assets/stray.png").write_bytes(b"x")  # orphan
    manifest = project / "pixelbuild.yaml"
    text = manifest.read_text().replace("blue knight", "red knight")  # stale
    manifest.write_text(text.replace("atlases:", "  - id: bat\n    prompt: a bat\natlases:"))  # unlocked
    lock_document = json.loads(built)
    lock_document["sprites"]["ghost"] = lock_document["sprites"]["coin"]  # removed
    lock.write_text(json.dumps(lock_document, indent=2, sort_keys=True) + "\n")
    result = cli("check", "-C", project, "--json")
    assert result.code == 1
    check = _valid("check", result)
    kinds = {problem["kind"] for problem in check["problems"]}
    assert kinds == {"unlocked", "stale", "missing", "modified", "removed", "orphan"}
    assert check["ok"] is False


def test_failed_build_document(cli: Callable[..., Result], project: Path) -> None:
    manifest = project / "pixelbuild.yaml"
    manifest.write_text(manifest.read_text() + "    max_size: 4\n")  # the atlas cannot fit
    result = cli("build", "-C", project, "--json")
    assert result.code == 1
    build = _valid("build", result)
    assert build["ok"] is False and list(build["failures"]) == ["atlas all"]


def test_failed_build_document_carries_the_error(cli: Callable[..., Result], project: Path) -> None:
    manifest = project / "pixelbuild.yaml"
    manifest.write_text(manifest.read_text() + "    max_size: 4\n")
    build = _error_document("build", cli("build", "-C", project, "--json"), "failed", 1)
    assert "atlas all" in build["error"]["message"]


def test_check_disagreement_document_carries_the_error(cli: Callable[..., Result], project: Path) -> None:
    build_json(cli, project)
    (project / "assets/hero.png").unlink()
    _error_document("check", cli("check", "-C", project, "--json"), "failed", 1)


BAD_MANIFEST = ATLAS_MANIFEST.replace("    seed: 7\n", "    sed: 7\n")


@pytest.mark.parametrize("command", COMMANDS)
def test_bad_input_documents(
    cli: Callable[..., Result], make_project: Callable[..., Path], command: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(make_project(BAD_MANIFEST))  # so that the file is shown as the user would see it
    document = _error_document(command, cli(command, "--json"), "bad_input", 2)
    error = document["error"]
    assert error["file"] == "pixelbuild.yaml" and error["line"] == 13
    assert error["sprite"] == "slime" and error["field"] == "sed"
    assert "did you mean 'seed'" in error["message"]
    assert set(document) == {"ok", "error"}


def test_frozen_build_that_needs_the_generator(cli: Callable[..., Result], project: Path) -> None:
    build_json(cli, project)
    manifest = project / "pixelbuild.yaml"
    manifest.write_text(manifest.read_text().replace("blue knight", "red knight"))
    document = _error_document("build", cli("build", "-C", project, "--json", "--frozen"), "failed", 1)
    assert "hero" in document["error"]["message"]


def test_unreachable_server_document(cli: Callable[..., Result], make_project: Callable[..., Path]) -> None:
    project = make_project(
        ATLAS_MANIFEST.replace("  output: assets\n", "  output: assets\n  backend: comfyui\n").replace(
            "project:\n", "project:\n  comfyui: {servers: ['http://127.0.0.1:9']}\n"
        )
    )
    _error_document("build", cli("build", "-C", project, "--json"), "unavailable", 3)


# The schemas are not just permissive: documents that break the contract are rejected.
_ERROR = {
    "kind": "bad_input",
    "message": "m",
    "exit_code": 2,
    "file": None,
    "line": None,
    "sprite": None,
    "field": None,
}


@pytest.mark.parametrize(
    ("change", "name"),
    [
        (lambda e: e.update(exit_code=1), "a kind with another kind's exit code"),
        (lambda e: e.update(kind="oops"), "an unknown kind"),
        (lambda e: e.update(message="two\n\nparagraphs"), "more than one paragraph"),
        (lambda e: e.update(message=""), "an empty message"),
        (lambda e: e.update(line=0), "line 0"),
        (lambda e: e.pop("sprite"), "a missing location field"),
        (lambda e: e.update(column=3), "an undocumented field"),
    ],
)
def test_error_schema_rejects(change: Callable[[dict[str, Any]], Any], name: str) -> None:
    assert _errors("error", {"ok": False, "error": dict(_ERROR)}) == []
    broken = dict(_ERROR)
    change(broken)
    assert _errors("error", {"ok": False, "error": broken}), name


def test_report_schemas_reject_contradictions(cli: Callable[..., Result], project: Path) -> None:
    build = json.loads(cli("build", "-C", project, "--json").out)
    check = json.loads(cli("check", "-C", project, "--json").out)
    plan = json.loads(cli("plan", "-C", project, "--json", "--all").out)
    assert not _errors("build", build) and not _errors("check", check) and not _errors("plan", plan)
    contradictions: list[tuple[str, dict[str, Any]]] = []
    doc = copy.deepcopy(build)
    doc["failures"] = {"hero": "broke"}  # ok with failures
    contradictions.append(("build", doc))
    doc = copy.deepcopy(build)
    doc["noop"] = True  # a no-op that generated
    contradictions.append(("build", doc))
    doc = copy.deepcopy(build)
    doc["ok"] = False  # not ok, and nothing says why
    contradictions.append(("build", doc))
    doc = copy.deepcopy(check)
    doc["ok"] = False  # disagreement without a problem
    contradictions.append(("check", doc))
    doc = copy.deepcopy(check)
    doc["problems"] = [{"kind": "weird", "subject": "hero", "detail": "?"}]
    contradictions.append(("check", doc))
    doc = copy.deepcopy(plan)
    doc["sprites"][0]["action"] = "generate"  # generate with no generation key
    contradictions.append(("plan", doc))
    doc = copy.deepcopy(plan)
    doc["counts"]["rebuild"] = 1
    contradictions.append(("plan", doc))
    for name, document in contradictions:
        assert _errors(name, document), (name, document)
