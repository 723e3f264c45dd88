"""Progress display: a live bar on a terminal, plain lines otherwise, nothing for ``--json``."""

from __future__ import annotations

import threading
from typing import IO, Any, Protocol

_VERBS = {
    "generate": "generated",
    "post": "post-processed",
    "restore": "restored",
    "remove": "removed",
    "pack": "packed",
}


class Progress(Protocol):
    """Receives the engine's events; implementations must be thread-safe."""

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
    """Reports nothing (``--json``, library use)."""

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
        self.stream = stream
        self._lock = threading.Lock()

    def done(self, sprite_id: str, action: str) -> None:
        """Print e.g. ``generated  hero``."""
        with self._lock:
            self.stream.write(f"{_VERBS.get(str(action), str(action)):<15} {sprite_id}\n")
            self.stream.flush()

    def failed(self, sprite_id: str, message: str) -> None:
        """Print ``FAILED  hero: message`` (first line only; the summary has the rest)."""
        with self._lock:
            self.stream.write(f"{'FAILED':<15} {sprite_id}: {message.splitlines()[0]}\n")
            self.stream.flush()


class BarProgress(LineProgress):
    """A rich progress bar on a terminal, with finished sprites printed above it."""

    def __init__(self, stream: IO[str]) -> None:
        super().__init__(stream)
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn
        from rich.progress import Progress as RichProgress

        self.console = Console(file=stream)
        self.bar = RichProgress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("{task.fields[current]}"),
            console=self.console,
            transient=True,
        )
        self.task: Any = None

    def start(self, generations: int, sprites: int) -> None:
        """Show the bar."""
        self.bar.start()
        self.task = self.bar.add_task("building", total=sprites, current="")

    def working(self, sprite_id: str, what: str) -> None:
        """Show what is running."""
        if self.task is not None:
            self.bar.update(self.task, current=f"{what} {sprite_id}")

    def done(self, sprite_id: str, action: str) -> None:
        """Advance the bar and print the line above it."""
        self.console.print(f"{_VERBS.get(str(action), str(action)):<15} {sprite_id}", highlight=False)
        if self.task is not None:
            self.bar.advance(self.task)

    def failed(self, sprite_id: str, message: str) -> None:
        """Print the failure above the bar."""
        first = message.splitlines()[0]
        self.console.print(f"[red]{'FAILED':<15}[/red] {sprite_id}: {first}", highlight=False)
        if self.task is not None:
            self.bar.advance(self.task)

    def finish(self) -> None:
        """Remove the bar."""
        self.bar.stop()
