"""Resolved sprites and their keys per manifest file, kept between runs (``.pixelbuild/state/resolved``).

A large project splits its manifest over many included files; after an edit of one, the others need
neither resolving nor hashing again. An entry (JSON data, never code) is found by the file's bytes, the
defaults it inherits and the project settings, and is used only while every file its sprites read
(workflow templates, init images, palette files) still has the content it had, and every path whose
absence it relied on is still absent.

The cache computes nothing: the resolver hands it each freshly resolved file (``add``), the keys stage
(``pixelbuild.keys.compute_keys``) computes the keys, and ``save`` stores both as given.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import msgspec

from pixelbuild._version import __version__
from pixelbuild.fsguard import all_confined, confined_path_problem
from pixelbuild.hashing import canonical_json, hash_text
from pixelbuild.keys import KEY_VERSION, RefHasher, SpriteKeys
from pixelbuild.local.seal import read_regular, seal, unseal
from pixelbuild.manifest import ManifestFile
from pixelbuild.notices import warn_once
from pixelbuild.resolver import BUILTIN_PREFIX, ProjectSettings
from pixelbuild.spec import Source, SpriteSpec

#: Bumped whenever the layout of an entry changes: an entry of another format is ignored.
CACHE_FORMAT = 1
#: The largest entry read back (a 10,000-sprite file makes ~10 MB).
MAX_ENTRY_BYTES = 256 << 20

#: A fresh resolution waiting for its keys: (file, inherited defaults, project settings, specs, refs, absent).
_Fresh = tuple[ManifestFile, list[Mapping[str, Any]], ProjectSettings, list[SpriteSpec], list[str], list[str]]
#: One entry: (format, specs, their keys, {file ref: content hash}, paths whose absence was relied on).
_Entry = tuple[int, list[SpriteSpec], list[SpriteKeys], dict[str, str], list[str]]
_ENCODER = msgspec.json.Encoder()
_KEYS = re.compile(r"(?:[0-9a-f]{32})*")
_DECODER = msgspec.json.Decoder(_Entry)


class _Foreign(ValueError):
    """An entry that decodes but is not one pixelbuild wrote (a path escapes, counts disagree, ...)."""


class SpecCache:
    """JSON ``(specs, keys, refs, absent)`` per manifest file; ``keys`` collects the keys of every sprite
    found here (the keys stage computes the others).

    The entries are data, checked on read: typed decoding (msgspec), then every path they name must be a
    normalised path inside the project (outputs inside the output root). A damaged or foreign entry is
    ignored (one warning) and rebuilt by resolving the file again. Entries a worker process made
    (``sealed`` there, ``stage`` here) are read from memory, checked the same way, and written by ``save``.
    """

    def __init__(self, root: Path, file_hash: RefHasher, project_dir: Path) -> None:
        self.root = root
        self.file_hash = file_hash
        self.project_dir = project_dir
        self.keys: dict[str, SpriteKeys] = {}
        self._fresh: list[_Fresh] = []
        self._staged: dict[Path, bytes] = {}

    def _path(
        self, manifest_file: ManifestFile, defaults: Sequence[Mapping[str, Any]], project: ProjectSettings
    ) -> Path:
        key = hash_text(
            canonical_json(
                [
                    __version__,
                    KEY_VERSION,
                    manifest_file.digest,
                    # Paths in a file are relative to it: the same bytes elsewhere resolve differently.
                    os.path.relpath(manifest_file.path, self.project_dir.resolve()),
                    list(defaults),
                    [project.backend, project.workflows, project.output, list(project.keep)],
                ]
            )
        )
        return self.root / f"{key}.json"

    def lookup(
        self, manifest_file: ManifestFile, defaults: Sequence[Mapping[str, Any]], project: ProjectSettings
    ) -> tuple[Sequence[SpriteSpec], Sequence[str], Sequence[str]] | None:
        """The cached resolution of ``manifest_file``, if it is still valid."""
        path = self._path(manifest_file, defaults, project)
        raw = self._staged.get(path)
        try:
            raw = read_regular(str(path), MAX_ENTRY_BYTES) if raw is None else raw
        except FileNotFoundError:
            return None
        except OSError:  # too large, a FIFO, ...: damaged
            raw = b""
        # Sealed: an entry this user's pixelbuild did not write is damaged or foreign, whatever it holds.
        raw = unseal("spec", path.name, raw) or b""
        try:
            version, specs, keys, refs, absent = _DECODER.decode(raw)
            if version != CACHE_FORMAT:
                return None
            _check_entry(specs, keys, refs, absent)
        except (msgspec.DecodeError, _Foreign):
            warn_once("speccache", f"ignored a damaged entry of pixelbuild's resolution cache ({path}); redoing it")
            return None
        if any(self.file_hash(ref) != digest for ref, digest in refs.items()):
            return None
        if any((self.project_dir / missing).exists() for missing in absent):
            return None
        display = manifest_file.display
        if any(spec.source.file != display for spec in specs):
            # Shown relative to the working folder, which may differ from the run that wrote the entry.
            specs = [msgspec.structs.replace(spec, source=Source(display, spec.source.path)) for spec in specs]
        for spec, spec_keys in zip(specs, keys, strict=True):
            self.keys[spec.id] = spec_keys
        return specs, list(refs), absent

    def add(
        self,
        manifest_file: ManifestFile,
        defaults: Sequence[Mapping[str, Any]],
        project: ProjectSettings,
        specs: Sequence[SpriteSpec],
        refs: Sequence[str],
        absent: Sequence[str],
    ) -> None:
        """Hold a freshly resolved file's specs until ``save`` is given their keys."""
        self._fresh.append((manifest_file, list(defaults), project, list(specs), list(refs), list(absent)))

    def has_entry(
        self, manifest_file: ManifestFile, defaults: Sequence[Mapping[str, Any]], project: ProjectSettings
    ) -> bool:
        """Whether an entry for ``manifest_file`` is on disk (sound or not: ``lookup`` tells)."""
        return self._path(manifest_file, defaults, project).exists()

    def save(self, keys: Mapping[str, SpriteKeys]) -> None:
        """Store every file ``add`` holds, with its sprites' ``keys`` as given, and the staged entries (best
        effort: a cache write never fails a build)."""
        from pixelbuild.fsutil import atomic_write_bytes

        staged, self._staged = self._staged, {}
        for path, data in [*staged.items(), *self.sealed(keys)]:
            with contextlib.suppress(OSError):
                atomic_write_bytes(path, data)

    def sealed(self, keys: Mapping[str, SpriteKeys]) -> list[tuple[Path, bytes]]:
        """The entries ``save`` would write for every file ``add`` holds, sealed, written nowhere (a worker
        process hands them to the process that keeps them)."""
        fresh, self._fresh = self._fresh, []
        entries: list[tuple[Path, bytes]] = []
        for manifest_file, defaults, project, specs, refs, absent in fresh:
            digests = {ref: self.file_hash(ref) for ref in refs}
            known = {ref: digest for ref, digest in digests.items() if digest is not None}
            if len(known) != len(digests) or any(spec.id not in keys for spec in specs):
                continue  # a file went away meanwhile: the next run resolves this one again
            entry = (CACHE_FORMAT, specs, [keys[spec.id] for spec in specs], known, absent)
            try:
                payload = _ENCODER.encode(entry)
                # Only what comes back exactly is kept (a tuple in free-form params would come back a list).
                if _DECODER.decode(payload) != entry:
                    continue
            except (msgspec.EncodeError, msgspec.DecodeError, TypeError, ValueError):
                continue
            path = self._path(manifest_file, defaults, project)
            entries.append((path, seal("spec", path.name, payload)))
        return entries

    def stage(self, entries: Iterable[tuple[Path, bytes]]) -> None:
        """Serve ``entries`` (what ``sealed`` gave in a worker process) to ``lookup``, and write them on ``save``."""
        self._staged.update(entries)


