"""The plan: for every sprite, what a build must do and why, from keys vs lock vs files vs cache.

Pure: the state of the files on disk and of the cache comes in as functions, so ``plan``, ``build`` and
``check`` share one decision procedure.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping
from enum import StrEnum

import msgspec

from pixelbuild.backends import backend_info
from pixelbuild.keys import SpriteKeys
from pixelbuild.lock import AtlasEntry, Lock, LockEntry, OutputRecord
from pixelbuild.spec import AtlasSpec, SpriteSpec


class Action(StrEnum):
    """What a build does with one sprite, cheapest first."""

    UP_TO_DATE = "up-to-date"
    RESTORE = "restore"  # the post-processed result exists (cache or old file): just write it
    POST = "post"  # the raw generation is cached: post-process it again
    GENERATE = "generate"  # the generator must run
    PACK = "pack"  # an atlas must be packed again
    REMOVE = "remove"  # the sprite (or atlas) left the manifest: delete its outputs


class FileState(StrEnum):
    """How an output on disk compares with its lock record."""

    OK = "ok"
    MISSING = "missing"
    MODIFIED = "modified"


class Staleness(msgspec.Struct, frozen=True):
    """How a sprite's (or an atlas's) lock entry and outputs compare with the manifest: what plan, build
    and check all judge by. Outputs are looked at only when the keys match."""

    locked: bool = True
    #: The keys differ: what changed, in words.
    changed: tuple[str, ...] = ()
    #: The recorded outputs that are not as the lock says, with their state.
    outputs: tuple[tuple[str, FileState], ...] = ()
    #: The output paths the lock records, when the manifest now names others.
    moved_from: tuple[str, ...] | None = None

    @property
    def up_to_date(self) -> bool:
        """True when nothing needs doing."""
        return self.locked and not self.changed and not self.outputs and self.moved_from is None


class Decision(msgspec.Struct, frozen=True):
    """The plan for one sprite. ``missing`` lists the generation keys the generator must produce."""

    sprite_id: str
    action: Action
    reasons: tuple[str, ...] = ()
    missing: tuple[str, ...] = ()
    restore_from_files: bool = False
    #: Why the build must not write this sprite's output (a file pixelbuild does not own is there).
    blocked: str | None = None
    #: What made it stale (None for a removal).
    staleness: Staleness | None = None


class AtlasDecision(msgspec.Struct, frozen=True):
    """The plan for one atlas: up to date, restore (from the cache), pack, or remove."""

    atlas_id: str
    action: Action
    reasons: tuple[str, ...] = ()
    key: str = ""
    blocked: str | None = None
    #: What made it stale (None for a removal).
    staleness: Staleness | None = None


class Plan(msgspec.Struct):
    """Decisions for every sprite of the manifest, then removals (sorted by id); then the atlases."""

    decisions: list[Decision] = msgspec.field(default_factory=list)
    atlases: list[AtlasDecision] = msgspec.field(default_factory=list)

    @property
    def stale_atlases(self) -> list[AtlasDecision]:
        """The atlas decisions that need work."""
        return [decision for decision in self.atlases if decision.action is not Action.UP_TO_DATE]

    def count(self, action: Action) -> int:
        """How many sprites get ``action``."""
        return sum(1 for decision in self.decisions if decision.action is action)

    @property
    def stale(self) -> list[Decision]:
        """The decisions that need work."""
        return [decision for decision in self.decisions if decision.action is not Action.UP_TO_DATE]

    @property
    def generation_keys(self) -> list[str]:
        """Every generation key the generator must produce, once each, in plan order."""
        return list(dict.fromkeys(key for decision in self.decisions for key in decision.missing))


#: Manifest names of the generation inputs (``keys.generation_inputs``), for "what changed" messages.
_FIELD_NAMES: Mapping[str, str] = {
    "width": "size",
    "height": "size",
    "batch_size": "batch",
    "workflow_file": "workflow",
    "source_file": "source",
    "frame_size": "source frame_size",
    "post": "post chain",
}


def changed_fields(old: Mapping[str, str], new: Mapping[str, str]) -> list[str]:
    """Manifest-level names of the fields whose digests differ, in a stable order."""
    names: dict[str, None] = {}
    for name in sorted(set(old) | set(new)):
        if old.get(name) != new.get(name):
            prefix, _, leaf = name.rpartition(".")
            label = _FIELD_NAMES.get(leaf, leaf)
            if leaf.startswith("file:"):
                label = f"file {leaf.removeprefix('file:')}"
            names[f"{prefix}.{label}" if prefix else label] = None
    return list(names)


def _describe_change(entry: LockEntry, keys: SpriteKeys, sprite: SpriteSpec) -> list[str]:
    fields = changed_fields(entry.fields, keys.fields)
    if "backend" in fields:
        old = entry.backend.get("name", "?")
        new = sprite.generations[0].backend
        return [f"backend changed ({old} → {new})" if old != new else "backend version changed"]
    if fields:
        return [f"{', '.join(fields)} changed"]
    if entry.generation_keys != keys.generations:
        return ["generator version changed"]
    return ["post-processing version changed"]


def decide(
    sprite: SpriteSpec,
    keys: SpriteKeys,
    entry: LockEntry | None,
    file_state: Callable[[OutputRecord], FileState],
    has_post: Callable[[str], bool],
    has_generation: Callable[[str], bool],
    foreign: Callable[[str], str | None] = lambda path: None,
) -> Decision:
    """Decide what to do with one sprite.

    ``foreign(path)`` says why writing ``path`` would clobber a file pixelbuild does not own (or None);
    such a sprite is planned as usual but ``blocked``, and the reason is shown.
    """
    decision = _decide(sprite, keys, entry, file_state, has_post, has_generation)
    if decision.action is Action.UP_TO_DATE:
        return decision
    problem = foreign(sprite.output)
    if problem is None:
        return decision
    return msgspec.structs.replace(decision, reasons=(*decision.reasons, problem), blocked=problem)


def assess(
    sprite: SpriteSpec,
    keys: SpriteKeys,
    entry: LockEntry | None,
    file_state: Callable[[OutputRecord], FileState],
) -> Staleness:
    """Compare a sprite's lock entry with its keys and, when they match, its outputs with the lock."""
    if entry is None:
        return Staleness(locked=False)
    if entry.post_key != keys.post or entry.generation_keys != keys.generations:
        return Staleness(changed=tuple(_describe_change(entry, keys, sprite)))
    # Lean: this runs for every sprite of every plan and check, and nearly all are up to date.
    states = [(output.path, file_state(output)) for output in entry.outputs]
    changed = tuple([(path, state) for path, state in states if state is not FileState.OK])
    old_paths = tuple([path for path, _state in states])
    moved_from = old_paths if old_paths != (sprite.output,) else None
    if not changed and moved_from is None:
        return _UP_TO_DATE
    return Staleness(outputs=changed, moved_from=moved_from)


