"""The build report as ``build --json`` prints it: one rendering, for full builds (``BuildReport.to_json``)
and for the no-op fast path, which must not import the builder (so: plain arguments)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal, get_args

from pixelbuild.errors import one_paragraph

#: The stages of image work a build times apart from its own work (``pixelbuild.execute`` measures them):
#: the generator backend, the post-processing chain, atlas packing.
Stage = Literal["generating", "post_processing", "packing"]
STAGES: tuple[Stage, ...] = get_args(Stage)


def report_document(
    *,
    ok: bool = True,
    noop: bool = False,
    generated: int = 0,
    fetched: int = 0,
    generator_calls: int = 0,
    post_processed: int = 0,
    restored: int = 0,
    removed: int = 0,
    packed: int = 0,
    up_to_date: int = 0,
    failures: Mapping[str, str] | None = None,
    warnings: Sequence[str] = (),
    interrupted: bool = False,
    seconds: float = 0.0,
    timings: Mapping[Stage, float] | None = None,
) -> dict[str, Any]:
    """A build report's JSON document (without ``error``, which says why it failed with an exit code).

    Failure messages become one paragraph each; seconds are rounded to milliseconds. ``timings``: seconds
    per stage of image work, by name (every stage is listed, 0 when it did not run).
    """
    return {
        "ok": ok,
        "noop": noop,
        "generated": generated,
        "fetched": fetched,
        "generator_calls": generator_calls,
        "post_processed": post_processed,
        "restored": restored,
        "removed": removed,
        "packed": packed,
        "up_to_date": up_to_date,
        "failures": {sprite_id: one_paragraph(message) for sprite_id, message in (failures or {}).items()},
        "warnings": list(warnings),
        "interrupted": interrupted,
        "seconds": round(seconds, 3),
        "timings": {stage: round((timings or {}).get(stage, 0.0), 3) for stage in STAGES},
    }
