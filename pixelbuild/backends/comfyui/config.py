"""The ``project.comfyui`` settings of a manifest, parsed and validated.

Shape (every key optional)::

    comfyui:
      servers:                      # default ["http://127.0.0.1:8188"]
        - http://127.0.0.1:8188
        - {url: http://gpu2:8188, max_in_flight: 3}
      max_in_flight: 2              # prompts queued per server at once (default for servers without one)
      timeout: 30                   # seconds: HTTP connect/read timeout of one request
      job_timeout: null             # seconds from submitting a prompt to its end; null = no limit
      retries: 3                    # retries of one request on connection errors and 5xx answers
      unavailable_timeout: 30       # seconds to wait for some server to come back when all are down
      models_dir: null              # local ComfyUI models folder: enables sha256 pins of checkpoint/LoRAs
      model_sha256: {}              # {model file name: sha256}: pins for checkpoints (LoRAs can also
                                    # carry their own pin in the manifest, Lora.sha256)
      upload_subfolder: pixelbuild  # subfolder of ComfyUI's input folder for init images
      output_prefix: pixelbuild     # subfolder of ComfyUI's output folder for generated images

Server precedence: ``servers_override`` (a parameter: the CLI's ``--server``) over ``PIXELBUILD_COMFYUI_URL``
(comma-separated) over ``servers``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pixelbuild.errors import ManifestError

ENV_URL = "PIXELBUILD_COMFYUI_URL"
DEFAULT_URL = "http://127.0.0.1:8188"
_FIELD = "project.comfyui"
_KNOWN_KEYS = {
    "servers",
    "max_in_flight",
    "timeout",
    "job_timeout",
    "retries",
    "unavailable_timeout",
    "models_dir",
    "model_sha256",
    "upload_subfolder",
    "output_prefix",
}


@dataclass(frozen=True, slots=True)
class ServerConfig:
    """One ComfyUI server and how many of our prompts it may hold at once."""

    url: str
    max_in_flight: int


@dataclass(frozen=True, slots=True)
class ComfySettings:
    """Validated ComfyUI backend settings."""

    servers: tuple[ServerConfig, ...]
    timeout: float = 30.0
    job_timeout: float | None = None
    retries: int = 3
    unavailable_timeout: float = 30.0
    models_dir: Path | None = None
    model_sha256: Mapping[str, str] = field(default_factory=dict)
    upload_subfolder: str = "pixelbuild"
    output_prefix: str = "pixelbuild"
    servers_source: str = "default"


def parse_settings(
    settings: Mapping[str, Any],
    project_root: Path,
    environ: Mapping[str, str] | None = None,
    *,
    servers_override: Sequence[str] = (),
) -> ComfySettings:
    """Validate ``settings`` (the manifest's ``project.comfyui``); raise ``ManifestError`` on bad input.

    Non-empty ``servers_override`` (the CLI's ``--server``) replaces the server list."""
    environ = os.environ if environ is None else environ
    if not isinstance(settings, Mapping):
        raise ManifestError("must be a mapping", field=_FIELD)
    unknown = sorted(set(settings) - _KNOWN_KEYS)
    if unknown:
        raise ManifestError(
            f"unknown setting(s) {', '.join(unknown)} (known: {', '.join(sorted(_KNOWN_KEYS))})", field=_FIELD
        )
    default_k = _positive_int(settings.get("max_in_flight", 2), "max_in_flight")

    override = list(servers_override)
    env_value = environ.get(ENV_URL, "").strip()
    raw: Any
    if override:
        raw, source = override, "--server"
    elif env_value:
        raw, source = [part.strip() for part in env_value.split(",") if part.strip()], ENV_URL
    elif "servers" in settings:
        raw, source = settings["servers"], f"{_FIELD}.servers"
    else:
        raw, source = [DEFAULT_URL], "default"
    if isinstance(raw, str):
        raw = [raw]
    if not isinstance(raw, list) or not raw:
        raise ManifestError("must be a non-empty list of URLs or {url, max_in_flight}", field=f"{_FIELD}.servers")
    servers = tuple(_server(entry, default_k, index) for index, entry in enumerate(raw))
    urls = [server.url for server in servers]
    if len(set(urls)) != len(urls):
        raise ManifestError(f"the same server is listed twice: {', '.join(urls)}", field=f"{_FIELD}.servers")

    job_timeout = settings.get("job_timeout")
    models_dir = settings.get("models_dir")
    if models_dir is not None and not isinstance(models_dir, str):
        raise ManifestError("must be a path", field=f"{_FIELD}.models_dir")
    pins = settings.get("model_sha256") or {}
    if not isinstance(pins, Mapping) or not all(
        isinstance(name, str) and isinstance(digest, str) and len(digest.removeprefix("sha256:")) == 64
        for name, digest in pins.items()
    ):
        raise ManifestError("must map model file names to 64-hex-digit sha256 strings", field=f"{_FIELD}.model_sha256")
    return ComfySettings(
        servers=servers,
        timeout=_positive_float(settings.get("timeout", 30.0), "timeout"),
        job_timeout=None if job_timeout is None else _positive_float(job_timeout, "job_timeout"),
        retries=_non_negative_int(settings.get("retries", 3), "retries"),
        unavailable_timeout=_non_negative_float(settings.get("unavailable_timeout", 30.0), "unavailable_timeout"),
        models_dir=None if models_dir is None else (project_root / Path(models_dir).expanduser()).resolve(),
        model_sha256={name: digest.lower().removeprefix("sha256:") for name, digest in pins.items()},
        upload_subfolder=_folder(settings.get("upload_subfolder", "pixelbuild"), "upload_subfolder"),
        output_prefix=_folder(settings.get("output_prefix", "pixelbuild"), "output_prefix"),
        servers_source=source,
    )


def _server(entry: Any, default_k: int, index: int) -> ServerConfig:
    field = f"{_FIELD}.servers[{index}]"
    if isinstance(entry, str):
        return ServerConfig(_url(entry, field), default_k)
    if isinstance(entry, Mapping):
        extra = sorted(set(entry) - {"url", "max_in_flight"})
        if extra or "url" not in entry:
            raise ManifestError("must be a URL or a mapping {url, max_in_flight}", field=field)
        k = _positive_int(entry.get("max_in_flight", default_k), "max_in_flight", field)
        return ServerConfig(_url(entry["url"], field), k)
    raise ManifestError("must be a URL or a mapping {url, max_in_flight}", field=field)


def _url(value: Any, field: str) -> str:
    if not isinstance(value, str):
        raise ManifestError("must be a URL string", field=field)
    text = value.strip().rstrip("/")
    if "://" not in text:
        text = "http://" + text
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ManifestError(f"'{value}' is not an http(s) URL like http://127.0.0.1:8188", field=field)
    return text


def _positive_int(value: Any, name: str, field: str | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ManifestError("must be a whole number of at least 1", field=field or f"{_FIELD}.{name}")
    return value


def _non_negative_int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ManifestError("must be a whole number of at least 0", field=f"{_FIELD}.{name}")
    return value


def _positive_float(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise ManifestError("must be a number of seconds above 0", field=f"{_FIELD}.{name}")
    return float(value)


def _non_negative_float(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise ManifestError("must be a number of seconds, 0 or more", field=f"{_FIELD}.{name}")
    return float(value)


def _folder(value: Any, name: str) -> str:
    if not isinstance(value, str) or not value.strip("/") or ".." in value.split("/") or "\\" in value:
        raise ManifestError("must be a relative folder name like 'pixelbuild'", field=f"{_FIELD}.{name}")
    return value.strip("/")