_UP_TO_DATE = Staleness()


def _decide(
    sprite: SpriteSpec,
    keys: SpriteKeys,
    entry: LockEntry | None,
    file_state: Callable[[OutputRecord], FileState],
    has_post: Callable[[str], bool],
    has_generation: Callable[[str], bool],
) -> Decision:
    staleness = assess(sprite, keys, entry, file_state)
    if staleness is _UP_TO_DATE or staleness.up_to_date:
        return Decision(sprite.id, Action.UP_TO_DATE, staleness=staleness)
    reasons: list[str] = []
    if not staleness.locked:
        reasons.append("new sprite")
    reasons.extend(staleness.changed)
    reasons.extend(f"output {path} is {state.value}" for path, state in staleness.outputs)
    if staleness.moved_from is not None:
        reasons.append(f"output moved from {', '.join(staleness.moved_from)} to {sprite.output}")
    keys_match = staleness.locked and not staleness.changed
    if has_post(keys.post):
        return Decision(sprite.id, Action.RESTORE, tuple(reasons), staleness=staleness)
    if keys_match and not staleness.outputs:
        return Decision(sprite.id, Action.RESTORE, tuple(reasons), restore_from_files=True, staleness=staleness)
    missing = tuple(key for key in dict.fromkeys(keys.generations) if not has_generation(key))
    if not missing:
        return Decision(sprite.id, Action.POST, tuple(reasons), staleness=staleness)
    if not any(backend_info(generation.backend).generator for generation in sprite.generations):
        # A hand-drawn sprite: its "generation" is reading a project file, part of post-processing.
        return Decision(sprite.id, Action.POST, tuple(reasons), missing, staleness=staleness)
    return Decision(sprite.id, Action.GENERATE, tuple(reasons), missing, staleness=staleness)


