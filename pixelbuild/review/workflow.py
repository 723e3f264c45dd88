"""``pixelbuild workflow ID``: the exact ComfyUI graph that made (or would make) a sprite.

The API-format graph is bound by the ComfyUI backend's own code (``backends.comfyui.workflow.bind``)
with the same SaveImage prefix, LoRA chain and init-image reference (the name an upload under its content
hash gets), so an artist can drop it on ComfyUI or POST it, tweak it there, and bring values back.
``--ui`` turns it into ComfyUI's UI (graph) format with ``pixelbuild.review.comfyui_ui``, which needs the
server's node definitions (``/object_info``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pixelbuild.errors import UsageError
from pixelbuild.local.layout import ProjectPaths


def bound_graph(paths: ProjectPaths, sprite_id: str, frame: int = 0) -> tuple[dict[str, Any], Any, dict[str, Any]]:
    """The bound API-format graph of ``sprite_id``'s generation ``frame``, the session, and the project's
    ComfyUI settings (raw)."""
    from pixelbuild.backends.comfyui.backend import _PREFIX_KEY_CHARS, _safe
    from pixelbuild.backends.comfyui.workflow import bind, load_template
    from pixelbuild.hashing import hash_bytes
    from pixelbuild.project import open_session
    from pixelbuild.resolver import project_file_path

    session = open_session(paths)
    sprite = find_generated_sprite(session, sprite_id, "workflow")
    if not 0 <= frame < len(sprite.generations):
        raise UsageError(
            f"sprite '{sprite_id}' has {len(sprite.generations)} generation(s); --frame {frame} is not one"
        )
    generation = sprite.generations[frame]
    key = session.keys[sprite.id].generations[frame]
    settings = dict(session.resolved.project.backend_settings)
    template_path = project_file_path(paths.project_dir, generation.workflow_file)
    template = load_template(template_path, sprite=sprite.id)
    output_prefix = str(settings.get("output_prefix", "pixelbuild"))
    bound = bind(
        template,
        generation,
        template_name=generation.workflow or template_path.stem,
        output_prefix=f"{output_prefix}/{_safe(key)[:_PREFIX_KEY_CHARS]}",
        sprite=sprite.id,
    )
    graph = bound.graph
    if bound.init_targets and generation.init_image:
        # The value the backend's upload gets: the file's content hash in the upload subfolder.
        init_path = project_file_path(paths.project_dir, generation.init_image)
        try:
            digest = hash_bytes(init_path.read_bytes())
        except OSError as error:
            raise UsageError(f"cannot read init image {generation.init_image}: {error.strerror or error}") from None
        suffix = init_path.suffix.lower() or ".png"
        subfolder = str(settings.get("upload_subfolder", "pixelbuild"))
        graph = bound.with_init_image(f"{subfolder}/{digest}{suffix}" if subfolder else f"{digest}{suffix}")
    return graph, session, settings


def find_sprite(session: Any, sprite_id: str) -> Any:
    """The resolved sprite ``sprite_id``; a usage error with a did-you-mean otherwise."""
    sprite = session.resolved.by_id.get(sprite_id)
    if sprite is None:
        from pixelbuild.locate import did_you_mean

        raise UsageError(
            f"no sprite '{sprite_id}' in {session.paths.display(session.paths.manifest)}"
            f"{did_you_mean(sprite_id, set(session.resolved.by_id))}"
        )
    return sprite


def find_generated_sprite(session: Any, sprite_id: str, command: str) -> Any:
    """``find_sprite``, refusing a hand-drawn (``source:``) sprite, which ``command`` cannot act on."""
    sprite = find_sprite(session, sprite_id)
    if any(generation.source_file for generation in sprite.generations):
        raise UsageError(
            f"sprite '{sprite_id}' is drawn by hand (source: {sprite.generations[0].source_file}); "
            f"'{command}' works on generated sprites"
        )
    return sprite


def write_workflow(
    paths: ProjectPaths,
    sprite_id: str,
    *,
    frame: int = 0,
    ui: bool = False,
    object_info: str | None = None,
    servers: Sequence[str] = (),
) -> str:
    """The JSON text of the sprite's API-format graph, or with ``ui`` of its UI-format workflow."""
    graph, _session, settings = bound_graph(paths, sprite_id, frame)
    if not ui:
        return json.dumps(graph, indent=2, ensure_ascii=False) + "\n"
    from pixelbuild.review.comfyui_ui import to_ui

    definitions = _object_info(paths, settings, object_info, servers)
    return json.dumps(to_ui(graph, definitions), indent=2, ensure_ascii=False) + "\n"


def _object_info(
    paths: ProjectPaths, settings: dict[str, Any], file: str | None, servers: Sequence[str]
) -> dict[str, Any]:
    """Node definitions: from ``file`` (a saved ``GET /object_info``), else from the first ComfyUI server
    that answers."""
    why = (
        "--ui needs the node definitions of the ComfyUI that will open it (the UI format stores widget values "
        "by position and socket types, which only /object_info tells): pass --object-info FILE (a saved "
        "GET /object_info) or make a server reachable (--server URL, PIXELBUILD_COMFYUI_URL or project.comfyui.servers)"
    )
    if file is not None:
        try:
            data = json.loads(Path(file).read_text("utf-8"))
        except (OSError, ValueError) as error:
            raise UsageError(f"--object-info {file}: cannot read it as JSON ({error})") from None
        if not isinstance(data, dict):
            raise UsageError(f"--object-info {file}: not a /object_info document (a JSON object of node classes)")
        return data
    from pixelbuild.backends.comfyui.client import ComfyClient, ServerFailed, ServerUnreachable
    from pixelbuild.backends.comfyui.config import parse_settings

    try:
        comfy = parse_settings(settings, paths.project_dir, servers_override=servers)
    except Exception as error:  # a settings problem is reported as the reason we have no definitions
        raise UsageError(f"{why} ({error})") from None
    failures = []
    for server in comfy.servers:
        client = ComfyClient(server.url, timeout=10.0, retries=0)
        try:
            return client.object_info()
        except (ServerUnreachable, ServerFailed) as error:
            failures.append(f"{server.url}: {error}")
        finally:
            client.close()
    raise UsageError(f"{why}; no server answered ({'; '.join(failures)})")
