"""``init``: put pixelbuild into an existing game repository without touching what is already there.

It writes a starter manifest whose ``yaml-language-server`` line points at a copy of the JSON Schemas
under ``.pixelbuild-schema/`` (so editors validate offline, in every clone, whatever the install), the
``.gitignore`` entry for the local state, and the ``.gitattributes`` line of the lock's merge driver; the
driver's ``git config`` lines are printed, or applied with ``--git-config``. Nothing present is replaced.
With a ComfyUI server, the starter names the checkpoint and LoRAs that server really has.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from pixelbuild._resources import data_dir
from pixelbuild.errors import BackendUnavailable, PixelbuildError, UsageError
from pixelbuild.fsutil import atomic_write_bytes
from pixelbuild.local.layout import STATE_DIR, ProjectPaths

SCHEMA_DIR = ".pixelbuild-schema"
SCHEMA_FILES = ("manifest.schema.json", "post-ops.schema.json", "lock.schema.json")
GITIGNORE_LINE = f"{STATE_DIR}/"
MERGE_DRIVER = "pixelbuild merge-lock %O %A %B"
MERGE_DRIVER_NAME = "pixelbuild lock merge"
GIT_CONFIG = (("merge.pixelbuild.name", MERGE_DRIVER_NAME), ("merge.pixelbuild.driver", MERGE_DRIVER))
DEFAULT_SERVER = "http://127.0.0.1:8188"

_MAX_LISTED = 40  # model names listed in the starter's comments
_SAFE_NAME = re.compile(r"[\w][\w .+@()\[\]/-]{0,199}")  # a model name we are willing to write into YAML


def git_config_commands() -> list[str]:
    """The ``git config`` command lines that enable the lock's merge driver in a repository."""
    return [f'git config {key} "{value}"' for key, value in GIT_CONFIG]


def gitattributes_line(lock_name: str) -> str:
    """The ``.gitattributes`` line that routes merges of the lock ``lock_name`` to the driver."""
    return f"{lock_name} merge=pixelbuild"


@dataclass(frozen=True, slots=True)
class ServerModels:
    """What a ComfyUI server offers: its URL and model names (unsafe names already left out)."""

    url: str
    checkpoints: tuple[str, ...]
    loras: tuple[str, ...]


@dataclass(slots=True)
class InitReport:
    """What ``init`` did: files created or extended, things left as they were, and the git config state."""

    created: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)
    git_config: list[str] = field(default_factory=list)
    git_config_applied: bool = False


# --- the starter manifest (pure) ------------------------------------------------------------------------

_POST = """\
  post:                                          # applied in order; see the README's post-processing table
    - pixelate                                   # find the drawn pixel grid, one colour per cell
    - remove_background: {mode: flood, tolerance: 24}
    - palette: {preset: endesga-32}
    - trim
    - outline: {color: "#181425"}
"""
_SPRITES = """\
sprites:
  - id: characters/hero                          # also the output path: characters/hero.png
    prompt: pixel art knight, 16-bit sprite, front view
  - id: items/coin
    prompt: pixel art gold coin, game item icon
    seed: 7                                      # optional: derived from the id when absent

atlases:
  - id: sprites
    sprites: ["characters/*", "items/*"]
    formats: [texturepacker-hash]                # also: texturepacker-array, aseprite, godot, libgdx
"""


def _quote(value: str) -> str:
    """A YAML double-quoted scalar (JSON's string syntax is a subset of it)."""
    return json.dumps(value, ensure_ascii=True)


def _pick(names: Sequence[str], *preferences: str) -> str | None:
    for word in preferences:
        for name in names:
            if word in name.lower():
                return name
    return names[0] if names else None


def _is_sdxl(checkpoint: str) -> bool:
    name = checkpoint.lower()
    if "xl" in name:
        return True
    return not re.search(r"sd[-_ ]?1[-_.]?5|v1[-_.]5|sd15|1\.5", name)


