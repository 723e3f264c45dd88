"""The one gate for every write, read-back and delete under the output root.

A path handed to the guard must be a normalised relative POSIX path (``confined_path_problem``); the guard then
walks from the output root down one folder at a time with ``openat``-style calls and ``O_NOFOLLOW``, so
no symbolic link on the way is ever followed: not a folder link planted inside the root, not a link put
there between a check and the write. The output root itself may be a link only when the manifest says
``project.follow_output_symlink: true``. Files are written to a temporary file created with ``O_EXCL``
in the verified folder and renamed over the target (a rename replaces a link, it never writes through
it). A file is deleted only when its bytes are still those pixelbuild wrote.

On systems without ``dir_fd`` support (Windows) the same walk is made with ``lstat`` on each folder.
"""

from __future__ import annotations

import contextlib
import errno
import fnmatch
import os
import re
import stat
from collections.abc import Callable, Iterator, Sequence
from enum import StrEnum
from pathlib import Path

import msgspec

from pixelbuild.errors import EXIT_BAD_INPUT, PixelbuildError, disk_full
from pixelbuild.names import MAX_NAME_BYTES, MAX_PATH_BYTES, TEMP_PREFIX

# Every temporary file pixelbuild creates starts with TEMP_PREFIX (defined with the names it reserves); its
# name never includes the target's name, so a target name of MAX_NAME_BYTES still leaves it short.

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
#: Characters in a name that the plain pattern accepts: at most 4 UTF-8 bytes each, so a name of that many
#: characters is within ``MAX_NAME_BYTES`` without being encoded.
_PLAIN_NAME = rf"[^/\\\x00-\x1f\x7f]{{1,{MAX_NAME_BYTES // 4}}}"
#: The common case of a confined path in one match: short names of ordinary characters, none of them '.' or
#: '..', no drive letter (a path it refuses may still be confined: ``confined_path_problem`` decides).
_PLAIN_PATH = re.compile(rf"(?!.:)(?:(?!\.\.?/){_PLAIN_NAME}/)*(?!\.\.?(?:\n|\Z)){_PLAIN_NAME}")

_O_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_O_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_O_DIRECTORY = getattr(os, "O_DIRECTORY", 0)
_O_BINARY = getattr(os, "O_BINARY", 0)
_HAVE_DIR_FD = bool(_O_NOFOLLOW and _O_DIRECTORY) and {os.open, os.mkdir, os.unlink, os.rmdir} <= os.supports_dir_fd


class UnsafePathError(PixelbuildError):
    """A write, read or delete under the output root that would leave it or go through a link."""


class UnsafeOutputRootError(UnsafePathError):
    """The output root itself is a link (not allowed by the manifest) or cannot be a folder: bad input."""

    exit_code = EXIT_BAD_INPUT


class LinkedStateError(UnsafePathError):
    """A folder of pixelbuild's local state (``.pixelbuild/...``) is a symbolic link: bad input."""

    exit_code = EXIT_BAD_INPUT


def check_state_folders(project_dir: str, folders: Sequence[str]) -> None:
    """Raise ``LinkedStateError`` if any of ``folders`` (absolute, under ``project_dir``), or a folder on the way
    to one, is a symbolic link: pixelbuild writes and deletes there, and a link (carried by a repository or an
    archive) would take those writes and deletes anywhere."""
    top = os.path.join(project_dir, "")
    seen: set[str] = set()
    for folder in folders:
        if not folder.startswith(top):
            continue
        current = project_dir
        for part in folder[len(top) :].split(os.sep):
            current = os.path.join(current, part)
            if current in seen:
                continue
            seen.add(current)
            if os.path.islink(current):
                shown = os.path.relpath(current, project_dir)
                raise LinkedStateError(
                    f"{shown} is a symbolic link; pixelbuild never writes or deletes through a link in its local "
                    f"state. Remove the link ('{shown}' is always safe to delete) and run again"
                )


