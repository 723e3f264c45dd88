"""``project.comfyui`` settings: shape, defaults, precedence of --server and PIXELBUILD_COMFYUI_URL."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from pixelbuild.backends.comfyui.config import ComfySettings, ServerConfig, parse_settings
from pixelbuild.errors import ManifestError

ROOT = Path("/project")


def _parse(settings: dict[str, Any], env: dict[str, str] | None = None) -> ComfySettings:
    return parse_settings(settings, ROOT, env or {})


def test_defaults() -> None:
    settings = _parse({})
    assert settings.servers == (ServerConfig("http://127.0.0.1:8188", 2),)
    assert (settings.timeout, settings.job_timeout, settings.retries) == (30.0, None, 3)
    assert (settings.upload_subfolder, settings.output_prefix, settings.models_dir) == (
        "pixelbuild",
        "pixelbuild",
        None,
    )
    assert settings.servers_source == "default"


def test_server_forms() -> None:
    settings = _parse(
        {
            "servers": ["gpu1:8188", {"url": "https://gpu2.example/", "max_in_flight": 4}],
            "max_in_flight": 3,
            "models_dir": "models",
            "job_timeout": 600,
        }
    )
    assert settings.servers == (ServerConfig("http://gpu1:8188", 3), ServerConfig("https://gpu2.example", 4))
    assert settings.models_dir == Path("/project/models")
    assert settings.job_timeout == 600.0
    assert _parse({"servers": "http://one:1"}).servers == (ServerConfig("http://one:1", 2),)


def test_precedence() -> None:
    env = {"PIXELBUILD_COMFYUI_URL": "http://a:1, http://b:2"}
    settings = _parse({"servers": ["http://manifest:1"]}, env)
    assert [server.url for server in settings.servers] == ["http://a:1", "http://b:2"]
    assert settings.servers_source == "PIXELBUILD_COMFYUI_URL"
    settings = parse_settings({"servers": ["http://manifest:1"]}, ROOT, env, servers_override=["http://cli:9"])
    assert [server.url for server in settings.servers] == ["http://cli:9"]
    assert settings.servers_source == "--server"


def test_the_server_override_is_a_parameter_not_a_setting() -> None:
    # A manifest cannot smuggle in what only the command line may say.
    with pytest.raises(ManifestError, match="unknown setting") as caught:
        _parse({"servers_override": ["http://elsewhere:9"]})
    assert caught.value.field == "project.comfyui"


@pytest.mark.parametrize(
    ("settings", "field"),
    [
        ({"servers": []}, "project.comfyui.servers"),
        ({"servers": ["ftp://x"]}, "project.comfyui.servers[0]"),
        ({"servers": [{"url": "http://x", "k": 1}]}, "project.comfyui.servers[0]"),
        ({"servers": ["http://x", "http://x/"]}, "project.comfyui.servers"),
        ({"max_in_flight": 0}, "project.comfyui.max_in_flight"),
        ({"timeout": -1}, "project.comfyui.timeout"),
        ({"retries": True}, "project.comfyui.retries"),
        ({"upload_subfolder": "../up"}, "project.comfyui.upload_subfolder"),
        ({"model_sha256": {"a.safetensors": "abc"}}, "project.comfyui.model_sha256"),
        ({"servres": []}, "project.comfyui"),
    ],
)
def test_bad_settings(settings: dict[str, Any], field: str) -> None:
    with pytest.raises(ManifestError) as caught:
        _parse(settings)
    assert caught.value.field == field