def starter_manifest(backend: str, models: ServerModels | None = None) -> str:
    """The text of a starter ``pixelbuild.yaml`` for ``backend`` (with ``models`` from a ComfyUI server)."""
    head = [
        f"# yaml-language-server: $schema={SCHEMA_DIR}/manifest.schema.json",
        "# The art of this game: `pixelbuild build` makes what changed; `pixelbuild check` (CI) verifies that",
        "# this manifest, pixelbuild.lock and the files under the output root agree. Commit all three.",
        "version: 1",
        "",
        "project:",
        "  output: assets/generated                     # the output root, relative to this file",
    ]
    if backend == "placeholder":
        head += [
            "  backend: placeholder                         # built in, no GPU; switch to comfyui for real art",
            "",
            "defaults:",
            "  size: 256",
            "  negative_prompt: blurry, photo, 3d render, text",
        ]
        return "\n".join(head) + "\n" + _POST + "\n" + _SPRITES
    url = models.url if models else DEFAULT_SERVER
    checkpoints = models.checkpoints if models else ()
    loras = models.loras if models else ()
    checkpoint = _pick(checkpoints, "pixel", "xl") or "sd_xl_base_1.0.safetensors"
    sdxl = _is_sdxl(checkpoint)
    head += [
        "  backend: comfyui",
        "  comfyui:",
        f"    servers: [{_quote(url)}]" + ("" if models else "   # run `pixelbuild init --server URL` to ask it"),
        "",
        "defaults:",
        f"  size: {1024 if sdxl else 512}",
        f"  checkpoint: {_quote(checkpoint)}",
        f"  workflow: {'txt2img_sdxl' if sdxl else 'txt2img_sd15'}"
        + "                     # or a template in ./workflows/ saved with ComfyUI's Save (API)",
        "  negative_prompt: blurry, photo, 3d render, text",
    ]
    lora = _pick([name for name in loras if "pixel" in name.lower()])
    if lora is not None:
        head.append(f"  loras: [{{name: {_quote(lora)}, weight: 0.8}}]")
    elif loras:
        head.append(f"  # loras: [{{name: {_quote(loras[0])}, weight: 0.8}}]")
    if models:
        for what, names in (("checkpoints", checkpoints), ("loras", loras)):
            shown = ", ".join(names[:_MAX_LISTED]) + (", ..." if len(names) > _MAX_LISTED else "")
            head.append(f"  # {what} on the server: {shown or '(none)'}")
    return "\n".join(head) + "\n" + _POST + "\n" + _SPRITES


# --- the server's model lists -------------------------------------------------------------------------


def _safe_names(values: object) -> tuple[str, ...]:
    """Model names fit to write into YAML and comments; anything else a server sends is left out."""
    if not isinstance(values, list):
        return ()
    names = [v for v in values if isinstance(v, str) and _SAFE_NAME.fullmatch(v) and ".." not in v.split("/")]
    return tuple(sorted(set(names)))[:10_000]


def _object_info_choices(info: dict[str, object], node: str, name: str) -> object:
    """The choices of a node's combo input in /object_info (``[[choices...], {...}]``), or None."""
    try:
        return info[node]["input"]["required"][name][0]  # type: ignore[index]
    except (KeyError, IndexError, TypeError):
        return None


def server_models(url: str, *, timeout: float = 10.0) -> ServerModels:
    """Ask the ComfyUI server at ``url`` for its checkpoints and LoRAs (/models/..., else /object_info)."""
    from pixelbuild.backends.comfyui.client import ComfyClient, ServerFailed, ServerUnreachable
    from pixelbuild.backends.comfyui.config import _url

    base = _url(url, "--server")
    client = ComfyClient(base, timeout=timeout, retries=1)
    try:
        checkpoints: object = client.models("checkpoints")
        loras: object = client.models("loras")
        if checkpoints is None or loras is None:  # an older ComfyUI: no /models routes
            info = client.object_info()
            checkpoints = _object_info_choices(info, "CheckpointLoaderSimple", "ckpt_name")
            loras = _object_info_choices(info, "LoraLoader", "lora_name")
    except ServerUnreachable as error:
        raise BackendUnavailable(f"--server {base}: no ComfyUI answers there ({error.cause})") from None
    except ServerFailed as error:
        raise BackendUnavailable(f"--server {base}: the server failed to list its models ({error.detail})") from None
    finally:
        client.close()
    return ServerModels(base, _safe_names(checkpoints), _safe_names(loras))


# --- writing (side effects) ---------------------------------------------------------------------------


def _lines(path: Path) -> list[str]:
    try:
        return path.read_text("utf-8", errors="replace").splitlines()
    except FileNotFoundError:
        return []