def confined_path_problem(path: object) -> str | None:
    """Why ``path`` (read back from the lock, a cache, ...) cannot name a file under the output root, or None.

    Confined: a non-empty string, relative, normalised (no empty, '.' or '..' segment), no backslash, no
    control character, at most ``MAX_PATH_BYTES`` bytes and each name at most ``MAX_NAME_BYTES``. Whether a
    path is portable to every file system is ``names.portable_path_problem``'s question.
    """
    if not isinstance(path, str):
        return "is not a string"
    if len(path) * 4 <= MAX_PATH_BYTES and _PLAIN_PATH.fullmatch(path):
        return None
    if not path:
        return "is empty"
    if len(path.encode("utf-8", "surrogatepass")) > MAX_PATH_BYTES:
        return f"is longer than {MAX_PATH_BYTES} bytes"
    if _CONTROL.search(path):
        return "contains a control character"
    if path.startswith("/") or (len(path) > 1 and path[1] == ":"):
        return "is absolute"
    if "\\" in path:
        return "contains a backslash"
    for part in path.split("/"):
        if part == "..":
            return "climbs out with '..'"
        if part in ("", "."):
            return "is not normalised (an empty or '.' segment)"
        if len(part) * 4 > MAX_NAME_BYTES and len(part.encode("utf-8", "surrogatepass")) > MAX_NAME_BYTES:
            return f"has a name longer than {MAX_NAME_BYTES} bytes"
    return None


_PLAIN_PATHS = re.compile(f"(?:{_PLAIN_PATH.pattern}\n)*")


def all_confined(paths: Sequence[str]) -> bool:
    """Whether every one of ``paths`` is confined (``confined_path_problem`` is None), in one match for the
    common case: thousands of paths read back from the lock or a cache cost one regular expression, not thousands."""
    for start in range(0, len(paths), 2048):  # joined strings of modest size: see lock._BATCH
        batch = paths[start : start + 2048]
        joined = "\n".join(batch) + "\n"
        # A newline inside a path would pass for two paths: the count tells.
        short = max(map(len, batch)) * 4 <= MAX_PATH_BYTES
        plain = short and joined.count("\n") == len(batch) and _PLAIN_PATHS.fullmatch(joined)
        if not plain and not all(confined_path_problem(path) is None for path in batch):
            return False
    return True


def matches_keep(path: str, keep: Sequence[str]) -> str | None:
    """The first ``keep`` glob that ``path`` matches, or None."""
    for pattern in keep:
        if fnmatch.fnmatchcase(path, pattern):
            return pattern
    return None


class Removal(StrEnum):
    """What ``OutputGuard.remove`` did."""

    REMOVED = "removed"
    MISSING = "missing"
    KEPT = "kept"


