"""Local state sealed with a per-user key: a cache that drives decisions is trusted only if this user's
pixelbuild wrote it.

The parse cache, the resolution cache, the file-hash cache and the no-op stamp live in ``.pixelbuild/``,
which a repository, an archive or a copied folder can carry. Each one is written *sealed*: a keyed
BLAKE2b tag over its purpose, its file name and its bytes. The key is 32 random bytes kept outside every
project, in ``$XDG_CACHE_HOME/pixelbuild/state.key`` (else ``~/.cache/pixelbuild/state.key``), mode 0600.
A state file whose tag does not verify (planted, carried from another machine or user, damaged, or moved
to another name) is not read: it is a cache miss, rebuilt from the sources.

If no key can be kept (a read-only home), a key for this process only is used: caches then last one run.
Kept free of heavy imports: the no-op build path reads the stamp through here.
"""

from __future__ import annotations

import os
import stat as stat_module

# The C modules behind hashlib and hmac: importing those costs the no-op build ~7 ms (OpenSSL).
try:
    from _blake2 import blake2b
except ImportError:  # pragma: no cover - a Python built without it
    from hashlib import blake2b
from _operator import _compare_digest as compare_digest

#: The first bytes of a sealed file: the format, then the tag in hex, then a newline, then the payload.
MAGIC = b"pixelbuild-sealed-1 "
_TAG_BYTES = 16
_HEADER = len(MAGIC) + 2 * _TAG_BYTES + 1
_KEY_BYTES = 32
_FILE_NAME = "state.key"

_key: bytes | None = None


def key_path() -> str:
    """Where this user's key is kept (outside every project)."""
    base = os.environ.get("XDG_CACHE_HOME") or ""
    if not os.path.isabs(base):
        base = os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "pixelbuild", _FILE_NAME)


def _read_key(path: str) -> bytes | None:
    """The key at ``path`` if it is a regular file of ours, private, of the right size; else None."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0))
    except OSError:
        return None
    try:
        info = os.fstat(fd)
        if not stat_module.S_ISREG(info.st_mode) or info.st_size != _KEY_BYTES:
            return None
        if os.name == "posix" and (info.st_uid != os.geteuid() or info.st_mode & 0o077):
            return None  # another user could read (and so forge) or have chosen it
        data = os.read(fd, _KEY_BYTES + 1)
        return data if len(data) == _KEY_BYTES else None
    except OSError:
        return None
    finally:
        os.close(fd)


def _create_key(path: str) -> bytes | None:
    """Make a new key at ``path`` atomically (a concurrent run's key wins); None if it cannot be kept."""
    folder = os.path.dirname(path)
    try:
        os.makedirs(folder, mode=0o700, exist_ok=True)
        temp = os.path.join(folder, f".{_FILE_NAME}.{os.getpid()}.{os.urandom(4).hex()}")
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
        try:
            os.write(fd, os.urandom(_KEY_BYTES))
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            if _read_key(path) is None:
                os.replace(temp, path)  # none, or an unusable one (wrong mode, owner or size): ours replaces it
        finally:
            if os.path.lexists(temp):
                os.unlink(temp)
    except OSError:
        return None
    return _read_key(path)


class NotRegularFile(OSError):
    """A path that names a FIFO, a device or a folder where pixelbuild expects one of its files."""


def read_regular(path: str, limit: int) -> bytes:
    """The bytes of the regular file at ``path`` (``FileNotFoundError`` if absent). Opened without blocking:
    a FIFO or a device planted in its place (an archive can carry one) would hang the build; it raises
    ``NotRegularFile`` instead, as does a file larger than ``limit``."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    try:
        info = os.fstat(fd)
        if not stat_module.S_ISREG(info.st_mode):
            raise NotRegularFile(f"{path} is not a regular file")
        if info.st_size > limit:
            raise NotRegularFile(f"{path} is larger than {limit} bytes")
        chunks = []
        size = 0
        while chunk := os.read(fd, min(1 << 24, limit + 1 - size)):
            chunks.append(chunk)
            size += len(chunk)
            if size > limit:
                raise NotRegularFile(f"{path} is larger than {limit} bytes")
        return b"".join(chunks)
    finally:
        os.close(fd)


def read_sealed(purpose: str, path: str, limit: int) -> bytes | None:
    """The payload of the sealed state file at ``path`` (see ``unseal``); None if it is absent, not a regular
    file, larger than ``limit``, unreadable or not sealed by this user's pixelbuild."""
    try:
        data = read_regular(path, limit)
    except OSError:
        return None
    return unseal(purpose, os.path.basename(path), data)


def state_key() -> bytes:
    """This user's key (created on first use); a key for this process only if none can be kept."""
    global _key
    if _key is None:
        path = key_path()
        _key = _read_key(path) or _create_key(path) or os.urandom(_KEY_BYTES)
    return _key


def _tag(purpose: str, name: str, payload: bytes | memoryview) -> bytes:
    mac = blake2b(key=state_key(), digest_size=_TAG_BYTES, person=b"pixelbuild-state")
    # Purpose and file name are bound in: a sealed file copied to another cache or name does not verify.
    label = f"{purpose}\0{name}\0".encode("utf-8", "surrogateescape")
    mac.update(len(label).to_bytes(4, "big"))
    mac.update(label)
    mac.update(payload)
    return mac.hexdigest().encode("ascii")


def seal(purpose: str, name: str, payload: bytes) -> bytes:
    """``payload`` sealed for the file named ``name`` (its base name) holding state of kind ``purpose``."""
    return MAGIC + _tag(purpose, name, payload) + b"\n" + payload


def unseal(purpose: str, name: str, data: bytes) -> bytes | None:
    """The payload of ``data`` if this user's pixelbuild sealed it for ``purpose`` and ``name``; else None."""
    if len(data) < _HEADER or not data.startswith(MAGIC) or data[_HEADER - 1 : _HEADER] != b"\n":
        return None
    payload = memoryview(data)[_HEADER:]
    if not compare_digest(data[len(MAGIC) : _HEADER - 1], _tag(purpose, name, payload)):
        return None
    return data[_HEADER:]
