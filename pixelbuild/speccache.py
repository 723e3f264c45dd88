"""Resolved sprites and their keys per manifest file, kept between runs under ``.pixelbuild/state``.

A large project splits its manifest over many included files; after an edit of one, the others need
neither resolving nor hashing again. An entry is found by the file's bytes, the defaults it inherits and
the project settings, and is used only while every file its sprites read (workflow templates, init
images, palette files) still has the content it had, and every path whose absence it relied on is
still absent.
"""

from __future__ import annotations

import contextlib
import os
import pickle
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from pixelbuild import __version__
from pixelbuild.hashing import canonical_json, hash_text
from pixelbuild.keys import KEY_VERSION, SpriteKeys, sprite_keys
from pixelbuild.manifest import ManifestFile
from pixelbuild.resolver import ProjectSettings
from pixelbuild.spec import SpriteSpec

#: Maps a file reference to its content hash (None if it is gone).
RefHasher = Callable[[str], str | None]


class SpecCache:
    """Pickled ``(specs, keys, refs, absent)`` per manifest file; ``keys`` collects every sprite's keys."""

    def __init__(self, root: Path, file_hash: RefHasher, project_dir: Path) -> None:
        self.root = root
        self.file_hash = file_hash
        self.project_dir = project_dir
        self.keys: dict[str, SpriteKeys] = {}

    def _key(self, manifest_file: ManifestFile, defaults: Sequence[Mapping[str, Any]], project: ProjectSettings) -> str:
        return hash_text(
            canonical_json(
                [
                    __version__,
                    KEY_VERSION,
                    manifest_file.digest,
                    # Paths in a file are relative to it: the same bytes elsewhere resolve differently.
                    os.path.relpath(manifest_file.path, self.project_dir.resolve()),
                    list(defaults),
                    [project.backend, project.workflows, project.output],
                ]
            )
        )

    def lookup(
        self, manifest_file: ManifestFile, defaults: Sequence[Mapping[str, Any]], project: ProjectSettings
    ) -> tuple[Sequence[SpriteSpec], Sequence[str], Sequence[str]] | None:
        """The cached resolution of ``manifest_file``, if it is still valid."""
        path = self.root / f"{self._key(manifest_file, defaults, project)}.pickle"
        try:
            with open(path, "rb") as handle:
                specs, keys, refs, absent = pickle.load(handle)
        except (OSError, EOFError, pickle.UnpicklingError, ValueError, TypeError, AttributeError, ImportError):
            return None
        if any(self.file_hash(ref) != digest for ref, digest in refs.items()):
            return None
        if any((self.project_dir / missing).exists() for missing in absent):
            return None
        for spec, spec_keys in zip(specs, keys, strict=True):
            self.keys[spec.id] = spec_keys
        return specs, list(refs), absent

    def store(
        self,
        manifest_file: ManifestFile,
        defaults: Sequence[Mapping[str, Any]],
        project: ProjectSettings,
        specs: Sequence[SpriteSpec],
        refs: Sequence[str],
        absent: Sequence[str],
    ) -> None:
        """Compute the keys of a freshly resolved file's sprites and remember both (best effort)."""
        from pixelbuild.fsutil import atomic_write_bytes

        def must_hash(ref: str) -> str:
            digest = self.file_hash(ref)
            if digest is None:
                from pixelbuild.errors import ManifestError

                raise ManifestError(f"file '{ref}' disappeared while pixelbuild was reading the project")
            return digest

        keys = [sprite_keys(spec, must_hash) for spec in specs]
        for spec, spec_keys in zip(specs, keys, strict=True):
            self.keys[spec.id] = spec_keys
        ref_hashes = {ref: must_hash(ref) for ref in refs}
        payload = pickle.dumps((list(specs), keys, ref_hashes, list(absent)), protocol=pickle.HIGHEST_PROTOCOL)
        with contextlib.suppress(OSError):
            atomic_write_bytes(self.root / f"{self._key(manifest_file, defaults, project)}.pickle", payload)
