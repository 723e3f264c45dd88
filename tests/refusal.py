"""Shared assertion for bad input: one located paragraph, exit 2, no traceback, nothing written."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

from tests.conftest import Result

#: The commands that read a manifest and must refuse bad input the same way.
COMMANDS = ("validate", "plan", "build")


def assert_refused(
    cli: Callable[..., Result], project: Path, command: str, fragments: Iterable[str], *extra: str
) -> str:
    """Run ``command`` on ``project`` and check it refuses with every fragment in its one-line message;
    return the message."""
    before = sorted(path.relative_to(project).as_posix() for path in project.rglob("*"))
    result = cli(command, "-C", project, *extra)
    message = result.err.strip()
    assert result.code == 2, f"exit {result.code}: {result.out}{result.err}"
    assert result.out == ""
    assert message.startswith("pixelbuild: error: "), message
    assert "\n" not in message, f"not one paragraph: {message!r}"
    assert "Traceback" not in message and "internal error" not in message, message
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in {message!r}"
    after = sorted(path.relative_to(project).as_posix() for path in project.rglob("*"))
    assert after == before, f"{command} wrote {sorted(set(after) - set(before))}"
    return message


def assert_accepted(cli: Callable[..., Result], project: Path, command: str = "validate") -> Result:
    """Run ``command`` on ``project`` and check it succeeds."""
    result = cli(command, "-C", project)
    assert result.code == 0, result.out + result.err
    return result