class OutputGuard(msgspec.Struct, frozen=True):
    """Writes, reads and deletes files under ``root`` (absolute) without ever following a link.

    Plain values only, so a guard travels to worker processes.
    """

    root: str
    follow_root: bool = False
    keep: tuple[str, ...] = ()
    #: A trusted folder above the root (the project's): the walk starts there, so no folder between it and
    #: the root can be swapped for a link either. None: the root's parent.
    base: str | None = None

    # ------------------------------------------------------------------ checks

    def _checked(self, relative: str) -> list[str]:
        problem = confined_path_problem(relative)
        if problem is not None:
            raise UnsafePathError(f"refusing output path {relative!r}: it {problem}")
        pattern = matches_keep(relative, self.keep)
        if pattern is not None:
            raise UnsafePathError(f"refusing to touch {relative}: it matches 'keep: {pattern}' in the manifest")
        return relative.split("/")

    def root_problem(self, project_dir: Path) -> str | None:
        """Why the output root is unsafe (a link, or a folder between the project and it is), or None."""
        if self.follow_root:
            return None
        root = Path(self.root)
        try:
            inside = root.relative_to(project_dir)
        except ValueError:
            return f"the output root {self.root} is not inside the project {project_dir}"
        current = project_dir
        for name in inside.parts:
            current = current / name
            try:
                mode = os.lstat(current).st_mode
            except FileNotFoundError:
                return None  # created (as a real folder) on the first write
            except OSError as error:
                return f"{current} cannot be inspected ({error.strerror})"
            shown = current.relative_to(project_dir).as_posix()
            if stat.S_ISLNK(mode):
                target = os.readlink(current)
                return (
                    f"{shown} is a symbolic link (to {target}), so the output root {inside.as_posix()} could lie "
                    "outside the project; pixelbuild does not write through links. Replace the link by a folder, "
                    "or set 'project.follow_output_symlink: true' in the manifest if the link is intended"
                )
            if not stat.S_ISDIR(mode):
                return f"{shown} is not a folder, so the output root {inside.as_posix()} cannot be created"
        return None

    def verify_root(self, project_dir: Path) -> None:
        """Raise ``UnsafePathError`` (exit 2) when ``root_problem`` finds something."""
        problem = self.root_problem(project_dir)
        if problem is not None:
            raise UnsafeOutputRootError(problem)

    # ------------------------------------------------------------------- walks

    def _root_parts(self) -> tuple[str, list[str]]:
        """The trusted folder the walk starts from, and the names from it down to the root."""
        if self.base is not None:
            inside = os.path.relpath(self.root, self.base)
            if inside != os.curdir and not inside.startswith(os.pardir):
                return self.base, inside.replace(os.sep, "/").split("/")
        return os.path.dirname(self.root), [os.path.basename(self.root)]

    @contextlib.contextmanager
    def _folders(self, parts: Sequence[str], *, create: bool) -> Iterator[list[int]]:
        """File descriptors of the root and each folder of ``parts`` under it, opened one name at a time
        from ``base`` without following links (the folders down to the root may be links only with
        ``follow_root``). Raises FileNotFoundError (``create`` False) when a folder is missing,
        ``UnsafePathError`` when one is a link or not a folder.
        """
        start, root_parts = self._root_parts()
        fds: list[int] = []
        flags = os.O_RDONLY | _O_DIRECTORY | _O_CLOEXEC
        try:
            if create:
                os.makedirs(start, exist_ok=True)  # the trusted folder the walk starts from
            fds.append(os.open(start, flags))
            names = [*root_parts, *parts]
            for index, name in enumerate(names):
                if create:
                    with contextlib.suppress(FileExistsError):
                        os.mkdir(name, 0o777, dir_fd=fds[-1])
                follow = index < len(root_parts) and self.follow_root
                try:
                    fds.append(os.open(name, flags | (0 if follow else _O_NOFOLLOW), dir_fd=fds[-1]))
                except OSError as error:
                    if error.errno not in (errno.ELOOP, errno.ENOTDIR):
                        raise
                    if index < len(root_parts):
                        raise UnsafePathError(
                            f"the output root {self.root} is, or lies under, a symbolic link or a file; pixelbuild "
                            "does not write through links (set 'project.follow_output_symlink: true' if intended)"
                        ) from None
                    shown = "/".join(parts[: index - len(root_parts) + 1])
                    raise self._not_a_folder(shown, fds[-1], name) from None
            yield fds[len(root_parts) :]
        finally:
            for fd in fds:
                os.close(fd)

    def _not_a_folder(self, shown: str, parent_fd: int, name: str) -> UnsafePathError:
        try:
            is_link = stat.S_ISLNK(os.lstat(name, dir_fd=parent_fd).st_mode)
        except OSError:
            is_link = False
        if is_link:
            return UnsafePathError(
                f"{shown} in the output root is a symbolic link; pixelbuild never writes or deletes through links"
            )
        return UnsafePathError(f"{shown} in the output root is a file where a folder is needed")

    def _lstat_walk(self, parts: Sequence[str], *, create: bool) -> str:
        """The portable walk (no ``dir_fd``): check each folder with lstat; return the folder's path."""
        start, root_parts = self._root_parts()
        if create:
            os.makedirs(start, exist_ok=True)
        current = start
        for name in root_parts:
            current = os.path.join(current, name)
            if create:
                with contextlib.suppress(FileExistsError):
                    os.mkdir(current)
            mode = os.stat(current).st_mode if self.follow_root else os.lstat(current).st_mode
            if stat.S_ISLNK(mode) or not stat.S_ISDIR(mode):
                raise UnsafePathError(f"the output root {self.root} is, or lies under, a symbolic link or a file")
        for index, name in enumerate(parts):
            current = os.path.join(current, name)
            if create:
                with contextlib.suppress(FileExistsError):
                    os.mkdir(current)
            mode = os.lstat(current).st_mode
            if stat.S_ISLNK(mode) or not stat.S_ISDIR(mode):
                shown = "/".join(parts[: index + 1])
                raise UnsafePathError(f"{shown} in the output root is a symbolic link or not a folder")
        return current

    # ------------------------------------------------------------- operations

    def write_bytes(self, relative: str, data: bytes) -> None:
        """Atomically replace the file ``relative`` under the root with ``data``."""
        try:
            self._write_bytes(relative, data)
        except OSError as error:
            if isinstance(error, PixelbuildError):
                raise
            # Name the file the user knows (a write error names none, or only the temporary file).
            target = os.path.join(self.root, *relative.split("/"))
            full = disk_full(error, target)
            if full is not None:
                raise full from error
            if error.errno is not None and (error.filename is None or TEMP_PREFIX in os.fsdecode(error.filename)):
                raise type(error)(error.errno, error.strerror, target) from error
            raise

    def _write_bytes(self, relative: str, data: bytes) -> None:
        parts = self._checked(relative)
        name = parts[-1]
        temp = f"{TEMP_PREFIX}{os.urandom(8).hex()}"
        if not _HAVE_DIR_FD:
            folder = self._lstat_walk(parts[:-1], create=True)
            _write_via(folder, temp, name, data)
            return
        with self._folders(parts[:-1], create=True) as fds:
            folder_fd = fds[-1]
            fd = os.open(
                temp,
                os.O_WRONLY | os.O_CREAT | os.O_EXCL | _O_NOFOLLOW | _O_CLOEXEC | _O_BINARY,
                0o666,
                dir_fd=folder_fd,
            )
            try:
                with os.fdopen(fd, "wb") as handle:
                    handle.write(data)
                os.replace(temp, name, src_dir_fd=folder_fd, dst_dir_fd=folder_fd)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(temp, dir_fd=folder_fd)
                raise

    def read_bytes(self, relative: str) -> bytes:
        """The bytes of the regular file ``relative`` under the root (FileNotFoundError if absent)."""
        parts = self._checked(relative)
        if not _HAVE_DIR_FD:
            path = os.path.join(self._lstat_walk(parts[:-1], create=False), parts[-1])
            if stat.S_ISLNK(os.lstat(path).st_mode):
                raise UnsafePathError(f"{relative} in the output root is a symbolic link")
            with open(path, "rb") as handle:
                return handle.read()
        with self._folders(parts[:-1], create=False) as fds:
            return self._read_final(relative, parts[-1], fds[-1])

    def _read_final(self, relative: str, name: str, folder_fd: int) -> bytes:
        try:
            fd = os.open(name, os.O_RDONLY | _O_NOFOLLOW | _O_CLOEXEC | os.O_NONBLOCK | _O_BINARY, dir_fd=folder_fd)
        except OSError as error:
            if error.errno == errno.ELOOP:
                raise UnsafePathError(f"{relative} in the output root is a symbolic link") from None
            raise
        with os.fdopen(fd, "rb") as handle:
            if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
                raise UnsafePathError(f"{relative} in the output root is not a regular file")
            return handle.read()

    def remove(self, relative: str, still_ours: Callable[[bytes], bool]) -> tuple[Removal, str]:
        """Delete ``relative`` if ``still_ours(its bytes)``, then the folders that leaves empty.

        Returns what happened and, for ``KEPT``, why (a link, a folder, content changed, a keep glob).
        """
        problem = confined_path_problem(relative)
        if problem is not None:
            return Removal.KEPT, f"its path {problem}"
        pattern = matches_keep(relative, self.keep)
        if pattern is not None:
            return Removal.KEPT, f"it matches 'keep: {pattern}'"
        parts = relative.split("/")
        if not _HAVE_DIR_FD:
            return self._remove_portable(relative, parts, still_ours)
        try:
            with self._folders(parts[:-1], create=False) as fds:
                try:
                    data = self._read_final(relative, parts[-1], fds[-1])
                except FileNotFoundError:
                    return Removal.MISSING, ""
                if not still_ours(data):
                    return Removal.KEPT, "its content changed since pixelbuild wrote it"
                os.unlink(parts[-1], dir_fd=fds[-1])
                # Remove the folders this leaves empty, deepest first, never the root itself.
                for index in range(len(parts) - 1, 0, -1):
                    try:
                        os.rmdir(parts[index - 1], dir_fd=fds[index - 1])
                    except OSError:
                        break
                return Removal.REMOVED, ""
        except FileNotFoundError:
            return Removal.MISSING, ""
        except UnsafePathError as error:
            return Removal.KEPT, str(error)

    def _remove_portable(
        self, relative: str, parts: Sequence[str], still_ours: Callable[[bytes], bool]
    ) -> tuple[Removal, str]:
        try:
            data = self.read_bytes(relative)
        except FileNotFoundError:
            return Removal.MISSING, ""
        except UnsafePathError as error:
            return Removal.KEPT, str(error)
        if not still_ours(data):
            return Removal.KEPT, "its content changed since pixelbuild wrote it"
        path = os.path.join(self.root, *parts)
        os.unlink(path)
        for index in range(len(parts) - 1, 0, -1):
            try:
                os.rmdir(os.path.join(self.root, *parts[:index]))
            except OSError:
                break
        return Removal.REMOVED, ""

    def folders(self) -> OpenFolders:
        """Descriptors of the folders under the root, for a read-only pass over many files (close it)."""
        return OpenFolders(self.root)

    def inspect(self, relative: str, _verified: set[str] | None = None) -> str | None:
        """Read-only: why ``relative`` could not be written or removed safely (a link on the way, or the
        file itself a link or a folder), or None. ``_verified`` caches folders already found safe."""
        problem = confined_path_problem(relative)
        if problem is not None:
            return f"its path {problem}"
        parts = relative.split("/")
        current = self.root
        for index, name in enumerate(parts):
            current = os.path.join(current, name)
            shown = "/".join(parts[: index + 1])
            last = index == len(parts) - 1
            if not last and _verified is not None and shown in _verified:
                continue
            try:
                mode = os.lstat(current).st_mode
            except FileNotFoundError:
                return None
            except OSError as error:
                return f"{shown} cannot be inspected ({error.strerror})"
            if stat.S_ISLNK(mode):
                return f"{shown} is a symbolic link"
            if last:
                return "it is a folder" if stat.S_ISDIR(mode) else None
            if not stat.S_ISDIR(mode):
                return f"{shown} is a file where a folder is needed"
            if _verified is not None:
                _verified.add(shown)
        return None


