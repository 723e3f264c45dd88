"""The cyclic garbage collector, paused while a command loads a project and plans it.

Loading 10,000 sprites builds millions of small objects (parsed YAML, resolved specs, keys, lock records,
the plan), all acyclic: reference counting frees them. Each collection the collector runs meanwhile walks
every one of them again, for nothing (~10% of a fresh ``check``). So ``check``, ``plan`` and ``build``
pause it over that phase and resume it before generation and post-processing, which hold images and run
for as long as the generator takes; a long ``watch`` session pauses it per build, for the load alone.
"""

from __future__ import annotations

import gc
from types import TracebackType


class PausedGC:
    """``with PausedGC() as pause:``: the collector is off until ``pause.end()`` or the block's end.

    What the pause built is frozen when the collector resumes (``gc.freeze``), until the block ends: else
    its first collections would walk those millions of objects again, twice (~0.1 s of a build after a
    fresh clone's check). A no-op when the collector is already off (a caller, or a pause around this
    one, owns it).
    """

    __slots__ = ("_frozen", "_owned")

    def __init__(self) -> None:
        self._owned = False
        self._frozen = False

    def __enter__(self) -> PausedGC:
        self._owned = gc.isenabled()
        gc.disable()
        return self

    def end(self) -> None:
        """Turn the collector back on (if this pause turned it off), leaving what was built meanwhile out of
        its walks until the block ends; later calls do nothing."""
        if self._owned:
            self._owned = False
            gc.freeze()
            self._frozen = True
            gc.enable()

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.end()
        if self._frozen:
            # Collectable again (as the oldest generation): a watch session must not keep each build's cycles.
            self._frozen = False
            gc.unfreeze()