def _check_ref(ref: str) -> None:
    if ref.startswith(BUILTIN_PREFIX):
        name = ref.removeprefix(BUILTIN_PREFIX)
        if "/" in name or confined_path_problem(name) is not None:
            raise _Foreign(f"bad built-in reference {ref!r}")
    elif confined_path_problem(ref) is not None:
        raise _Foreign(f"bad file reference {ref!r}")


def _check_entry(
    specs: Sequence[SpriteSpec],
    keys: Sequence[SpriteKeys],
    refs: Mapping[str, str],
    absent: Sequence[str],
) -> None:
    """Raise ``_Foreign`` unless every path of the entry stays inside the project (outputs: the output root)
    and every key is a key (checked in batches: this runs for every cached sprite of a one-change build)."""
    if len(specs) != len(keys):
        raise _Foreign("specs and keys disagree")
    joined = "".join([spec_keys.post + "".join(spec_keys.generations) for spec_keys in keys])
    if len(joined) != 32 * sum(1 + len(spec_keys.generations) for spec_keys in keys) or not _KEYS.fullmatch(joined):
        raise _Foreign("a key is not a key")
    outputs = [spec.output for spec in specs]
    if not all_confined(outputs) or not all(output.endswith(".png") for output in outputs):
        raise _Foreign("an output is not a safe .png path")
    files = {*refs, *absent}
    for spec in specs:
        files.update(spec.post_files)
        for generation in spec.generations:
            if generation.workflow_file:  # '' for a hand-drawn source: it reads no workflow
                files.add(generation.workflow_file)
            if generation.init_image is not None:
                files.add(generation.init_image)
    for ref in files:
        _check_ref(ref)
