"""Names pixelbuild writes to disk: every output path must be creatable on Linux, macOS and Windows.

A game repository is shared: a name one file system accepts and another refuses (``aux.png``, a
trailing dot, a 300-byte name) breaks the checkout for a teammate. So output paths are checked when the
manifest is read, never discovered in the middle of a build.
"""

from __future__ import annotations

import json
import re
import unicodedata

#: Longest sprite or atlas id, in characters.
MAX_ID_LENGTH = 200
#: Longest name of one file or folder, in UTF-8 bytes (ext4, APFS, NTFS and most others). The one limit for
#: names: the manifest check (``portable_path_problem``) and the output guard (``fsguard``) both use it.
MAX_NAME_BYTES = 255
#: Longest output path relative to the output root, in UTF-8 bytes (leaves room under Linux's 4,096
#: for the project's own folder); likewise the one limit for whole paths.
MAX_PATH_BYTES = 1024

_WINDOWS_CHARACTERS = frozenset('<>:"|?*\\')
_WINDOWS_DEVICES = re.compile(r"(CON|PRN|AUX|NUL|COM[0-9¹²³]|LPT[0-9¹²³])", re.IGNORECASE)
#: How the names of pixelbuild's own temporary files begin; an output so named would be mistaken for one.
TEMP_PREFIX = ".pixelbuild-tmp."
# The common case in one match: ASCII names that neither begin with '.' (so no temporary-file name) nor end in
# '.', none a Windows device, in a path short enough that no name can pass the byte limit. Anything else takes
# the full check, so every refusal reads the same.
_PLAIN_NAME = (
    r"(?!(?:con|prn|aux|nul|com[0-9]|lpt[0-9])(?![A-Za-z0-9_-]))[A-Za-z0-9_-](?:[A-Za-z0-9_.-]*[A-Za-z0-9_-])?"
)
_PLAIN_PATH = re.compile(f"{_PLAIN_NAME}(?:/{_PLAIN_NAME})*", re.ASCII | re.IGNORECASE)


def quote(text: str) -> str:
    """``text`` in single quotes, with control characters escaped so a message stays on one line."""
    if not text.isprintable() and any(_is_control(char) for char in text):
        return json.dumps(text)
    return f"'{text}'"


def _is_control(char: str) -> bool:
    # Cc: C0/C1 controls (NUL, newline, ESC...); Zl/Zp: Unicode line and paragraph separators.
    return unicodedata.category(char) in ("Cc", "Zl", "Zp")


def control_problem(text: str) -> str | None:
    """Why ``text`` cannot be a name (it holds a control character or a line break), or None."""
    if text.isprintable():  # in C; a printable text has no Cc, Zl or Zp character
        return None
    for char in text:
        if _is_control(char):
            return f"contains the control character U+{ord(char):04X}"
    return None


def character_problem(text: str) -> str | None:
    """Why ``text`` cannot be part of a portable path (a control character, or one Windows forbids), or None."""
    problem = control_problem(text)
    if problem is not None:
        return problem
    bad = sorted(set(text) & _WINDOWS_CHARACTERS)
    if bad:
        return f"has the character '{bad[0]}', which Windows does not allow in names"
    return None


def id_problem(value: str) -> str | None:
    """Why ``value`` cannot be a sprite or atlas id (beyond the id pattern), or None."""
    problem = control_problem(value)
    if problem is not None:
        return problem
    if len(value) > MAX_ID_LENGTH:
        return f"is {len(value)} characters long, over the limit of {MAX_ID_LENGTH}"
    return None


def portable_path_problem(path: str) -> str | None:
    """Why the normalised relative POSIX ``path`` cannot be written on every common file system (Linux, macOS,
    Windows), or None. Whether a path read back stays under the output root is ``fsguard``'s question."""
    if len(path) <= MAX_NAME_BYTES and _PLAIN_PATH.fullmatch(path):
        return None
    problem = control_problem(path)
    if problem is not None:
        return problem
    size = len(path.encode("utf-8"))
    if size > MAX_PATH_BYTES:
        return f"is {size} bytes long, over the limit of {MAX_PATH_BYTES} bytes for a whole path"
    for name in path.split("/"):
        size = len(name.encode("utf-8"))
        if size > MAX_NAME_BYTES:
            return f"has a name of {size} bytes, over the limit of {MAX_NAME_BYTES} bytes for one file or folder name"
        bad = sorted(set(name) & _WINDOWS_CHARACTERS)
        if bad:
            return f"has the character '{bad[0]}' in '{name}', which Windows does not allow in names"
        if name.endswith((".", " ")):
            return f"has the name '{name}', which ends in '{name[-1]}': Windows drops it"
        if _WINDOWS_DEVICES.fullmatch(name.split(".", 1)[0].rstrip(" ")):
            return f"has the name '{name}', which Windows reserves for a device"
        if name.startswith(TEMP_PREFIX):
            return f"has the name '{name}', which pixelbuild keeps for its temporary files"
    return None
