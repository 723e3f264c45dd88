"""Three-way merge of lock files, entry by entry: the git merge driver behind ``pixelbuild merge-lock``.

The lock is derived data, so a conflict in it is never resolved by hand. An entry changed on one side
only takes that side (a deletion included). An entry changed differently on both sides is a conflict: it
keeps the version of the side whose image git leaves in the working tree (this branch's, or the other's
where this branch deleted it), so pixelbuild still owns that file and may replace it; its keys match
neither branch's merged manifest, so ``check`` calls it stale and the next build redoes it. Two entries
that would write one file are both dropped. The merged lock is always one that ``parse_lock`` accepts,
and ``%A`` is replaced atomically, or not at all.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from pixelbuild.errors import ManifestError
from pixelbuild.fsutil import atomic_write_bytes
from pixelbuild.lock import AtlasEntry, Lock, LockEntry, parse_lock, render_lock

#: Larger inputs are refused: a lock of 10,000 sprites is about 4 MB (300,000 fit), a crafted one may be any size.
MAX_LOCK_BYTES = 128 * 1024 * 1024

_Entry = TypeVar("_Entry", LockEntry, AtlasEntry)


@dataclass(frozen=True, slots=True)
class MergeResult:
    """The merged lock, the entries both sides changed (kept from one side, to be redone) and the entries
    dropped because two of them would write one file (sprite ids; atlas ids apart)."""

    lock: Lock
    conflicting_sprites: tuple[str, ...]
    conflicting_atlases: tuple[str, ...]
    dropped_sprites: tuple[str, ...] = ()
    dropped_atlases: tuple[str, ...] = ()

    @property
    def conflicting(self) -> tuple[str, ...]:
        """Every conflicting entry, as ``check`` names it (``atlas ID`` for atlases)."""
        return self.conflicting_sprites + tuple(f"atlas {atlas_id}" for atlas_id in self.conflicting_atlases)

    @property
    def dropped(self) -> tuple[str, ...]:
        """Every dropped entry, as ``check`` names it (``atlas ID`` for atlases)."""
        return self.dropped_sprites + tuple(f"atlas {atlas_id}" for atlas_id in self.dropped_atlases)


def _same(left: LockEntry | AtlasEntry | None, right: LockEntry | AtlasEntry | None) -> bool:
    if left is None or right is None:
        return left is right
    return left.to_json() == right.to_json()


def _merge_section(
    base: Mapping[str, _Entry], ours: Mapping[str, _Entry], theirs: Mapping[str, _Entry]
) -> tuple[dict[str, _Entry], list[str]]:
    merged: dict[str, _Entry] = {}
    conflicting: list[str] = []
    for entry_id in sorted(set(base) | set(ours) | set(theirs)):
        old, mine, other = base.get(entry_id), ours.get(entry_id), theirs.get(entry_id)
        if _same(mine, other) or _same(old, other):
            chosen = mine
        elif _same(old, mine):
            chosen = other
        else:
            # Both changed, differently (a deletion against a change counts). Git leaves this branch's image
            # in the working tree (the other's where this branch deleted it): keep the entry that owns it.
            conflicting.append(entry_id)
            chosen = mine if mine is not None else other
        if chosen is not None:
            merged[entry_id] = chosen
    return merged, conflicting


def _claimed_twice(lock: Lock) -> set[str]:
    """Output paths that two entries of ``lock`` claim (possible after a merge: two sprites added apart)."""
    owners: dict[str, int] = {}
    outputs = [e.outputs for e in lock.sprites.values()] + [e.outputs for e in lock.atlases.values()]
    for records in outputs:
        for output in records:
            owners[output.path] = owners.get(output.path, 0) + 1
    return {path for path, count in owners.items() if count > 1}


def merge_locks(base: Lock, ours: Lock, theirs: Lock) -> MergeResult:
    """Merge ``ours`` and ``theirs`` against their common ancestor ``base``, entry by entry."""
    sprites, conflicting_sprites = _merge_section(base.sprites, ours.sprites, theirs.sprites)
    atlases, conflicting_atlases = _merge_section(base.atlases, ours.atlases, theirs.atlases)
    merged = Lock(sprites, atlases)
    # Entries taken from different sides may write the same file; neither can be trusted then.
    clashing = _claimed_twice(merged)
    dropped_sprites: list[str] = []
    dropped_atlases: list[str] = []
    if clashing:
        for section, dropped in ((merged.sprites, dropped_sprites), (merged.atlases, dropped_atlases)):
            for entry_id in [i for i, e in section.items() if any(o.path in clashing for o in e.outputs)]:
                del section[entry_id]
                dropped.append(entry_id)
    return MergeResult(
        merged,
        tuple(c for c in conflicting_sprites if c in merged.sprites),
        tuple(c for c in conflicting_atlases if c in merged.atlases),
        tuple(sorted(dropped_sprites)),
        tuple(sorted(dropped_atlases)),
    )


def _read_side(path: Path, role: str, *, empty_ok: bool) -> Lock:
    display = f"{path} ({role})"
    try:
        with path.open("rb") as handle:
            raw = handle.read(MAX_LOCK_BYTES + 1)
    except OSError as error:
        raise ManifestError(f"cannot read the lock file ({error.strerror or error})", file=display) from None
    if len(raw) > MAX_LOCK_BYTES:
        raise ManifestError(f"the lock file is larger than {MAX_LOCK_BYTES // 2**20} MiB; refusing it", file=display)
    if not raw.strip() and empty_ok:
        return Lock()  # git hands an empty file for a lock that the common ancestor did not have
    try:
        return parse_lock(raw, display)
    except ManifestError:
        raise
    except Exception as error:  # parse_lock's contract is ManifestError; a crafted file must not crash us
        raise ManifestError(f"the lock file has a malformed entry ({type(error).__name__})", file=display) from None


def _checked_bytes(lock: Lock) -> bytes:
    """Render ``lock`` and have the lock parser accept the bytes, as every later command will read them."""
    raw = render_lock(lock)
    parse_lock(raw, "the merged lock")
    return raw


def merge_lock_files(base: Path, ours: Path, theirs: Path) -> MergeResult:
    """Merge three lock files as a git merge driver does: the result replaces ``ours`` (git's ``%A``).

    Raises ManifestError, writing nothing, if any of the three cannot be read as a lock.
    """
    result = merge_locks(
        _read_side(base, "the common ancestor", empty_ok=True),
        _read_side(ours, "this branch", empty_ok=False),
        _read_side(theirs, "the branch being merged", empty_ok=False),
    )
    atomic_write_bytes(ours, _checked_bytes(result.lock), durable=True)
    return result


def merge_report(result: MergeResult) -> dict[str, Any]:
    """The result as a JSON-ready document."""
    return {
        "ok": True,
        "sprites": len(result.lock.sprites),
        "atlases": len(result.lock.atlases),
        "conflicting": list(result.conflicting_sprites),
        "conflicting_atlases": list(result.conflicting_atlases),
        "dropped": list(result.dropped_sprites),
        "dropped_atlases": list(result.dropped_atlases),
    }


def merge_message(result: MergeResult, name: str | None = None) -> str:
    """One line for people: what conflicted or was dropped, and what happens next; or that all merged."""
    prefix = f"pixelbuild merge-lock: {name}: " if name else "pixelbuild merge-lock: "
    if not result.conflicting and not result.dropped:
        return f"{prefix}merged {len(result.lock.sprites)} sprites, no conflict"
    parts = []
    if result.conflicting:
        count = len(result.conflicting)
        parts.append(
            f"{count} entr{'y' if count == 1 else 'ies'} changed on both branches: {', '.join(result.conflicting)} "
            "(kept as the image git leaves in the working tree)"
        )
    if result.dropped:
        parts.append(f"dropped {', '.join(result.dropped)} (two entries would write one file)")
    return (
        prefix
        + "; ".join(parts)
        + "; until the next 'pixelbuild build' redoes them, 'pixelbuild check' lists them"
    )
