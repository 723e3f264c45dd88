"""``pixelbuild init --server URL`` starts from the server's own models (a fake ComfyUI on loopback)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from pixelbuild.backends.comfyui.client import ComfyClient
from pixelbuild.testing.fakecomfy import FakeComfyServer
from tests.conftest import Result


def test_init_from_the_servers_models_then_build(
    cli: Callable[..., Result], tmp_path: Path, fake_factory: Callable[..., FakeComfyServer]
) -> None:
    fake = fake_factory(
        checkpoints=("tiny-sd15.safetensors", "other-sd15.safetensors"),
        loras=("tiny-sd15-lora.safetensors", "pixel-sd15-lora.safetensors"),
    )
    result = cli("init", "-C", tmp_path, "--server", fake.url)
    assert result.code == 0, result.err
    text = (tmp_path / "pixelbuild.yaml").read_text()
    manifest = yaml.safe_load(text)
    assert manifest["project"]["backend"] == "comfyui"
    assert manifest["project"]["comfyui"]["servers"] == [fake.url]
    assert manifest["defaults"]["checkpoint"] in fake.checkpoints
    assert manifest["defaults"]["workflow"] == "txt2img_sd15"
    assert manifest["defaults"]["loras"] == [{"name": "pixel-sd15-lora.safetensors", "weight": 0.8}]
    assert "# checkpoints on the server: other-sd15.safetensors, tiny-sd15.safetensors" in text
    # Small and few steps so the fake answers fast; the rest is the starter as written.
    manifest["defaults"].update(size=64, steps=2)
    (tmp_path / "pixelbuild.yaml").write_text(yaml.safe_dump(manifest, sort_keys=False))
    build = cli("build", "-C", tmp_path, "--json")
    assert build.code == 0, build.out + build.err
    assert build.json["generated"] == 2
    assert cli("check", "-C", tmp_path).code == 0


def test_an_older_server_without_model_routes_is_read_through_object_info(
    cli: Callable[..., Result], tmp_path: Path, fake: FakeComfyServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ComfyClient, "models", lambda self, folder: None)
    assert cli("init", "-C", tmp_path, "--server", fake.url).code == 0
    manifest = yaml.safe_load((tmp_path / "pixelbuild.yaml").read_text())
    assert manifest["defaults"]["checkpoint"] == "tiny-sd15.safetensors"
    assert cli("validate", "-C", tmp_path).code == 0


def test_hostile_model_names_never_reach_the_manifest(
    cli: Callable[..., Result], tmp_path: Path, fake_factory: Callable[..., FakeComfyServer]
) -> None:
    evil = ("a\nproject: {backend: placeholder}", 'b" # x', "../../etc/passwd", "x" * 5000, "\x1b[31mred")
    fake = fake_factory(checkpoints=(*evil, "ok-xl.safetensors"), loras=evil)
    assert cli("init", "-C", tmp_path, "--server", fake.url).code == 0
    text = (tmp_path / "pixelbuild.yaml").read_text()
    manifest = yaml.safe_load(text)
    assert manifest["defaults"]["checkpoint"] == "ok-xl.safetensors"
    assert manifest["defaults"]["workflow"] == "txt2img_sdxl"
    assert "loras" not in manifest["defaults"]
    assert manifest["project"]["backend"] == "comfyui"
    assert not any(name in text for name in evil)
    assert cli("validate", "-C", tmp_path).code == 0


def test_an_unreachable_server_writes_nothing(cli: Callable[..., Result], tmp_path: Path) -> None:
    result = cli("init", "-C", tmp_path, "--server", "http://127.0.0.1:9")
    assert result.code == 3
    assert "no ComfyUI answers" in result.err
    assert list(tmp_path.iterdir()) == []
