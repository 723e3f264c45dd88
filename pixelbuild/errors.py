"""The error types pixelbuild raises on purpose, and the exit codes they map to.

Every error a user can cause is one of these; the CLI prints ``str(error)`` (one paragraph) and exits
with ``error.exit_code``. Anything else escaping is a bug.
"""

from __future__ import annotations

import errno
import os
from typing import Any

EXIT_OK = 0
EXIT_FAILED = 1  # check found disagreements, or a build step failed
EXIT_BAD_INPUT = 2  # the manifest, a referenced file or the command line is wrong
EXIT_UNAVAILABLE = 3  # the backend (e.g. a ComfyUI server) cannot be reached
EXIT_INTERRUPTED = 130  # Ctrl-C (SIGINT)
EXIT_TERMINATED = 143  # SIGTERM: stopped as for Ctrl-C


def one_paragraph(message: str) -> str:
    """``message`` with its lines joined into one paragraph (blank lines and indentation dropped)."""
    return " ".join(line.strip() for line in message.splitlines() if line.strip())


def one_line(text: str) -> str:
    """``text`` with control characters and line breaks escaped (``\\n``), so a message stays one line
    whatever a manifest's names hold."""
    if text.isprintable():
        return text
    return "".join(
        char if char.isprintable() or char == " " else char.encode("unicode_escape").decode("ascii") for char in text
    )


class PixelbuildError(Exception):
    """Base class: a failure with a message meant for the user."""

    exit_code = EXIT_FAILED


class ManifestError(PixelbuildError):
    """Bad input in a manifest (or a file it references), located to file, line, sprite and field."""

    exit_code = EXIT_BAD_INPUT

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        line: int | None = None,
        column: int | None = None,
        sprite: str | None = None,
        field: str | None = None,
    ) -> None:
        self.message = message
        self.file = file
        self.line = line
        self.column = column
        self.sprite = sprite
        self.field = field
        super().__init__(self.__str__())

    def __str__(self) -> str:
        where = ""
        if self.file:
            where = self.file
            if self.line:
                where += f":{self.line}"
                if self.column:
                    where += f":{self.column}"
            where += ": "
        subject = []
        if self.sprite:
            subject.append(f"sprite '{self.sprite}'")
        if self.field:
            subject.append(f"field '{self.field}'")
        prefix = (", ".join(subject) + ": ") if subject else ""
        return one_line(f"{where}{prefix}{self.message}")


class UsageError(PixelbuildError):
    """The command line asks for something impossible (unknown sprite in --only, bad -j, ...)."""

    exit_code = EXIT_BAD_INPUT


class GenerationError(PixelbuildError):
    """A backend failed to generate a sprite (a validation error from the server, a crash, ...)."""

    exit_code = EXIT_FAILED

    def __init__(self, message: str, *, sprite: str | None = None, field: str | None = None) -> None:
        self.message = message
        self.sprite = sprite
        self.field = field
        super().__init__(self.__str__())

    def __str__(self) -> str:
        subject = f"sprite '{self.sprite}': " if self.sprite else ""
        if self.field:
            subject += f"field '{self.field}': "
        return f"{subject}{self.message}"


class PostError(GenerationError):
    """Post-processing could not give a usable sprite: an op emptied it, or found no pixel grid where
    one was required. ``field`` is ``post``, so the engine points at the sprite's chain."""

    def __init__(self, message: str, *, sprite: str | None = None, field: str | None = "post") -> None:
        super().__init__(message, sprite=sprite, field=field)


class BackendUnavailable(PixelbuildError):
    """No server of the configured backend answers."""

    exit_code = EXIT_UNAVAILABLE


class FrozenError(PixelbuildError):
    """``build --frozen`` found work that needs the generator."""

    exit_code = EXIT_FAILED


class DiskFull(PixelbuildError, OSError):
    """A write failed because the disk (or the user's quota) is full; also an ``OSError``, so best-effort
    writes that ignore OSError stay best-effort."""

    exit_code = EXIT_FAILED

    def __init__(self, path: str | os.PathLike[str], code: int = errno.ENOSPC) -> None:
        self.path = os.fspath(path)
        self.quota = code == getattr(errno, "EDQUOT", -1)
        what = "disk quota exceeded" if self.quota else "no space left on device"
        self.message = (
            f"{what} at {self.path}; free some space and run the build again (the sprites it finished are kept)"
        )
        self.code = code
        super().__init__(code, self.message)

    def __reduce__(self) -> tuple[type[DiskFull], tuple[str, int]]:
        # Raised in worker processes too: pickle by the constructor's arguments, not by ``args``.
        return DiskFull, (self.path, self.code)

    def __str__(self) -> str:
        return self.message


#: errno values meaning "the disk (or quota) is full".
DISK_FULL_ERRNOS = frozenset(code for code in (errno.ENOSPC, getattr(errno, "EDQUOT", None)) if code is not None)


def disk_full(error: BaseException, path: str | os.PathLike[str]) -> DiskFull | None:
    """``error`` as a ``DiskFull`` naming ``path`` when it is an ENOSPC/EDQUOT ``OSError``; else None."""
    if isinstance(error, DiskFull):
        return error
    if isinstance(error, OSError) and error.errno is not None and error.errno in DISK_FULL_ERRNOS:
        return DiskFull(path, error.errno)
    return None


def describe_os_error(error: OSError) -> str:
    """``Permission denied: PATH``: a failed file operation in the user's terms (no class name, no errno)."""
    what = error.strerror or str(error)
    if error.filename is None:
        return what
    target = os.fsdecode(error.filename) if isinstance(error.filename, (str, bytes)) else str(error.filename)
    return f"{what}: {target}"


#: ``--json`` error kinds by exit code.
ERROR_KINDS = {
    EXIT_BAD_INPUT: "bad_input",
    EXIT_FAILED: "failed",
    EXIT_UNAVAILABLE: "unavailable",
    EXIT_INTERRUPTED: "interrupted",
    EXIT_TERMINATED: "interrupted",  # a terminated build ends as an interrupted one
}


def error_document(
    error: BaseException | None, message: str, exit_code: int, *, internal: bool = False
) -> dict[str, Any]:
    """The ``error`` object of a ``--json`` document: kind, the one-paragraph message, exit code, and where
    (file, line, sprite, field) when the error knows."""
    return {
        "kind": "internal" if internal else ERROR_KINDS.get(exit_code, "failed"),
        "message": message,
        "exit_code": exit_code,
        "file": _attr(error, "file", str),
        "line": _attr(error, "line", int),
        "sprite": _attr(error, "sprite", str),
        "field": _attr(error, "field", str),
    }


def _attr(error: BaseException | None, name: str, kind: type) -> Any:
    value = getattr(error, name, None)
    return value if isinstance(value, kind) and not isinstance(value, bool) else None