class OpenFolders:
    """``with guard.folders() as folders:``: descriptors of folders under an output root, each opened once
    and without following a link, for a read-only pass over many files (``check`` hashes every output).

    ``fd(folder)`` is None where a folder cannot be opened that way (absent, a link, a file, an error, no
    ``dir_fd`` on this system): the caller then asks ``OutputGuard.inspect``, which says why. The root is
    opened by its path, as ``inspect`` reaches it (``OutputGuard.root_problem`` judges the root itself).
    """

    #: The most descriptors held at once: outputs come grouped by folder, so a few suffice.
    LIMIT = 64

    def __init__(self, root: str) -> None:
        self._root = root
        self._fds: dict[str, int] = {}

    def fd(self, folder: str) -> int | None:
        """The descriptor of ``folder`` ("" for the root, else a confined relative path), or None."""
        found = self._fds.get(folder)
        if found is not None or not _HAVE_DIR_FD:
            return found
        if len(self._fds) >= self.LIMIT:
            self.close()
        flags = os.O_RDONLY | _O_DIRECTORY | _O_CLOEXEC
        parts = folder.split("/") if folder else []
        # The deepest folder already open on the way, then one name at a time below it.
        depth = len(parts)
        while depth and "/".join(parts[:depth]) not in self._fds:
            depth -= 1
        try:
            current = "/".join(parts[:depth])
            if current not in self._fds:
                self._fds[current] = os.open(self._root, flags)
            for name in parts[depth:]:
                parent = self._fds[current]
                current = f"{current}/{name}" if current else name
                self._fds[current] = os.open(name, flags | _O_NOFOLLOW, dir_fd=parent)
        except OSError:
            return None
        return self._fds[folder]

    def close(self) -> None:
        """Close every descriptor held."""
        fds, self._fds = list(self._fds.values()), {}
        for fd in fds:
            os.close(fd)

    def __enter__(self) -> OpenFolders:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _write_via(folder: str, temp: str, name: str, data: bytes) -> None:
    temp_path = os.path.join(folder, temp)
    fd = os.open(temp_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _O_BINARY, 0o666)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(temp_path, os.path.join(folder, name))
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp_path)
        raise
