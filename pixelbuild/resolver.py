"""Resolution: raw manifest entries → complete, explicit ``SpriteSpec``s.

Defaults are merged (built-ins ← root ``defaults`` ← each including file's ``defaults`` ← the sprite),
paths normalised and checked, workflow names turned into files, and a missing seed derived from the
sprite id, so a resolved spec says everything about how its asset is made.
"""

from __future__ import annotations

import fnmatch
import itertools
import math
import posixpath
import re
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import msgspec
import xxhash

from pixelbuild._resources import data_dir
from pixelbuild.backends import BACKENDS
from pixelbuild.backends.source import MAX_PIXELS as SOURCE_MAX_PIXELS
from pixelbuild.errors import ManifestError
from pixelbuild.fsguard import matches_keep
from pixelbuild.limits import MAX_SPRITES, Size, SizeProblem, image_size_problem
from pixelbuild.local.layout import STATE_DIR
from pixelbuild.locate import did_you_mean, located_error
from pixelbuild.manifest import Manifest, ManifestFile
from pixelbuild.names import character_problem, control_problem, id_problem, portable_path_problem, quote
from pixelbuild.pngheader import png_header_size
from pixelbuild.post import FILE_PARAMS, check_files, load_ops, normalise_post_entry
from pixelbuild.spec import AtlasSpec, GenerationSpec, Lora, PostOp, Source, SpriteSpec

if TYPE_CHECKING:
    from pixelbuild.remote.config import RemoteConfig


BUILTIN_PREFIX = "builtin:"

#: What a sprite gets when neither it nor any ``defaults`` says otherwise (the SDXL txt2img template's own
#: values, so a template and a manifest that leave a field out agree).
BUILTIN_DEFAULTS: Mapping[str, Any] = {
    "negative_prompt": "",
    "size": 1024,
    "steps": 20,
    "cfg": 8.0,
    "sampler": "euler",
    "scheduler": "normal",
    "denoise": 1.0,
    "checkpoint": "sd_xl_base_1.0.safetensors",
    "loras": [],
    "workflow": "txt2img_sdxl",
    "bindings": {},
    "post": [],
    "layout": "strip",
}

_STRICT_ID = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*(/[A-Za-z0-9_][A-Za-z0-9_.-]*)*$")
_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


class ProjectSettings(msgspec.Struct, frozen=True):
    """The manifest's ``project`` section, with defaults filled in."""

    project_dir: Path
    output: str
    backend: str
    backend_settings: Mapping[str, Any]
    workflows: str
    keep: tuple[str, ...]
    follow_output_symlink: bool = False
    #: ``project.remote``: the shared remote cache (before the environment's and command line's overrides).
    remote: RemoteConfig | None = None

    @property
    def output_dir(self) -> Path:
        """Absolute output root."""
        return self.project_dir / self.output


class Resolved(msgspec.Struct, frozen=True):
    """Every sprite of a manifest, resolved, plus the project settings and the files they read.

    ``absent`` lists project paths whose absence a resolution relied on (a workflow name that fell
    through to a built-in template): creating one of them changes the resolution. ``warnings`` are
    located one-line notes about sprites that resolve but probably not as meant (found while resolving
    a file, so a file taken from the spec cache does not repeat them).
    """

    project: ProjectSettings
    sprites: tuple[SpriteSpec, ...]
    files: tuple[str, ...]
    absent: tuple[str, ...] = ()
    by_id: Mapping[str, SpriteSpec] = msgspec.field(default_factory=dict)
    atlases: tuple[AtlasSpec, ...] = ()
    warnings: tuple[str, ...] = ()


def derive_seed(sprite_id: str) -> int:
    """A seed from the sprite id alone: stable when sprites are reordered, added or removed."""
    return xxhash.xxh3_64_intdigest(b"pixelbuild-seed\0" + sprite_id.encode("utf-8")) % (1 << 32)


def normalise_relative(path: str) -> str | None:
    """Normalise a relative POSIX path; None if it is absolute or climbs out with '..'."""
    if not path or path.startswith("/") or "\\" in path or (len(path) > 1 and path[1] == ":"):
        return None
    normal = posixpath.normpath(path)
    if normal == "." or normal == ".." or normal.startswith("../"):
        return None
    return normal


def builtin_workflow_path(name: str) -> Path:
    """Absolute path of a built-in workflow template file name (``txt2img_sdxl.json``)."""
    return data_dir("workflows") / name


def project_file_path(project_dir: Path, ref: str) -> Path:
    """Absolute path of a resolved file reference (a project path or ``builtin:<name>``)."""
    if ref.startswith(BUILTIN_PREFIX):
        return builtin_workflow_path(ref.removeprefix(BUILTIN_PREFIX))
    return project_dir / ref


