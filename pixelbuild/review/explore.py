"""``pixelbuild explore ID --seeds N``: N candidates of one sprite, one per seed, to choose from.

Each candidate is the sprite's resolved spec with another seed, exactly as ``pin ID SEED`` would make
it (frame ``i`` gets ``SEED + i`` unless the manifest gives that frame its own seed), so its keys are the
ones the next build computes. Generation goes through the project's backend and the cache like a build:
raw generations are stored by generation key, finished candidates by post key. So a larger N later
reuses every earlier candidate, and after ``pin`` the build restores the chosen one from the cache with
no generator call. Nothing is written to the asset tree or the lock; the candidates go to a page.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec

from pixelbuild.errors import GenerationError, ManifestError
from pixelbuild.local.layout import ProjectPaths
from pixelbuild.review import page
from pixelbuild.spec import SpriteSpec

if TYPE_CHECKING:
    from pixelbuild.backends.base import BackendFactory


@dataclass(frozen=True, slots=True)
class ExploreResult:
    """The page written, each candidate's seed and image, and how many needed the generator."""

    index: Path
    candidates: list[tuple[int, Path]]
    generated: int
    reused: int


def with_seed(sprite: SpriteSpec, seed: int, own_seeds: Sequence[bool]) -> SpriteSpec:
    """``sprite`` as it resolves with ``seed: seed`` in its entry (``own_seeds[i]``: frame ``i`` has its own)."""
    generations = tuple(
        generation
        if index < len(own_seeds) and own_seeds[index]
        else msgspec.structs.replace(generation, seed=(seed + index) % (1 << 64))
        for index, generation in enumerate(sprite.generations)
    )
    return msgspec.structs.replace(sprite, generations=generations)


def _own_seeds(session: Any, sprite: SpriteSpec) -> list[bool]:
    """Which frames of ``sprite`` set their own seed in the manifest (those keep it)."""
    from pixelbuild.yamledit import manifest_entry

    manifest_file, index = manifest_entry(session, sprite)
    entry = manifest_file.sprites[index]
    frames = entry.get("frames") if isinstance(entry, dict) else None
    if not isinstance(frames, list):
        return []
    return [isinstance(frame, dict) and "seed" in frame for frame in frames]


