"""Read manifest files: YAML → JSON Schema validation → documents, with errors located to file:line.

Each file (the root ``pixelbuild.yaml`` and every file it includes) is parsed and validated on its
own, and the validated document is cached under ``.pixelbuild/state/manifests`` by the digest of its
bytes: an unchanged file is never parsed twice. Line numbers are worked out only when an error needs
one (``pixelbuild.locate``).
"""

from __future__ import annotations

import glob
import math
import operator
import os
import re
from collections.abc import Callable, Mapping
from functools import cache
from pathlib import Path
from typing import Any

import msgspec
import yaml

from pixelbuild.errors import ManifestError
from pixelbuild.hashing import hash_bytes
from pixelbuild.limits import MAX_MANIFEST_BYTES, MAX_YAML_NODES
from pixelbuild.local.layout import MANIFEST_NAME
from pixelbuild.local.parsecache import ParseCache
from pixelbuild.locate import display_path, located_error
from pixelbuild.schema_errors import best_error, schema_error
from pixelbuild.schemas import inlined, manifest_schema, post_ops_schema

try:  # the C parser is ~3x faster; fall back where libyaml is missing
    from yaml import CSafeLoader as _BaseLoader
except ImportError:  # pragma: no cover
    from yaml import SafeLoader as _BaseLoader  # type: ignore[assignment]


class ManifestFile:
    """One parsed and validated manifest file.

    ``header`` is the document without its ``sprites``; those load on first use of ``sprites`` or
    ``data``, so a build that finds a file's sprites in the spec cache never holds them in memory.
    """

    __slots__ = (
        "_load_sprites",
        "_sprites",
        "digest",
        "display",
        "header",
        "include_globs",
        "includes",
        "is_root",
        "path",
    )

    def __init__(
        self,
        *,
        path: Path,
        display: str,
        digest: str,
        header: Mapping[str, Any],
        sprites: Callable[[], list[Any]] | list[Any],
        includes: tuple[Path, ...],
        include_globs: tuple[tuple[str, str, tuple[str, ...]], ...],  # (base folder, pattern, matches)
        is_root: bool,
    ) -> None:
        self.path = path
        self.display = display
        self.digest = digest
        self.header = header
        self._sprites: list[Any] | None = sprites if isinstance(sprites, list) else None
        self._load_sprites = None if isinstance(sprites, list) else sprites
        self.includes = includes
        self.include_globs = include_globs
        self.is_root = is_root

    @property
    def sprites(self) -> list[Any]:
        """The raw sprite entries of this file."""
        if self._sprites is None:
            assert self._load_sprites is not None
            self._sprites = self._load_sprites()
        return self._sprites

    @property
    def data(self) -> Mapping[str, Any]:
        """The whole validated document."""
        return {**self.header, "sprites": self.sprites}


class Manifest(msgspec.Struct, frozen=True):
    """The root manifest file and all files it includes, root first, in include order."""

    project_dir: Path
    files: tuple[ManifestFile, ...]

    @property
    def root(self) -> ManifestFile:
        """The root manifest file."""
        return self.files[0]


class _LoadError(Exception):
    """A YAML-level problem found while constructing Python objects, with its position."""

    def __init__(self, message: str, mark: yaml.Mark) -> None:
        super().__init__(message)
        self.message = message
        self.mark = mark