def _append_line(path: Path, line: str, present: bool, report: InitReport, display: str) -> None:
    if present:
        report.kept.append(f"{display}: already has '{line}'")
        return
    if path.is_symlink():
        report.kept.append(f"{display}: a symbolic link, left alone; add '{line}' to it yourself")
        return
    try:
        old = path.read_bytes()
    except FileNotFoundError:
        old = b""
    separator = b"" if not old or old.endswith(b"\n") else b"\n"
    atomic_write_bytes(path, old + separator + line.encode() + b"\n")
    report.created.append(f"{display}: added '{line}'")


def _git(project_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(["git", *args], cwd=project_dir, capture_output=True, text=True, timeout=30)
    except FileNotFoundError:
        raise UsageError("--git-config: git is not installed (or not on PATH)") from None


def _require_git_repository(project_dir: Path) -> None:
    if _git(project_dir, "rev-parse", "--git-dir").returncode != 0:
        raise UsageError(f"--git-config: {project_dir} is not in a git repository; run 'git init' first")


def _apply_git_config(project_dir: Path, report: InitReport) -> None:
    for key, value in GIT_CONFIG:
        current = _git(project_dir, "config", "--local", "--get", key)
        if current.returncode == 0:
            if current.stdout.rstrip("\n") == value:
                report.kept.append(f"git config {key}: already set")
            else:
                report.kept.append(f"git config {key}: left as '{current.stdout.strip()}' (expected '{value}')")
            continue
        result = _git(project_dir, "config", "--local", key, value)
        if result.returncode != 0:
            raise PixelbuildError(f"git config {key} failed: {result.stderr.strip()}")
        report.created.append(f"git config {key}: set")
    report.git_config_applied = True


def init_project(
    manifest: Path, backend: str = "placeholder", server: str | None = None, *, git_config: bool = False
) -> InitReport:
    """Set up pixelbuild beside ``manifest``, creating only what is missing; report what was left."""
    paths = ProjectPaths.for_manifest(manifest)
    project = paths.project_dir
    if not project.is_dir():
        raise UsageError(f"{project}: no such folder")
    # Everything that can fail (git, the server, the package's own files) comes before the first write.
    if git_config:
        _require_git_repository(project)
    models = server_models(server) if server else None
    text = starter_manifest(backend, models)
    schemas = {name: (data_dir("schemas") / name).read_bytes() for name in SCHEMA_FILES}

    report = InitReport()
    shown = paths.display(paths.manifest)
    if paths.manifest.exists() or paths.manifest.is_symlink():
        report.kept.append(f"{shown}: already present, left as it is")
    else:
        atomic_write_bytes(paths.manifest, text.encode())
        report.created.append(f"{shown}: a starter manifest ({backend})")
    schema_dir = project / SCHEMA_DIR
    for name, raw in schemas.items():
        target = schema_dir / name
        display = f"{SCHEMA_DIR}/{name}"
        if schema_dir.is_symlink() or (schema_dir.exists() and not schema_dir.is_dir()):
            report.kept.append(f"{SCHEMA_DIR}: not a plain folder, left as it is ({name} not written)")
        elif target.exists() or target.is_symlink():
            same = target.is_file() and target.read_bytes() == raw
            report.kept.append(
                f"{display}: already present" + ("" if same else " (differs from this pixelbuild's; left as it is)")
            )
        else:
            atomic_write_bytes(target, raw)
            report.created.append(f"{display}: the JSON Schema editors read offline")
    ignore = project / ".gitignore"
    spellings = {f"{lead}{STATE_DIR}{trail}" for lead in ("", "/") for trail in ("", "/")}
    ignored = {line.strip() for line in _lines(ignore)} & spellings
    _append_line(ignore, GITIGNORE_LINE, bool(ignored), report, ".gitignore")
    attributes = project / ".gitattributes"
    wanted = gitattributes_line(paths.lock.name)
    merge_settings = [
        line.strip()
        for line in _lines(attributes)
        if line.split()[:1] in ([paths.lock.name], [f"/{paths.lock.name}"])
        and any(attribute.lstrip("-!").split("=")[0] == "merge" for attribute in line.split()[1:])
    ]
    if merge_settings and wanted not in merge_settings:
        report.kept.append(f".gitattributes: has its own merge setting for the lock ('{merge_settings[-1]}'), left")
    else:
        _append_line(attributes, wanted, bool(merge_settings), report, ".gitattributes")
    if git_config:
        _apply_git_config(project, report)
    else:
        report.git_config = git_config_commands()
    return report