def explore(
    paths: ProjectPaths,
    sprite_id: str,
    count: int,
    *,
    start: int | None = None,
    folder: str | None = None,
    servers: Sequence[str] = (),
    backend_factory: BackendFactory | None = None,
) -> ExploreResult:
    """Generate (or find in the cache) ``count`` candidates of ``sprite_id`` and write their page.

    ``servers`` (``--server``) replace the backend's server list; ``backend_factory`` makes the backend
    instead of the manifest's named one (tests inject one there)."""
    from pixelbuild.backends import create_backend
    from pixelbuild.backends.base import BackendRequest, GenerationJob
    from pixelbuild.execute.worker import PostJob, post_process
    from pixelbuild.fsguard import OutputGuard
    from pixelbuild.fsutil import atomic_write_bytes
    from pixelbuild.keys import sprite_keys
    from pixelbuild.local.store import GenerationRecord, RawImage, identity_of
    from pixelbuild.png import encode_raw
    from pixelbuild.project import open_session
    from pixelbuild.resolver import project_file_path
    from pixelbuild.review.workflow import find_generated_sprite

    session = open_session(paths)
    sprite = find_generated_sprite(session, sprite_id, "explore")
    own = _own_seeds(session, sprite)
    first = sprite.generations[0].seed if start is None else start
    if not 0 <= first < 1 << 64:
        raise ManifestError(f"--start must be between 0 and 2^64-1, got {first}")
    target = Path(folder).absolute() if folder else paths.review("explore") / re.sub(r"[^\w.-]", "_", sprite.id)

    def file_hash(ref: str) -> str:
        return session.hashes.hash(project_file_path(paths.project_dir, ref)) or ""

    seeds = [(first + offset) % (1 << 64) for offset in range(count)]
    candidates = [with_seed(sprite, seed, own) for seed in seeds]
    keys = [sprite_keys(candidate, file_hash) for candidate in candidates]
    store = session.store
    jobs: dict[str, GenerationJob] = {}
    for candidate, candidate_keys in zip(candidates, keys, strict=True):
        if store.has_action("post", candidate_keys.post):
            continue
        for key, generation in zip(candidate_keys.generations, candidate.generations, strict=True):
            if key not in jobs and not store.has_action("gen", key):
                init = project_file_path(paths.project_dir, generation.init_image) if generation.init_image else None
                workflow = project_file_path(paths.project_dir, generation.workflow_file)
                jobs[key] = GenerationJob(key, sprite.id, generation, workflow, init)
    generated = sum(1 for candidate_keys in keys if any(key in jobs for key in candidate_keys.generations))
    if jobs:
        project = session.resolved.project
        factory = backend_factory or create_backend
        backend = factory(BackendRequest(project.backend, project.backend_settings, paths.project_dir, tuple(servers)))
        try:
            backend.start(list(jobs.values()))
            for key, job in jobs.items():
                result = backend.result(key)
                images = [RawImage(store.put_blob(encode_raw(i)), i.width, i.height) for i in result.images]
                store.put_action(key, GenerationRecord(images, identity_of(result.identity), job.spec.seed))
        finally:
            backend.close()

    written: list[tuple[int, Path]] = []
    cards = []
    from pixelbuild.review.gallery import DEFAULT_FPS, Shown, export_raw, raw_figures, sprite_figure
    from pixelbuild.review.media import Exporter, png_size

    exporter = Exporter(target)
    fps = next((atlas.fps for atlas in session.resolved.atlases if sprite.id in atlas.members), DEFAULT_FPS)
    for seed, candidate, candidate_keys in zip(seeds, candidates, keys, strict=True):
        record = store.get_action("post", candidate_keys.post)
        data = store.read_blob(record.images[0].blob) if record else None
        if data is None:
            work = target / "work" / f"{candidate_keys.post[:32]}.png"
            post_process(
                PostJob(
                    store_root=str(store.root),
                    generation_keys=candidate_keys.generations,
                    chain=candidate.post,
                    layout=candidate.layout,
                    project_dir=str(paths.project_dir),
                    post_key=candidate_keys.post,
                    guard=OutputGuard(str(target)),
                    output=work.relative_to(target).as_posix(),
                )
            )
            data = work.read_bytes()
            work.unlink()
        size = png_size(data)
        if size is None:
            raise GenerationError(f"candidate with seed {seed} is not a PNG", sprite=sprite.id)
        shown = Shown(exporter.add_bytes(data), size[0], size[1])
        written.append((seed, target / shown.url))
        figures = sprite_figure(shown, candidate, fps, caption=f"seed {seed}") + raw_figures(
            export_raw(exporter, store, candidate_keys.generations)[:1]
        )
        current = " (current)" if seed == sprite.generations[0].seed else ""
        cards.append(
            f'<section class="card" data-search="seed {seed}{escape(current)}">'
            f"<h2>seed {seed}{escape(current)}</h2>"
            f"<div class=row>{figures}</div>"
            f'<p class="note">pixelbuild pin {escape(sprite.id)} {seed}</p></section>\n'
        )
    with_work = target / "work"
    if with_work.is_dir() and not any(with_work.iterdir()):
        with_work.rmdir()
    meta = f"{count} seed candidates of {escape(sprite.id)} · prompt: {escape(sprite.generations[0].prompt)}"
    html = page.page(f"explore {sprite.id}", meta, "".join(cards), search="filter by seed")
    atomic_write_bytes(target / "index.html", html.encode("utf-8"))
    exporter.prune()
    session.hashes.save()
    return ExploreResult(target / "index.html", written, generated, count - generated)