class _StrictLoader(_BaseLoader):
    """Safe YAML loader that rejects duplicate keys, non-string keys and numbers that are not finite
    (``.nan``, ``.inf``, or too many digits for Python to read)."""

    def __init__(self, stream: str | bytes) -> None:
        super().__init__(stream)
        self._tags: dict[str, str] = {}
        if not self.yaml_path_resolvers:
            # The C composer calls these two for every node; without path resolvers PyYAML's do nothing but
            # cost a Python call each (~25 ms of 10,000 sprites). A C function that ignores its arguments
            # does the same nothing.
            self.descend_resolver = operator.is_  # type: ignore[assignment]
            self.ascend_resolver = tuple  # type: ignore[assignment]

    def resolve(self, kind: type[yaml.Node], value: Any, implicit: Any) -> str:
        """The tag of a node, as PyYAML's resolver gives it, worked out once per distinct plain scalar: the C
        parser asks for every node, and a manifest repeats its keys and many values on every sprite."""
        if self.yaml_path_resolvers:  # none in a safe loader: without them, only a plain scalar's text counts
            return str(super().resolve(kind, value, implicit))  # type: ignore[no-untyped-call]
        if kind is not yaml.ScalarNode:
            return self.DEFAULT_SEQUENCE_TAG if kind is yaml.SequenceNode else self.DEFAULT_MAPPING_TAG
        if not implicit[0]:  # quoted, or tagged '!': text
            return self.DEFAULT_SCALAR_TAG
        tag = self._tags.get(value)
        if tag is None:
            tag = self._tags[value] = str(super().resolve(kind, value, implicit))  # type: ignore[no-untyped-call]
        return tag

    def construct_yaml_float(self, node: yaml.ScalarNode) -> float:
        value: float = super().construct_yaml_float(node)
        if not math.isfinite(value):
            raise _LoadError(f"'{node.value}' is not a finite number (quote it if you mean text)", node.start_mark)
        return value

    def construct_yaml_int(self, node: yaml.ScalarNode) -> int:
        try:
            value: int = super().construct_yaml_int(node)
        except ValueError:  # Python refuses to read ints of more than 4,300 digits
            raise _LoadError(f"a number of {len(node.value):,} digits is too long", node.start_mark) from None
        return value

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[str] = set()
        for key_node, _value_node in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=True)
            if not isinstance(key, str):
                raise _LoadError(f"mapping keys must be text, got {key!r}", key_node.start_mark)
            if key in seen:
                raise _LoadError(f"duplicate key '{key}'", key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


_StrictLoader.add_constructor("tag:yaml.org,2002:float", _StrictLoader.construct_yaml_float)
_StrictLoader.add_constructor("tag:yaml.org,2002:int", _StrictLoader.construct_yaml_int)

_STR = "tag:yaml.org,2002:str"
_MAP = "tag:yaml.org,2002:map"
_SEQ = "tag:yaml.org,2002:seq"
_MERGE = "tag:yaml.org,2002:merge"
#: The strict loader's constructors of numbers, booleans and null (by tag).
_SCALARS: dict[str, Callable[[_StrictLoader, yaml.ScalarNode], Any]] = {
    f"tag:yaml.org,2002:{name}": _StrictLoader.yaml_constructors[f"tag:yaml.org,2002:{name}"]
    for name in ("int", "float", "bool", "null")
}


def _construct(loader: _StrictLoader, node: yaml.Node) -> Any:
    """The Python value of a composed node: what ``loader.construct_document`` gives, with the same checks.

    Text, mappings and lists (nearly every node of a manifest) are built here directly, a few times
    faster than PyYAML's constructor, and numbers, booleans and null by the strict loader's constructors
    of them; any other node (merge keys, other tags) goes through the strict loader's ``construct_object``.
    """
    tag = node.tag
    if tag == _STR and isinstance(node, yaml.ScalarNode):
        value: str = node.value
        return value
    if tag == _MAP and isinstance(node, yaml.MappingNode):
        keys: list[str] = []
        seen: set[str] = set()
        for key_node, _value_node in node.value:
            if key_node.tag == _STR and isinstance(key_node, yaml.ScalarNode):
                key = key_node.value
            elif key_node.tag == _MERGE:
                return loader.construct_object(node, deep=True)
            else:
                key = loader.construct_object(key_node, deep=True)
                if not isinstance(key, str):
                    raise _LoadError(f"mapping keys must be text, got {key!r}", key_node.start_mark)
            if key in seen:
                raise _LoadError(f"duplicate key '{key}'", key_node.start_mark)
            seen.add(key)
            keys.append(key)
        values = [_construct(loader, value_node) for _key_node, value_node in node.value]
        return dict(zip(keys, values, strict=True))
    if tag == _SEQ and isinstance(node, yaml.SequenceNode):
        return [_construct(loader, item) for item in node.value]
    scalar = _SCALARS.get(tag)
    if scalar is not None and isinstance(node, yaml.ScalarNode):
        return scalar(loader, node)  # what construct_object would call, without its bookkeeping
    return loader.construct_object(node, deep=True)


# --------------------------------------------------------------------------------------------- schema


def _fragment_schema(root: Mapping[str, Any]) -> dict[str, Any]:
    """The schema of an included file: the root's ``fragment`` definition."""
    return {"$schema": root["$schema"], "$ref": root["$id"] + "#/$defs/fragment"}


@cache
def _fast_validator(is_root: bool) -> Any:
    """The compiled validator (jsonschema-rs) of a root manifest or of an included file: a verdict on a
    10,000-sprite manifest in milliseconds, where jsonschema takes seconds. It only says whether a document
    is valid; the errors come from ``_validators``. Each is compiled when first needed (an edit build that
    reads one included file needs only that one's)."""
    import jsonschema_rs

    # The files as they are: jsonschema-rs resolves references itself, at compile time (inlining them
    # costs more than it saves here; every "$ref" has only annotations beside it, so both read the same).
    root, post_ops = manifest_schema(), post_ops_schema()
    registry = jsonschema_rs.Registry([(root["$id"], root), (post_ops["$id"], post_ops)])
    return jsonschema_rs.Draft202012Validator(root if is_root else _fragment_schema(root), registry=registry)


def _surely_valid(data: Mapping[str, Any], *, is_root: bool) -> bool:
    """Whether the compiled validator accepts ``data``; False when it cannot tell (a value that is not
    JSON, such as a YAML date, or a number past 64 bits). jsonschema has the last word on False: the two
    disagree in corners (a pattern's ``$`` matches before a final line break in Python only)."""
    try:
        return bool(_fast_validator(is_root).is_valid(data))
    except (ValueError, TypeError, OverflowError, RecursionError):
        return False


@cache
def _validators() -> tuple[Any, Any]:
    from jsonschema import Draft202012Validator
    from referencing import Registry, Resource

    root, post_ops = inlined()
    registry: Registry[Any] = Registry().with_resources(
        [
            (root["$id"], Resource.from_contents(root)),
            (post_ops["$id"], Resource.from_contents(post_ops)),
        ]
    )
    return (
        Draft202012Validator(root, registry=registry),
        Draft202012Validator(_fragment_schema(root), registry=registry),
    )


# ------------------------------------------------------------------------------------------ validation


def validate_document(data: Any, path: Path, *, is_root: bool) -> None:
    """Raise a located ManifestError when ``data`` does not match the manifest schema."""
    if not isinstance(data, Mapping):
        kind = "an empty file" if data is None else f"{type(data).__name__}"
        raise ManifestError(
            f"a manifest must be a mapping with 'version: 1' and 'sprites:', got {kind}",
            file=display_path(path),
            line=1,
        )
    if _surely_valid(data, is_root=is_root):
        return
    root_validator, fragment_validator = _validators()
    errors = list((root_validator if is_root else fragment_validator).iter_errors(data))
    if errors:
        raise schema_error(best_error(errors), path, data)


# --------------------------------------------------------------------------------------------- loading


def _position(raw: bytes, offset: int) -> tuple[int, int]:
    """1-based (line, column) of byte ``offset`` in ``raw`` (columns count characters)."""
    start = raw.rfind(b"\n", 0, offset) + 1
    return raw.count(b"\n", 0, offset) + 1, len(raw[start:offset].decode("utf-8", "replace")) + 1


def _decode(raw: bytes, path: Path) -> str | bytes:
    """The text of a manifest: UTF-8 (UTF-16 and UTF-32 with a byte-order mark go to the parser as
    they are); bytes that are not UTF-8 are an error at their line and column."""
    if raw.startswith((b"\xff\xfe", b"\xfe\xff", b"\x00\x00\xfe\xff")):
        return raw
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as error:
        line, column = _position(raw, error.start)
        raise ManifestError(
            f"the file is not UTF-8 text: byte 0x{raw[error.start]:02X} cannot be read (save the file as UTF-8)",
            file=display_path(path),
            line=line,
            column=column,
        ) from None


#: A YAML anchor (``&name``) as it starts a value, searched in the bytes after a line break; a '&' inside
#: text ("salt & pepper", "R&D") is not one. The '&' comes first so that the search skips to each '&'
#: (testing every position for what may precede one took ~0.4 ms per 30 kB file).
_ANCHOR = re.compile(rb"&(?<=[\s\[{,]&)[^\s,\[\]{}]")


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [child for pair in node.value for child in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []


def _check_expansion(root: yaml.Node, path: Path) -> None:
    """Refuse a document that contains itself through an alias, or whose aliases expand it to more than
    ``MAX_YAML_NODES`` nodes: every later stage (schema, resolution) walks the expanded tree."""
    sizes: dict[int, int] = {}
    active: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, done = stack.pop()
        key = id(node)
        if done:
            active.discard(key)
            sizes[key] = min(MAX_YAML_NODES + 1, 1 + sum(sizes[id(child)] for child in _children(node)))
            continue
        if key in sizes:
            continue
        if key in active:
            mark = node.start_mark
            raise ManifestError(
                "this value contains itself through an alias ('*'), so it never ends",
                file=display_path(path),
                line=mark.line + 1,
                column=mark.column + 1,
            )
        active.add(key)
        stack.append((node, True))
        stack.extend((child, False) for child in _children(node) if id(child) not in sizes)
    if sizes[id(root)] <= MAX_YAML_NODES:
        return
    # Point at the smallest value over the limit, where the expansion crosses it (at the whole document's
    # largest part when only the whole is over).
    node = root
    while children := _children(node):
        largest = max(children, key=lambda child: sizes[id(child)])
        if sizes[id(largest)] <= MAX_YAML_NODES:
            node = largest if node is root else node
            break
        node = largest
    how = " through its aliases ('*name')" if len(sizes) <= MAX_YAML_NODES else ""
    raise ManifestError(
        f"this value expands to more than {MAX_YAML_NODES:,} YAML nodes{how}, over the limit for one manifest "
        "file (see 'Limits' in the README)",
        file=display_path(path),
        line=node.start_mark.line + 1,
        column=node.start_mark.column + 1,
    )


def parse_yaml(raw: bytes, path: Path) -> Any:
    """Parse YAML bytes with the strict loader; syntax problems become a located ManifestError.

    The node tree is composed first and sized (aliases expanded) before any Python object is built.
    """
    text = _decode(raw, path)
    loader = _StrictLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        # A file without anchors has as many nodes as it has values, which its size bounds.
        if len(raw) > MAX_YAML_NODES or _ANCHOR.search(b"\n" + raw):
            _check_expansion(node, path)
        return _construct(loader, node)
    except _LoadError as error:
        raise ManifestError(
            error.message, file=display_path(path), line=error.mark.line + 1, column=error.mark.column + 1
        ) from None
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        detail = " ".join(part for part in (error.context, error.problem) if part)
        raise ManifestError(
            f"YAML syntax error: {detail}",
            file=display_path(path),
            line=mark.line + 1 if mark else None,
            column=mark.column + 1 if mark else None,
        ) from None
    except yaml.reader.ReaderError as error:
        # libyaml counts the offset in the UTF-8 bytes it reads.
        encoded = text.encode("utf-8") if isinstance(text, str) else raw
        line, column = _position(encoded, error.position)
        character = f"U+{error.character:04X}" if isinstance(error.character, int) else repr(error.character)
        raise ManifestError(
            f"the character {character} is not allowed in YAML ({error.reason})",
            file=display_path(path),
            line=line,
            column=column,
        ) from None
    except yaml.YAMLError as error:
        raise ManifestError(f"YAML error: {error}", file=display_path(path)) from None
    except RecursionError:
        raise ManifestError("the YAML is nested too deeply to read", file=display_path(path)) from None
    finally:
        loader.dispose()


def read_manifest_bytes(path: Path) -> bytes:
    """Read a manifest file, turning a missing, unreadable or oversized file into a ManifestError."""
    from pixelbuild.local.seal import NotRegularFile, read_regular

    try:
        try:
            return read_regular(str(path), MAX_MANIFEST_BYTES)
        except NotRegularFile:
            if not path.is_file():  # a FIFO would hang the read, a device never end it
                raise ManifestError(
                    "this is not a regular file (a folder, a FIFO or a device)", file=display_path(path)
                ) from None
            raise ManifestError(
                f"the file is larger than {MAX_MANIFEST_BYTES // (1024 * 1024)} MiB, the limit for one manifest "
                "file (split it with 'include:'; see 'Limits' in the README)",
                file=display_path(path),
            ) from None
    except FileNotFoundError:
        hint = ""
        if path.name == MANIFEST_NAME:
            hint = " (run pixelbuild in the folder that holds it, or pass -C DIR or --manifest PATH)"
        raise ManifestError(f"manifest not found{hint}", file=display_path(path)) from None
    except OSError as error:
        raise ManifestError(f"cannot read manifest: {error.strerror}", file=display_path(path)) from None


def _is_file(path: Path) -> bool:
    """Whether ``path`` is a file; False too for a name the file system cannot even look up (too long)."""
    try:
        return path.is_file()
    except (OSError, ValueError):
        return False


def _expand_includes(
    manifest_file: Path, data: Mapping[str, Any], project_dir: Path
) -> tuple[tuple[Path, ...], tuple[tuple[str, str, tuple[str, ...]], ...]]:
    base = manifest_file.parent
    found: list[Path] = []
    globs: list[tuple[str, str, tuple[str, ...]]] = []
    for index, pattern in enumerate(data.get("include", ())):
        doc_path = ("include", index)
        if os.path.isabs(pattern):
            raise located_error("include paths must be relative to this file", manifest_file, data, doc_path)
        if glob.has_magic(pattern):
            matches = tuple(sorted(glob.glob(pattern, root_dir=base, recursive=True)))
            if not matches:
                raise located_error(f"'{pattern}' matches no file", manifest_file, data, doc_path)
            globs.append((str(base), pattern, matches))
        else:
            matches = (pattern,)
            if not _is_file(base / pattern):
                raise located_error(f"included file '{pattern}' does not exist", manifest_file, data, doc_path)
        for match in matches:
            target = (base / match).resolve()
            if not target.is_relative_to(project_dir):
                raise located_error(
                    f"included file '{match}' is outside the project folder", manifest_file, data, doc_path
                )
            found.append(target)
    return tuple(found), tuple(globs)


def load_file(path: Path, project_dir: Path, cache: ParseCache, *, is_root: bool) -> ManifestFile:
    """Read, parse (or fetch from the cache) and validate one manifest file."""
    raw = read_manifest_bytes(path)
    digest = hash_bytes(raw)
    cached = cache.get(digest, is_root)
    sprites: Callable[[], list[Any]] | list[Any]
    if cached is None:
        data = parse_yaml(raw, path)
        validate_document(data, path, is_root=is_root)
        cache.put(digest, is_root, data)
        header = {key: value for key, value in data.items() if key != "sprites"}
        sprites = list(data.get("sprites", ()))
    else:
        header, sprites = cached
    includes, include_globs = _expand_includes(path, header, project_dir)
    return ManifestFile(
        path=path,
        display=display_path(path),
        digest=digest,
        header=header,
        sprites=sprites,
        includes=includes,
        include_globs=include_globs,
        is_root=is_root,
    )


def load_manifest(path: Path, cache_dir: Path | None = None, *, parse_cache: ParseCache | None = None) -> Manifest:
    """Load the root manifest at ``path`` and, depth first, every file it includes.

    Validated documents are cached under ``cache_dir``, or in ``parse_cache`` when given.
    """
    path = path.resolve()
    project_dir = path.parent
    cache = parse_cache if parse_cache is not None else ParseCache(cache_dir)
    files: list[ManifestFile] = []
    seen: dict[Path, Path] = {}

    def visit(file_path: Path, parent: Path | None, is_root: bool) -> None:
        if file_path in seen:
            raise ManifestError(
                f"'{display_path(file_path)}' is included more than once "
                f"(already by '{display_path(seen[file_path])}')",
                file=display_path(parent or file_path),
            )
        seen[file_path] = parent or file_path
        manifest_file = load_file(file_path, project_dir, cache, is_root=is_root)
        files.append(manifest_file)
        for include in manifest_file.includes:
            visit(include, file_path, False)

    visit(path, None, True)
    return Manifest(project_dir=project_dir, files=tuple(files))