class _Layer(msgspec.Struct):
    """One source of field values: a defaults mapping or the sprite itself, and where it was written."""

    file: ManifestFile
    doc_path: tuple[str | int, ...]
    values: Mapping[str, Any]


class _Resolver:
    def __init__(self, manifest: Manifest) -> None:
        self.manifest = manifest
        self.project_dir = manifest.project_dir
        self.files: dict[str, None] = {}
        self.absent: dict[str, None] = {}
        self._workflow_cache: dict[str, str | None] = {}
        self._checked_files: set[tuple[str, tuple[Any, ...]]] = set()
        self._touched_files: dict[str, None] = {}
        self._touched_absent: dict[str, None] = {}
        self._chains: dict[int, tuple[Any, tuple[tuple[PostOp, ...], tuple[str, ...]]]] = {}
        self._chains_by_text: dict[str, tuple[tuple[PostOp, ...], tuple[str, ...]]] = {}
        self._sizes: dict[tuple[Any, ...], tuple[Any, SizeProblem | None]] = {}
        self.warnings: dict[str, None] = {}
        self.claims = _OutputClaims()
        self.sprite_count = 0
        self.project = self._project_settings()
        self.max_sprites: int = manifest.root.header.get("project", {}).get("max_sprites", MAX_SPRITES)

    # ------------------------------------------------------------------ errors

    def error(self, message: str, layers: Sequence[_Layer], name: str, *suffix: str | int) -> ManifestError:
        """A located error at the layer that supplied field ``name``: the sprite, else a default."""
        sprite_layer = layers[-1]
        for layer in reversed(layers):
            if name in layer.values:
                error = located_error(message, layer.file.path, layer.file.data, (*layer.doc_path, name, *suffix))
                if layer is not sprite_layer:
                    error.message += f" (the value comes from 'defaults' in {layer.file.display})"
                    error.sprite = str(sprite_layer.values.get("id"))
                return error
        return located_error(message, sprite_layer.file.path, sprite_layer.file.data, sprite_layer.doc_path)

    # ----------------------------------------------------------------- project

    def _project_settings(self) -> ProjectSettings:
        root = self.manifest.root
        project = root.header.get("project", {})

        def folder(key: str, default: str, what: str) -> str:
            value = project.get(key, default)
            relative = normalise_relative(value)
            problem = portable_path_problem(relative) if relative is not None else None
            if relative is None and posixpath.normpath(value) == ".":
                problem = f"{what} cannot be the project folder itself"
            elif relative is None:
                problem = f"{what} must be a folder inside the project (relative, without '..')"
            elif key == "output" and relative.split("/")[0].lower() == STATE_DIR:
                problem = f"{what} cannot be inside {STATE_DIR}/, pixelbuild's local state (deleted freely)"
            elif problem is not None:
                problem = f"{what} {quote(value)} {problem}"
            if problem is not None:
                raise located_error(problem, root.path, root.data, ("project", key))
            assert relative is not None
            return relative

        output = folder("output", "assets", "the output root")
        workflows = folder("workflows", "workflows", "the workflows folder")
        backend = project.get("backend", "placeholder")
        remote = None
        if "remote" in project:
            from pixelbuild.remote.config import BadRemote, from_manifest

            try:
                remote = from_manifest(project["remote"], self.project_dir)
            except BadRemote as error:
                raise located_error(str(error), root.path, root.data, ("project", "remote")) from None
        return ProjectSettings(
            project_dir=self.project_dir,
            output=output,
            backend=backend,
            backend_settings=project.get(backend, {}),
            workflows=workflows,
            keep=tuple(project.get("keep", ())),
            follow_output_symlink=bool(project.get("follow_output_symlink", False)),
            remote=remote,
        )

    # ------------------------------------------------------------------- files

    def project_file(self, layers: Sequence[_Layer], name: str, value: str, *suffix: str | int) -> str:
        """Check that ``value`` names an existing file inside the project; return it project-relative.

        The path is relative to the manifest file that writes it (the sprite's file, or the file whose
        ``defaults`` supply the field); ``..`` may climb while the result stays inside the project.
        """
        named_in = layers[-1].file
        for layer in reversed(layers):
            if name in layer.values:
                named_in = layer.file
                break
        base = named_in.path.parent
        relative_to = f"paths are relative to the file that names them, {named_in.display}"
        problem = control_problem(value)
        if problem is None and (value.startswith("/") or "\\" in value or (len(value) > 1 and value[1] == ":")):
            problem = f"must be a relative path with '/' between names ({relative_to})"
        if problem is not None:
            raise self.error(f"{quote(value)} {problem}", layers, name, *suffix)
        try:
            absolute = (base / value).resolve()
            inside = absolute.is_relative_to(self.project_dir)
            exists = inside and absolute.is_file()
        except (OSError, ValueError, RuntimeError):  # a name too long, a symlink loop
            inside, exists = True, False
        if not inside:
            raise self.error(f"'{value}' is outside the project folder ({relative_to})", layers, name, *suffix)
        if not exists:
            looked = posixpath.normpath(posixpath.join(base.relative_to(self.project_dir).as_posix(), value))
            where = f" (looked for '{looked}': {relative_to})" if looked != posixpath.normpath(value) else ""
            raise self.error(f"file '{value}' does not exist{where}", layers, name, *suffix)
        ref = absolute.relative_to(self.project_dir).as_posix()
        self.files[ref] = None
        self._touched_files[ref] = None
        return ref

    def workflow(self, layers: Sequence[_Layer], value: str) -> str:
        """Resolve a workflow name or path to a file reference."""
        if value.endswith(".json") or "/" in value or control_problem(value) or len(value) > 200:
            return self.project_file(layers, "workflow", value)
        if value in self._workflow_cache:
            cached = self._workflow_cache[value]
            if cached is None:
                raise self._unknown_workflow(layers, value)
            self._touch_workflow(value, cached)
            return cached
        local = f"{self.project.workflows}/{value}.json"
        if (self.project_dir / local).is_file():
            ref: str | None = local
        elif builtin_workflow_path(f"{value}.json").is_file():
            ref = f"{BUILTIN_PREFIX}{value}.json"
        else:
            ref = None
        self._workflow_cache[value] = ref
        if ref is None:
            raise self._unknown_workflow(layers, value)
        self._touch_workflow(value, ref)
        return ref

    def _touch_workflow(self, name: str, ref: str) -> None:
        """Record that a sprite uses workflow ``ref`` (and, for a built-in, that no project file shadows it)."""
        self.files[ref] = None
        self._touched_files[ref] = None
        if ref.startswith(BUILTIN_PREFIX):
            local = f"{self.project.workflows}/{name}.json"
            self.absent[local] = None
            self._touched_absent[local] = None

    def _unknown_workflow(self, layers: Sequence[_Layer], value: str) -> ManifestError:
        names = {p.stem for p in data_dir("workflows").glob("*.json")}
        local_dir = self.project_dir / self.project.workflows
        if local_dir.is_dir():
            names |= {p.stem for p in local_dir.glob("*.json")}
        return self.error(
            f"unknown workflow '{value}': not in '{self.project.workflows}/' nor built in{did_you_mean(value, names)}",
            layers,
            "workflow",
        )

    # ----------------------------------------------------------------- sprites

    def sprites(self, layers: list[_Layer]) -> list[SpriteSpec]:
        """The sprite(s) of one manifest entry: one, or one per combination of its ``matrix``."""
        merged: dict[str, Any] = dict(BUILTIN_DEFAULTS)
        for layer in layers:
            merged.update(layer.values)
        matrix = merged.pop("matrix", None)
        problem = control_problem(merged["id"])
        if problem is not None:
            raise self.error(f"id {quote(merged['id'])} {problem}", layers, "id")
        count = math.prod(len(values) for values in matrix.values()) if matrix else 1
        self.count_sprites(count, layers, "matrix" if matrix else "id")
        if matrix is None:
            if not _STRICT_ID.fullmatch(merged["id"]):
                raise self.error(
                    f"id '{merged['id']}' has a '{{...}}' placeholder but the sprite has no 'matrix'", layers, "id"
                )
            return [self.sprite(layers, merged)]
        names = list(matrix)
        used = set(_PLACEHOLDER.findall(merged["id"]))
        for name in names:
            if name not in used:
                raise self.error(
                    f"matrix variable '{name}' does not appear in the id '{merged['id']}': "
                    f"write '{{{name}}}' in it so that every variant gets its own id",
                    layers,
                    "matrix",
                    name,
                )
        unknown = used - set(names)
        if unknown:
            raise self.error(f"the id uses '{{{sorted(unknown)[0]}}}', which the matrix does not define", layers, "id")
        specs = []
        for values in itertools.product(*(matrix[name] for name in names)):
            env = {name: str(value) for name, value in zip(names, values, strict=True)}
            specs.append(self.sprite(layers, _substitute(merged, env)))
        return specs

    def count_sprites(self, count: int, layers: Sequence[_Layer], name: str) -> None:
        """Add ``count`` sprites to the total; past ``project.max_sprites``, refuse them (before any is made)."""
        self.sprite_count += count
        if self.sprite_count > self.max_sprites:
            raise self.error(
                f"the manifest expands to more than {self.max_sprites:,} sprites (this entry makes {count:,}); "
                "set project.max_sprites to allow more",
                layers,
                name,
            )

    def sprite(self, layers: list[_Layer], merged: dict[str, Any]) -> SpriteSpec:
        """Resolve one sprite from its merged fields."""
        sprite_id: str = merged["id"]
        problem = id_problem(sprite_id)
        if problem is not None:
            raise self.error(f"id {quote(sprite_id)} {problem}", layers, "id")
        if not _STRICT_ID.fullmatch(sprite_id):
            raise self.error(f"id '{sprite_id}' is not well formed", layers, "id")
        if "source" in merged:
            return self._sprite_spec(layers, merged, [self.source_generation(layers, merged)])
        if "prompt" not in merged:
            raise self.error("missing required key 'prompt' (set it on the sprite or in 'defaults')", layers, "prompt")

        size = merged["size"]
        width, height = (size, size) if isinstance(size, int) else (size[0], size[1])
        loras = tuple(
            Lora(
                entry["name"],
                float(entry.get("weight", 1.0)),
                entry["sha256"].lower() if "sha256" in entry else None,
            )
            for entry in merged["loras"]
        )
        workflow_ref = self.workflow(layers, merged["workflow"])
        base_seed = merged["seed"] if "seed" in merged else derive_seed(sprite_id)
        frames = merged.get("frames", 1)
        batch_size = frames if isinstance(frames, int) else 1
        frame_overrides: list[dict[str, Any]] = [{}] if isinstance(frames, int) else frames

        generations: list[GenerationSpec] = []
        for index, overrides in enumerate(frame_overrides):
            fields = {**merged, **overrides}
            init_image = fields.get("init_image")
            if init_image is not None and "init_image" in overrides:
                init_image = self.project_file(layers, "frames", init_image, index, "init_image")
            elif init_image is not None:
                init_image = self.project_file(layers, "init_image", init_image)
            seed = overrides["seed"] if "seed" in overrides else (base_seed + index) % (1 << 64)
            generations.append(
                GenerationSpec(
                    backend=self.project.backend,
                    prompt=fields["prompt"],
                    negative_prompt=fields["negative_prompt"],
                    seed=seed,
                    width=width,
                    height=height,
                    steps=fields["steps"],
                    cfg=float(fields["cfg"]),
                    sampler=fields["sampler"],
                    scheduler=fields["scheduler"],
                    denoise=float(fields["denoise"]),
                    checkpoint=fields["checkpoint"],
                    loras=loras,
                    workflow=fields["workflow"],
                    workflow_file=workflow_ref,
                    batch_size=batch_size,
                    init_image=init_image,
                    bindings=dict(fields["bindings"]),
                )
            )

        if not isinstance(frames, int):
            self._seed_collisions(layers, sprite_id, frame_overrides, generations)
        return self._sprite_spec(layers, merged, generations)

    def _sprite_spec(
        self, layers: list[_Layer], merged: dict[str, Any], generations: Sequence[GenerationSpec]
    ) -> SpriteSpec:
        sprite_id: str = merged["id"]
        post, post_files = self.cached_post_chain(layers, merged["post"])
        layout = _layout(merged["layout"])
        first = generations[0]
        frame_count = sum(generation.batch_size for generation in generations)
        self.check_sizes(layers, (first.width, first.height), frame_count, post, layout)
        output = self.output(layers, merged.get("output", f"{sprite_id}.png"))
        sprite_layer = layers[-1]
        return SpriteSpec(
            id=sprite_id,
            generations=tuple(generations),
            post=post,
            output=output,
            source=Source(sprite_layer.file.display, sprite_layer.doc_path),
            post_files=post_files,
            layout=layout,
        )

    def _seed_collisions(
        self,
        layers: Sequence[_Layer],
        sprite_id: str,
        overrides: Sequence[Mapping[str, Any]],
        generations: Sequence[GenerationSpec],
    ) -> None:
        """Warn when a frame without a seed (the sprite's seed + its index) meets another frame's seed:
        the two are the same image unless their prompts differ. Two frames given one seed on purpose
        are left alone."""
        first: dict[int, int] = {}
        for index, generation in enumerate(generations):
            other = first.setdefault(generation.seed, index)
            if other == index or ("seed" in overrides[other] and "seed" in overrides[index]):
                continue
            implicit = other if "seed" not in overrides[other] else index
            note = self.error(
                f"frames[{other}] and frames[{index}] both run with seed {generation.seed} "
                f"(frames[{implicit}] has no seed: it gets the sprite's seed + {implicit}); "
                "give one of them another seed",
                layers,
                "frames",
                index,
            )
            self.warnings[str(note)] = None

    def check_sizes(
        self,
        layers: Sequence[_Layer],
        size: Size,
        frames: int,
        post: tuple[PostOp, ...],
        layout: Mapping[str, Any],
    ) -> None:
        """Refuse a sprite whose images (generated frames, after each post op, the sheet) would break
        the limits of ``pixelbuild.limits``, before anything is generated."""
        key = (id(post), size, frames, layout["type"], layout["columns"], layout["padding"])
        cached = self._sizes.get(key)
        if cached is not None and cached[0] is post:
            problem = cached[1]
        else:
            rules = {name: op.output_size for name, op in load_ops().items() if op.output_size is not None}
            chain = [(op.op, op.params) for op in post]
            problem = image_size_problem(size, frames, chain, rules, lambda count, each: _sheet(count, each, layout))
            self._sizes[key] = (post, problem)
        if problem is None:
            return
        if problem.step < 0:
            raise self.error(problem.message, layers, "frames" if frames > 1 else "size")
        if problem.step < len(post):
            raise self.error(problem.message, layers, "post", problem.step, post[problem.step].op)
        written = any("layout" in layer.values for layer in layers)
        raise self.error(problem.message, layers, "layout" if written else "frames")

    def source_generation(self, layers: list[_Layer], merged: Mapping[str, Any]) -> GenerationSpec:
        """The one "generation" of a hand-drawn sprite: its PNG (or sheet), checked and measured now.

        Generator fields (prompt, seed, ...) are neither required nor hashed: ``eject`` leaves them in
        the entry as a record of how the sprite was first made.
        """
        value = merged["source"]
        settings: Mapping[str, Any] = {"file": value} if isinstance(value, str) else value
        at: tuple[str, ...] = () if isinstance(value, str) else ("file",)
        if "frames" in merged:
            raise self.error(
                "a 'source' sprite takes its frames from its file: write source: {file: ..., frame_size: [w, h]} "
                "instead of 'frames'",
                layers,
                "frames",
            )
        ref = self.project_file(layers, "source", settings["file"], *at)
        for managed in (self.project.output, STATE_DIR):
            if ref.startswith(f"{managed}/"):
                raise self.error(
                    f"source '{settings['file']}' is inside '{managed}/', which pixelbuild writes; keep hand-drawn "
                    "sprites elsewhere (e.g. art/)",
                    layers,
                    "source",
                    *at,
                )
        try:
            with (self.project_dir / ref).open("rb") as handle:
                size = png_header_size(handle.read(24))
        except OSError as error:
            raise self.error(
                f"cannot read source '{settings['file']}' ({error.strerror})", layers, "source", *at
            ) from None
        if size is None:
            raise self.error(f"source '{settings['file']}' is not a PNG file", layers, "source", *at)
        width, height = size
        if width * height > SOURCE_MAX_PIXELS or 0 in size:
            raise self.error(
                f"source '{settings['file']}' is {width}x{height}; at most {SOURCE_MAX_PIXELS} pixels",
                layers,
                "source",
                *at,
            )
        frame = settings.get("frame_size")
        if frame is None:
            if "frames" in settings:
                raise self.error("'frames' needs 'frame_size' to cut the sheet", layers, "source", "frames")
            frame_size, count = (width, height), 1
        else:
            frame_size = (frame, frame) if isinstance(frame, int) else (frame[0], frame[1])
            if width % frame_size[0] or height % frame_size[1]:
                raise self.error(
                    f"the {width}x{height} sheet '{settings['file']}' is not a whole number of "
                    f"{frame_size[0]}x{frame_size[1]} frames",
                    layers,
                    "source",
                    "frame_size",
                )
            cells = (width // frame_size[0]) * (height // frame_size[1])
            count = settings.get("frames", cells)
            if count > cells:
                raise self.error(
                    f"the sheet '{settings['file']}' holds {cells} frames of {frame_size[0]}x{frame_size[1]}, "
                    f"not {count}",
                    layers,
                    "source",
                    "frames",
                )
        return GenerationSpec(
            backend="source",
            prompt="",
            negative_prompt="",
            seed=0,
            width=frame_size[0],
            height=frame_size[1],
            steps=0,
            cfg=0.0,
            sampler="",
            scheduler="",
            denoise=1.0,
            checkpoint="",
            loras=(),
            workflow="",
            workflow_file="",
            batch_size=count,
            source_file=ref,
            frame_size=frame_size,
        )

    def cached_post_chain(
        self, layers: Sequence[_Layer], entries: Sequence[Any]
    ) -> tuple[tuple[PostOp, ...], tuple[str, ...]]:
        """``post_chain``, once per chain: sprites that take their chain from one ``defaults`` share that very
        list, and normalising it 10,000 times would cost more than the whole no-op build; chains written
        alike on many sprites (``- resize: {size: 16}``) are normalised once too."""
        cached = self._chains.get(id(entries))
        if cached is not None and cached[0] is entries:
            # The chain's files are read by this manifest file's sprites too (its spec cache must know).
            self._touched_files.update(dict.fromkeys(cached[1][1]))
            return cached[1]
        # By its text: repr tells 1 from 1.0 and True, which the ops' checks may treat differently.
        text = repr(entries)
        result = self._chains_by_text.get(text)
        if result is None:
            result = self.post_chain(layers, entries)
            if not result[1]:  # a chain naming files resolves them relative to its own manifest file
                self._chains_by_text[text] = result
        self._chains[id(entries)] = (entries, result)
        return result

    def post_chain(
        self, layers: Sequence[_Layer], entries: Sequence[Any]
    ) -> tuple[tuple[PostOp, ...], tuple[str, ...]]:
        chain: list[PostOp] = []
        files: list[str] = []
        for index, entry in enumerate(entries):
            try:
                op = normalise_post_entry(entry, check=True)
            except ValueError as problem:
                raise self.error(str(problem), layers, "post", index) from None
            for param in FILE_PARAMS.get(op.op, ()):
                value = op.params.get(param)
                if isinstance(value, str):
                    ref = self.project_file(layers, "post", value, index, op.op, param)
                    files.append(ref)
                    op = PostOp(op.op, {**op.params, param: ref})
            if files and op.op in FILE_PARAMS:
                self._check_files(op)
            chain.append(op)
        return tuple(chain), tuple(files)

    def _check_files(self, op: PostOp) -> None:
        """Parse the files an op reads (palette files) once per run, so a bad one fails validation."""
        refs = tuple(op.params.get(param) for param in FILE_PARAMS[op.op])
        if (op.op, refs) in self._checked_files:
            return
        check_files(op, lambda ref: (self.project_dir / ref).read_bytes())
        self._checked_files.add((op.op, refs))

    def output(self, layers: Sequence[_Layer], value: str) -> str:
        """Check a sprite's output path (relative to the output root, portable, a .png); return it normalised."""
        where = "output" if "output" in layers[-1].values else "id"
        problem = character_problem(value)
        if problem is not None:
            raise self.error(f"output {quote(value)} {problem}", layers, where)
        normal = normalise_relative(value)
        if normal is None:
            raise self.error(
                f"output '{value}' must stay inside the output root '{self.project.output}' "
                "(a relative path without '..')",
                layers,
                where,
            )
        if not normal.endswith(".png"):
            raise self.error(f"output '{value}' must be a .png file", layers, "output")
        problem = portable_path_problem(normal)
        if problem is not None:
            raise self.error(f"output '{normal}' {problem}", layers, where)
        return normal

    def resolve(self, cache: SpecCache | None = None, only: Collection[Path] | None = None) -> Resolved:
        sprites: list[SpriteSpec] = []
        seen_ids: dict[str, SpriteSpec] = {}
        pending: list[tuple[ManifestFile, list[Mapping[str, Any]], list[SpriteSpec], list[str], list[str]]] = []
        defaults_of: dict[Path, list[_Layer]] = {}
        for manifest_file in self.manifest.files:
            inherited = self._inherited_defaults(manifest_file, defaults_of)
            own = list(inherited)
            if "defaults" in manifest_file.header:
                own.append(_Layer(manifest_file, ("defaults",), manifest_file.header["defaults"]))
            defaults_of[manifest_file.path] = own
            if only is not None and manifest_file.path not in only:
                continue  # it lends its defaults, not its sprites
            defaults = [layer.values for layer in own]
            cached = cache.lookup(manifest_file, defaults, self.project) if cache is not None else None
            if cached is not None:
                specs, refs, absent = cached
                self.files.update(dict.fromkeys(refs))
                self.absent.update(dict.fromkeys(absent))
                try:
                    for spec in specs:
                        where = _Layer(manifest_file, spec.source.path, {"id": spec.id})
                        self.count_sprites(1, [*own, where], "id")
                        self._register(spec, [*own, where], {}, seen_ids)
                except ManifestError:
                    raise _CachedSpriteRefused from None
                sprites.extend(specs)
                continue
            self._touched_files, self._touched_absent = {}, {}
            specs = []
            for index, entry in enumerate(manifest_file.sprites):
                layers = [*own, _Layer(manifest_file, ("sprites", index), entry)]
                for spec in self.sprites(layers):
                    self._register(spec, layers, entry, seen_ids)
                    specs.append(spec)
            sprites.extend(specs)
            pending.append((manifest_file, defaults, specs, list(self._touched_files), list(self._touched_absent)))
        # An atlas lists sprites of every file: it is resolved only with all of them.
        atlases = self.atlases(sprites) if only is None else ()
        # Only a manifest that resolves in full is cached: a bad one leaves no trace on disk.
        if cache is not None:
            for manifest_file, defaults, specs, refs, absent in pending:
                cache.add(manifest_file, defaults, self.project, specs, refs, absent)
        return Resolved(
            project=self.project,
            sprites=tuple(sprites),
            files=tuple(sorted(self.files)),
            absent=tuple(sorted(self.absent)),
            by_id=seen_ids,
            atlases=atlases,
            warnings=tuple(self.warnings),
        )

    def atlases(self, sprites: Sequence[SpriteSpec]) -> tuple[AtlasSpec, ...]:
        """Resolve every ``atlases`` entry: members from ids and globs, outputs checked for clashes."""
        ids = [sprite.id for sprite in sprites]
        result: list[AtlasSpec] = []
        seen: set[str] = set()
        for manifest_file in self.manifest.files:
            for index, entry in enumerate(manifest_file.header.get("atlases", ())):
                problem = id_problem(entry["id"])
                if problem is not None:
                    raise _atlas_error(manifest_file, index, entry, f"the id {problem}", "id")
                if entry["id"] in seen:
                    raise _atlas_error(manifest_file, index, entry, f"duplicate atlas id '{entry['id']}'", "id")
                seen.add(entry["id"])
                members: dict[str, None] = {}
                for position, pattern in enumerate(entry["sprites"]):
                    matches = sorted(i for i in ids if fnmatch.fnmatchcase(i, pattern))
                    if not matches:
                        raise _atlas_error(
                            manifest_file, index, entry, f"'{pattern}' matches no sprite", "sprites", position
                        )
                    members.update(dict.fromkeys(matches))
                value = entry.get("output", f"atlases/{entry['id']}.png")
                where = "output" if "output" in entry else "id"
                problem = character_problem(value)
                if problem is not None:
                    raise _atlas_error(manifest_file, index, entry, f"output {quote(value)} {problem}", where)
                output = normalise_relative(value)
                if output is None or not output.endswith(".png"):
                    raise _atlas_error(
                        manifest_file, index, entry, "output must be a .png path inside the output root", where
                    )
                size = entry.get("max_size", 2048)
                atlas = AtlasSpec(
                    id=entry["id"],
                    members=tuple(members),
                    output=output,
                    formats=tuple(entry.get("formats", ["texturepacker-hash"])),
                    max_size=(size, size) if isinstance(size, int) else (size[0], size[1]),
                    power_of_two=entry.get("power_of_two", False),
                    padding=entry.get("padding", 1),
                    extrude=entry.get("extrude", 0),
                    fps=float(entry.get("fps", 10)),
                    source=Source(manifest_file.display, ("atlases", index)),
                )
                for path in atlas.outputs():
                    pattern = matches_keep(path, self.project.keep)
                    if pattern is not None:
                        kept = f"writes {path}, which 'keep: {pattern}' reserves for files pixelbuild leaves alone"
                        raise _atlas_error(manifest_file, index, entry, kept, where)
                    problem = portable_path_problem(path)
                    message = f"output '{path}' {problem}" if problem else self.claims.claim(path, atlas)
                    if message is not None:
                        raise _atlas_error(manifest_file, index, entry, message, where)
                result.append(atlas)
        return tuple(result)

    def _register(
        self, spec: SpriteSpec, layers: Sequence[_Layer], entry: Mapping[str, Any], seen_ids: dict[str, SpriteSpec]
    ) -> None:
        """Reject a second sprite with the same id, an output that clashes with another's, or an output that
        a ``keep`` glob reserves for files pixelbuild does not manage."""
        if spec.id in seen_ids:
            first = seen_ids[spec.id]
            message = f"duplicate id '{spec.id}' (first used by sprite '{first.id}' in {first.source.file})"
            raise self.error(message, layers, "id")
        seen_ids[spec.id] = spec
        pattern = matches_keep(spec.output, self.project.keep)
        if pattern is not None:
            raise self.error(
                f"output '{spec.output}' matches 'keep: {pattern}' in the project settings: files there are not "
                "pixelbuild's to write; choose another output or narrow the 'keep' glob",
                layers,
                "output" if "output" in entry or "output" in layers[-1].values else "id",
            )
        problem = self.claims.claim(spec.output, spec)
        if problem is not None:
            raise self.error(problem, layers, "output" if "output" in entry else "id")

    def _inherited_defaults(
        self, manifest_file: ManifestFile, defaults_of: Mapping[Path, list[_Layer]]
    ) -> list[_Layer]:
        for parent in self.manifest.files:
            if manifest_file.path in parent.includes:
                return defaults_of.get(parent.path, [])
        return []


def _atlas_error(
    manifest_file: ManifestFile, index: int, entry: Mapping[str, Any], message: str, *where: str | int
) -> ManifestError:
    """A located error about the ``index``-th atlas of ``manifest_file``."""
    error = located_error(message, manifest_file.path, manifest_file.data, ("atlases", index, *where))
    error.sprite = None
    error.message = f"atlas '{entry['id']}': {message}"
    return error


class _OutputClaims:
    """Every path the build writes, and every folder they need, case-insensitively (not every disk
    tells ``Hero.png`` from ``hero.png``): no output may be another's file or folder."""

    def __init__(self) -> None:
        self.files: dict[str, SpriteSpec | AtlasSpec] = {}
        self.folders: dict[str, SpriteSpec | AtlasSpec] = {}

    @staticmethod
    def owner(spec: SpriteSpec | AtlasSpec) -> str:
        """How a message names the sprite or atlas that claimed a path."""
        if isinstance(spec, SpriteSpec):
            return f"sprite '{spec.id}' in {spec.source.file}"
        return f"atlas '{spec.id}'"

    def claim(self, path: str, owner: SpriteSpec | AtlasSpec) -> str | None:
        """Record that ``owner`` writes ``path``; or say why it cannot (recording nothing)."""
        key = path.lower()
        if key in self.files:
            return f"duplicate output '{path}' (first used by {self.owner(self.files[key])})"
        if key in self.folders:
            first = self.owner(self.folders[key])
            return f"output '{path}' would be a file where {first} needs a folder of that name"
        parts = key.split("/")
        folders = ["/".join(parts[:end]) for end in range(1, len(parts))]
        for folder in folders:
            if folder in self.files:
                first = self.owner(self.files[folder])
                return f"output '{path}' needs a folder '{folder}', but {first} writes a file there"
        self.files[key] = owner
        for folder in folders:
            self.folders.setdefault(folder, owner)
        return None


def _sheet(count: int, frame: Size, layout: Mapping[str, Any]) -> Size:
    """The size of a sheet of ``count`` frames of size ``frame`` laid out as ``layout`` says."""
    from pixelbuild.sheets import layout_frames

    sheet = layout_frames([frame] * count, layout["type"], layout["columns"], int(layout["padding"]))
    return sheet.width, sheet.height


def _substitute(value: Any, env: Mapping[str, str]) -> Any:
    """Replace ``{name}`` placeholders of ``env`` in every string inside ``value`` (keys excepted)."""
    if isinstance(value, str):
        return _PLACEHOLDER.sub(lambda match: env.get(match.group(1), match.group(0)), value)
    if isinstance(value, list):
        return [_substitute(item, env) for item in value]
    if isinstance(value, dict):
        return {key: _substitute(item, env) for key, item in value.items()}
    return value


def _layout(value: str | Mapping[str, Any]) -> Mapping[str, Any]:
    """Normalise a ``layout`` field to ``{type, columns, padding}`` (columns None: as many as frames)."""
    layout = {"type": value} if isinstance(value, str) else dict(value)
    return {"type": layout.get("type", "strip"), "columns": layout.get("columns"), "padding": layout.get("padding", 0)}


class _CachedSpriteRefused(Exception):
    """A sprite taken from the spec cache clashes with another or passes a limit: the error must come from
    its file's YAML, which knows which field to point at, not from the cached spec."""


class SpecCache(Protocol):
    """Resolved sprites of unchanged manifest files, kept between runs (see ``pixelbuild.local.speccache``)."""

    def lookup(
        self, manifest_file: ManifestFile, defaults: Sequence[Mapping[str, Any]], project: ProjectSettings
    ) -> tuple[Sequence[SpriteSpec], Sequence[str], Sequence[str]] | None:
        """The file's specs, the files they read and the paths whose absence they rely on, if still valid."""
        ...

    def add(
        self,
        manifest_file: ManifestFile,
        defaults: Sequence[Mapping[str, Any]],
        project: ProjectSettings,
        specs: Sequence[SpriteSpec],
        refs: Sequence[str],
        absent: Sequence[str],
    ) -> None:
        """Hand over a file's fresh resolution (kept once the keys stage has computed its keys)."""
        ...


def resolve(manifest: Manifest, cache: SpecCache | None = None, only: Collection[Path] | None = None) -> Resolved:
    """Resolve every sprite of ``manifest``; raise a located ManifestError on the first problem.

    With ``cache``, a file whose bytes, inherited defaults and referenced files are unchanged is not
    resolved again. With ``only``, the sprites of those files alone (by path) are resolved, and checked
    against each other only: the other files lend their defaults and settings, and no atlas is resolved.
    """
    try:
        resolved = _Resolver(manifest).resolve(cache, only)
    except _CachedSpriteRefused:
        # The cache keeps no YAML positions: resolving without it names the field a cold run names.
        resolved = _Resolver(manifest).resolve(None, only)
    if resolved.warnings:
        import logging  # only to warn: ~2 ms of every edit build otherwise

        for warning in resolved.warnings:
            logging.getLogger("pixelbuild").warning("pixelbuild: warning: %s", warning)
    if resolved.project.backend not in BACKENDS:
        root = manifest.root
        raise located_error(
            f"backend '{resolved.project.backend}' is not available in this installation",
            root.path,
            root.data,
            ("project", "backend"),
        )
    return resolved
