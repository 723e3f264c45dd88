"""Progress display: a live bar under the finished lines on a terminal, plain lines otherwise, nothing for
``--json``.

Every finished or failed sprite is said exactly once, as it happens; a failure's line carries its whole
(one-paragraph) message, so the build's summary does not repeat it.
"""

from __future__ import annotations

import threading
from typing import IO, Any, Protocol

from pixelbuild.errors import one_paragraph

_VERBS = {
    "generate": "generated",
    "post": "post-processed",
    "restore": "restored",
    "remove": "removed",
    "pack": "packed",
}
#: Width of the verb column ("post-processed" and a space), on terminals wide enough for it.
_VERB_WIDTH = 15
#: Narrower terminals get no verb column: a sprite line then fits in 50 columns far more often.
_ALIGNED_FROM = 80


def sprite_line(action: str, sprite_id: str, width: int = _ALIGNED_FROM) -> str:
    """``generated       hero`` (the verb column is dropped below 80 columns)."""
    verb = _VERBS.get(str(action), str(action))
    return f"{verb:<{_VERB_WIDTH}} {sprite_id}" if width >= _ALIGNED_FROM else f"{verb} {sprite_id}"


def failure_line(sprite_id: str, message: str, width: int = _ALIGNED_FROM) -> str:
    """``FAILED          hero: the whole message, on one line``."""
    return f"{sprite_line('FAILED', sprite_id, width)}: {one_paragraph(message)}"


class Progress(Protocol):
    """Receives the engine's events; implementations must be thread-safe."""

    #: The failures ``failed`` showed to the user (the caller says the others, e.g. in a summary).
    reported: set[str]

    def start(self, generations: int, sprites: int) -> None:
        """Work is about to begin: ``generations`` generator calls, ``sprites`` sprites to finish."""

    def working(self, sprite_id: str, what: str) -> None:
        """A sprite entered a stage ('generating', 'post-processing')."""

    def done(self, sprite_id: str, action: str) -> None:
        """A sprite is finished (its action: generate, post, restore or remove)."""

    def failed(self, sprite_id: str, message: str) -> None:
        """A sprite failed."""

    def finish(self) -> None:
        """All work ended."""


class QuietProgress:
    """Reports nothing (``--json``, ``--progress none``, library use)."""

    def __init__(self) -> None:
        self.reported: set[str] = set()

    def start(self, generations: int, sprites: int) -> None:
        """Ignored."""

    def working(self, sprite_id: str, what: str) -> None:
        """Ignored."""

    def done(self, sprite_id: str, action: str) -> None:
        """Ignored."""

    def failed(self, sprite_id: str, message: str) -> None:
        """Ignored."""

    def finish(self) -> None:
        """Ignored."""


class LineProgress(QuietProgress):
    """One line per finished or failed sprite, for logs and CI."""

    def __init__(self, stream: IO[str]) -> None:
        super().__init__()
        self.stream = stream
        self._lock = threading.Lock()

    def done(self, sprite_id: str, action: str) -> None:
        """Print e.g. ``generated       hero``."""
        with self._lock:
            self.stream.write(sprite_line(action, sprite_id) + "\n")
            self.stream.flush()

    def failed(self, sprite_id: str, message: str) -> None:
        """Print ``FAILED          hero: message``."""
        with self._lock:
            self.stream.write(failure_line(sprite_id, message) + "\n")
            self.stream.flush()
            self.reported.add(sprite_id)


class BarProgress(QuietProgress):
    """A terminal display: finished sprites are printed as lines, above one live bar (rich's ``Progress``)
    that shows the count, the time and what runs now; the bar is gone when the build ends."""

    def __init__(self, stream: IO[str]) -> None:
        super().__init__()
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn
        from rich.progress import Progress as RichProgress
        from rich.table import Column

        self._lock = threading.Lock()
        self.console = Console(file=stream, highlight=False)
        self._bar_width = max(8, min(40, self.console.width // 5))
        self.bar = RichProgress(
            TextColumn("[bold]building"),
            BarColumn(bar_width=self._bar_width),
            MofNCompleteColumn(table_column=Column(no_wrap=True)),
            TimeElapsedColumn(table_column=Column(no_wrap=True)),
            # The label takes what is left (and is cut, should it not fit): the bar stays one line at any width.
            TextColumn(
                "{task.fields[current]}",
                markup=False,  # sprite ids and server messages are text, never markup
                table_column=Column(ratio=1, no_wrap=True, overflow="ellipsis"),
            ),
            console=self.console,
            transient=True,
            expand=True,
        )
        self.task: Any = None
        self._active: dict[str, str] = {}  # sprite id -> what it is doing, oldest first

    def _label(self) -> str:
        """What runs now: the latest started, and how many others; a long id loses its start, not its end."""
        if not self._active:
            return ""
        sprite_id, what = next(reversed(self._active.items()))
        more = f" (+{len(self._active) - 1})" if len(self._active) > 1 else ""
        total = int(self.bar.tasks[0].total or 0) if self.task is not None else 0
        # Everything left of the label: "building", the bar, "N/N", "0:00:00", a space after each.
        room = self.console.width - (9 + self._bar_width + 1 + 2 * len(str(total)) + 2 + 8)
        label = f"{what} {sprite_id}{more}"
        if len(label) <= room:
            return label
        keep = room - len(what) - len(more) - 2  # a space and the ellipsis
        if keep >= 8:
            return f"{what} …{sprite_id[-keep:]}{more}"
        return "…" + sprite_id[-(room - 1) :] if room > 8 else sprite_id  # too narrow for the stage too

    def _show(self) -> None:
        if self.task is not None:
            self.bar.update(self.task, current=self._label())

    def start(self, generations: int, sprites: int) -> None:
        """Show the bar."""
        self.bar.start()
        self.task = self.bar.add_task("building", total=sprites, current="")

    def working(self, sprite_id: str, what: str) -> None:
        """Show what runs now (the latest started, and how many others)."""
        with self._lock:
            self._active.pop(sprite_id, None)
            self._active[sprite_id] = what
            self._show()

    def done(self, sprite_id: str, action: str) -> None:
        """Print the sprite's line above the bar and advance it."""
        self._finished(sprite_line(action, sprite_id, self.console.width), sprite_id)

    def failed(self, sprite_id: str, message: str) -> None:
        """Print the failure above the bar and advance it."""
        from rich.text import Text

        line = Text(failure_line(sprite_id, message, self.console.width))
        line.stylize("red", 0, len("FAILED"))
        self._finished(line, sprite_id)
        self.reported.add(sprite_id)

    def _finished(self, line: Any, sprite_id: str) -> None:
        with self._lock:
            # Long lines fold onto the next line rather than past the terminal's edge.
            self.console.print(line, overflow="fold", markup=False)
            self._active.pop(sprite_id, None)
            if self.task is not None:
                self.bar.advance(self.task)
            self._show()

    def finish(self) -> None:
        """Remove the bar."""
        self.bar.stop()