def decide_atlas(
    atlas: AtlasSpec,
    key: str,
    entry: AtlasEntry | None,
    changed_members: Iterable[str],
    file_state: Callable[[OutputRecord], FileState],
    has_pack: Callable[[str], bool],
    foreign: Callable[[str], str | None] = lambda path: None,
) -> AtlasDecision:
    """Decide what to do with one atlas (``foreign`` as for ``decide``)."""
    staleness = assess_atlas(atlas, key, entry, changed_members, file_state)
    if staleness.up_to_date:
        return AtlasDecision(atlas.id, Action.UP_TO_DATE, key=key, staleness=staleness)
    reasons: list[str] = [] if staleness.locked else ["new atlas"]
    reasons.extend(staleness.changed)
    reasons.extend(f"output {path} is {state.value}" for path, state in staleness.outputs)
    if staleness.moved_from is not None:
        reasons.append("outputs changed")
    action = Action.RESTORE if has_pack(key) else Action.PACK
    problems = [problem for path in atlas.outputs() if (problem := foreign(path)) is not None]
    if problems:
        return AtlasDecision(atlas.id, action, (*reasons, *problems), key, "; ".join(problems), staleness)
    return AtlasDecision(atlas.id, action, tuple(reasons), key, staleness=staleness)


def assess_atlas(
    atlas: AtlasSpec,
    key: str,
    entry: AtlasEntry | None,
    changed_members: Iterable[str],
    file_state: Callable[[OutputRecord], FileState],
) -> Staleness:
    """Compare an atlas's lock entry with its pack key and, when they match, its outputs with the lock."""
    if entry is None:
        return Staleness(locked=False)
    if entry.pack_key != key:
        added = [m for m in atlas.members if m not in entry.members]
        dropped = [m for m in entry.members if m not in atlas.members]
        changed = [m for m in changed_members if m in entry.members and m in atlas.members]
        groups = ((added, "added"), (dropped, "removed"), (changed, "changed"))
        what = [_members(members, verb) for members, verb in groups if members]
        return Staleness(changed=tuple(what) or ("atlas settings changed",))
    outputs = [(output.path, file_state(output)) for output in entry.outputs]
    old_paths = tuple(output.path for output in entry.outputs)
    return Staleness(
        outputs=tuple((path, state) for path, state in outputs if state is not FileState.OK),
        moved_from=old_paths if old_paths != tuple(atlas.outputs()) else None,
    )


def _members(ids: list[str], verb: str) -> str:
    """``member a changed``, ``members a, b changed`` (at most five named)."""
    shown = ", ".join(ids[:5]) + (f" and {len(ids) - 5} more" if len(ids) > 5 else "")
    return f"member{'s' if len(ids) > 1 else ''} {shown} {verb}"


def make_plan(
    sprites: Iterable[SpriteSpec],
    keys: Mapping[str, SpriteKeys],
    lock: Lock,
    file_state: Callable[[OutputRecord], FileState],
    has_post: Callable[[str], bool],
    has_generation: Callable[[str], bool],
    atlases: Iterable[tuple[AtlasSpec, str]] = (),
    has_pack: Callable[[str], bool] = lambda key: False,
    foreign: Callable[[str], str | None] = lambda path: None,
    rebuilt: Collection[str] = (),
) -> Plan:
    """Plan a build of ``sprites`` (and ``(atlas, pack key)`` pairs) against ``lock``: a decision per
    sprite, then one per removed sprite; one per atlas, then one per removed atlas.

    ``rebuilt``: sprites whose entry in ``lock`` comes from an unfolded journal (an interrupted build
    finished them, and atlases are packed last): an atlas holding one was packed with its old version."""
    plan = Plan()
    present: set[str] = set()
    for sprite in sprites:
        present.add(sprite.id)
        plan.decisions.append(
            decide(
                sprite, keys[sprite.id], lock.sprites.get(sprite.id), file_state, has_post, has_generation, foreign
            )
        )
    for sprite_id in sorted(set(lock.sprites) - present):
        plan.decisions.append(Decision(sprite_id, Action.REMOVE, ("no longer in the manifest",)))
    changed = [
        d.sprite_id
        for d in plan.decisions
        if d.sprite_id in lock.sprites
        and (d.sprite_id in rebuilt or lock.sprites[d.sprite_id].post_key != keys.get(d.sprite_id, _NO_KEYS).post)
    ]
    atlas_ids: set[str] = set()
    for atlas, key in atlases:
        atlas_ids.add(atlas.id)
        plan.atlases.append(
            decide_atlas(atlas, key, lock.atlases.get(atlas.id), changed, file_state, has_pack, foreign)
        )
    for atlas_id in sorted(set(lock.atlases) - atlas_ids):
        plan.atlases.append(AtlasDecision(atlas_id, Action.REMOVE, ("no longer in the manifest",)))
    return plan


_NO_KEYS = SpriteKeys((), "", {})
