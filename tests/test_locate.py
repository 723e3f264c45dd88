"""pixelbuild.locate: one place that turns a document path into file:line, sprite and field."""

from __future__ import annotations

from pathlib import Path

from pixelbuild.errors import GenerationError
from pixelbuild.locate import (
    did_you_mean,
    format_field,
    grouped_error,
    locate,
    locate_field,
    located_error,
    located_message,
    parse_field,
)
from pixelbuild.spec import Source

_DOC = """\
version: 1
defaults:
  checkpoint: base.safetensors
sprites:
  - id: hero
    prompt: a hero
    loras:
      - {name: ink, weight: 0.5}
  - id: slime
    prompt: a slime
"""


def _manifest(tmp_path: Path) -> Path:
    path = tmp_path / "pixelbuild.yaml"
    path.write_text(_DOC, encoding="utf-8")
    return path


def test_did_you_mean_names_the_closest_option_or_lists_a_few() -> None:
    assert did_you_mean("promt", {"prompt", "seed"}) == " (did you mean 'prompt'?)"
    assert did_you_mean("zzz", {"prompt", "seed"}) == " (expected one of: prompt, seed)"
    assert did_you_mean("zzz", {f"key{i}" for i in range(13)}) == ""
    assert did_you_mean("zzz", {"prompt"}, list_few=False) == ""


def test_did_you_mean_over_file_names_ignores_extension_and_case() -> None:
    models = ["sd15.safetensors", "SDXL_base.safetensors", "pixel.ckpt"]
    assert did_you_mean("sdxl-base.safetensors", models, file_names=True) == " (did you mean 'SDXL_base.safetensors'?)"
    # Without it the shared '.safetensors' makes any two model names look alike.
    assert did_you_mean("other.safetensors", models, list_few=False, file_names=True) == ""


def test_fields_round_trip() -> None:
    assert parse_field("loras[0].name") == ("loras", 0, "name")
    assert format_field(("post", 2, "pixelate", "size")) == "post[2].pixelate.size"


def test_locate_points_at_a_value_or_its_key(tmp_path: Path) -> None:
    path = _manifest(tmp_path)
    assert locate(path, ("sprites", 1, "prompt")) == (10, 13)
    assert locate(path, ("sprites", 1, "prompt"), key=True) == (10, 5)
    # A path that goes further than the file: the deepest place that exists.
    assert locate(path, ("sprites", 0, "post", 3)) == (5, 5)


def test_locate_field_falls_back_to_defaults_then_the_sprite(tmp_path: Path) -> None:
    file = str(_manifest(tmp_path))
    assert locate_field(file, ("sprites", 0), "loras[0].weight") == 8
    assert locate_field(file, ("sprites", 0), "checkpoint") == 3
    assert locate_field(file, ("sprites", 1), "seed") == 9
    assert locate_field(str(tmp_path / "missing.yaml"), ("sprites", 0), None) is None


def test_located_error_names_file_line_sprite_and_field(tmp_path: Path) -> None:
    path = _manifest(tmp_path)
    data = {"sprites": [{"id": "hero"}, {"prompt": "a slime"}]}
    error = located_error("bad", path, data, ("sprites", 0, "loras", 0, "weight"))
    assert (error.line, error.column, error.sprite, error.field) == (8, 29, "hero", "loras[0].weight")
    assert located_error("bad", path, data, ("sprites", 1, "prompt")).sprite == "#2"


def test_located_message_and_grouped_error(tmp_path: Path) -> None:
    file = str(_manifest(tmp_path))
    sources = {"hero": Source(file, ("sprites", 0)), "slime": Source(file, ("sprites", 1))}
    assert located_message(sources["hero"], "checkpoint", "no such model") == (
        f"{file}:3: field 'checkpoint': no such model"
    )
    assert located_message(None, None, "plain") == "plain"
    problems = [
        GenerationError("no checkpoint 'base'", sprite="hero", field="checkpoint"),
        GenerationError("no checkpoint 'base'", sprite="slime", field="checkpoint"),
        GenerationError("no LoRA 'ink'", sprite="hero", field="loras[0]"),
    ]
    error = grouped_error(problems, sources.get)
    assert (error.file, error.line, error.sprite, error.field) == (file, 3, "hero", "checkpoint")
    assert error.message == (
        "no checkpoint 'base'; the same for 1 more sprite(s): slime (also: hero: loras[0]: no LoRA 'ink')"
    )
