"""Moving named objects to and from a remote cache: an S3-compatible bucket (through obstore) or a folder.

Names are ``ac/<32 hex>`` and ``cas/<32 hex>``, made here from checked digests only. A transport never
leaves a half-written object under its final name (an S3 PUT is atomic; a folder gets a temporary file
renamed into place). Any failure to talk to the remote is a ``RemoteUnavailable`` whose message is ours:
the client's text (which names the endpoint) is never shown.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
from datetime import timedelta
from pathlib import Path
from typing import Protocol

#: The longest wait for a connection: a remote that is down refuses or times out this fast.
CONNECT_TIMEOUT = 3.0


class RemoteUnavailable(Exception):
    """The remote did not answer, refused, or failed; ``reason`` is a short phrase safe to print."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class TooLarge(Exception):
    """An object is larger than the size its record (or the limit) allows: damage, never read whole."""


class Transport(Protocol):
    """Named objects on a remote."""

    def get(self, name: str, max_bytes: int) -> bytes | None:
        """The object's bytes, or None if absent; TooLarge over ``max_bytes``; RemoteUnavailable on failure."""

    def put(self, name: str, data: bytes) -> None:
        """Store the object whole (never visible half-written); RemoteUnavailable on failure."""

    def exists(self, name: str) -> bool:
        """Whether the object is there; RemoteUnavailable on failure."""


def _reason(error: BaseException) -> str:
    """A short, endpoint-free description of a client error."""
    from obstore import exceptions

    if isinstance(error, exceptions.PermissionDeniedError | exceptions.UnauthenticatedError | PermissionError):
        return "access refused (check the credentials in the environment)"
    if isinstance(error, OSError) and error.errno == errno.ENOSPC:
        return "its disk is full"
    # The client's debug dump names the kind of HTTP failure (its first line names settings, retry_timeout too).
    text = str(error).lower()
    if "kind: timeout" in text or "timedout" in text or isinstance(error, TimeoutError):
        return "timed out"
    if "kind: connect" in text or "error sending request" in text or isinstance(error, ConnectionError):
        return "not reachable"
    if "nosuchbucket" in text or ("bucket" in text and "not exist" in text):
        return "no such bucket"
    if "403 forbidden" in text or "accessdenied" in text or "invalidaccesskeyid" in text:
        return "access refused (check the credentials in the environment)"
    if "builder error" in text or "badscheme" in text:
        return "the client refused its configuration (an http:// endpoint needs AWS_ALLOW_HTTP=true)"
    return f"the remote failed ({type(error).__name__})"


class S3Transport:
    """An S3-compatible bucket through obstore; endpoint, region and credentials come from obstore's
    environment (``AWS_ENDPOINT_URL``, ``AWS_REGION``, ``AWS_ACCESS_KEY_ID``, ...)."""

    def __init__(self, url: str, timeout: float) -> None:
        from obstore.store import from_url

        # Our own client options replace obstore's from the environment: carry AWS_ALLOW_HTTP over.
        allow_http = os.environ.get("AWS_ALLOW_HTTP", "").strip().lower() in ("1", "true", "yes", "on")
        try:
            self._store = from_url(
                url,
                client_options={
                    "connect_timeout": timedelta(seconds=min(CONNECT_TIMEOUT, timeout)),
                    "timeout": timedelta(seconds=timeout),
                    "allow_http": allow_http,
                },
                retry_config={
                    "max_retries": 1,
                    "retry_timeout": timedelta(seconds=min(5.0, timeout)),
                    "backoff": {"init_backoff": timedelta(milliseconds=100), "max_backoff": timedelta(seconds=1)},
                },
            )
        except Exception as error:  # a bad environment (e.g. a malformed region): ours to say, without it
            raise RemoteUnavailable(_reason(error)) from None

    def get(self, name: str, max_bytes: int) -> bytes | None:
        """See ``Transport.get``."""
        import obstore

        try:
            result = obstore.get(self._store, name)
            if int(result.meta["size"]) > max_bytes:
                raise TooLarge(name)
            data = bytes(result.bytes())
        except FileNotFoundError:
            return None
        except TooLarge:
            raise
        except Exception as error:
            raise RemoteUnavailable(_reason(error)) from None
        if len(data) > max_bytes:
            raise TooLarge(name)
        return data

    def put(self, name: str, data: bytes) -> None:
        """See ``Transport.put``."""
        import obstore

        try:
            obstore.put(self._store, name, data)
        except Exception as error:
            raise RemoteUnavailable(_reason(error)) from None

    def exists(self, name: str) -> bool:
        """See ``Transport.exists``."""
        import obstore

        try:
            obstore.head(self._store, name)
        except FileNotFoundError:
            return False
        except Exception as error:
            raise RemoteUnavailable(_reason(error)) from None
        return True


class FolderTransport:
    """A folder (a shared drive or NFS mount): ``<root>/ac/<key>``, ``<root>/cas/<digest>``.

    Objects are read without following a link at the object itself and only when they are regular files.
    """

    def __init__(self, root: str) -> None:
        self.root = Path(root)
        if not self.root.is_dir():
            raise RemoteUnavailable("no such folder")

    def get(self, name: str, max_bytes: int) -> bytes | None:
        """See ``Transport.get``."""
        import stat

        path = self.root / name
        try:
            fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
        except FileNotFoundError:
            return None
        except OSError as error:
            if error.errno == errno.ELOOP:
                return None  # a link planted in the cache: not ours, a miss
            raise RemoteUnavailable(_reason(error)) from None
        try:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode):
                return None
            if info.st_size > max_bytes:
                raise TooLarge(name)
            with os.fdopen(fd, "rb") as handle:
                fd = -1
                data = handle.read(max_bytes + 1)
        except OSError as error:
            raise RemoteUnavailable(_reason(error)) from None
        finally:
            if fd >= 0:
                os.close(fd)
        if len(data) > max_bytes:
            raise TooLarge(name)
        return data

    def put(self, name: str, data: bytes) -> None:
        """See ``Transport.put``: a temporary file in the same folder, renamed into place."""
        path = self.root / name
        temporary = path.parent / f".tmp-{secrets.token_hex(8)}"
        try:
            path.parent.mkdir(exist_ok=True)
            with open(temporary, "xb") as handle:
                handle.write(data)
            os.replace(temporary, path)
        except OSError as error:
            with contextlib.suppress(OSError):
                temporary.unlink()
            raise RemoteUnavailable(_reason(error)) from None

    def exists(self, name: str) -> bool:
        """See ``Transport.exists``."""
        return os.path.isfile(self.root / name) and not os.path.islink(self.root / name)


def open_transport(url: str, timeout: float) -> Transport:
    """The transport for a checked remote URL (``s3://...`` or an absolute folder); ``timeout``: seconds one
    request may take (a folder is read and written by the operating system, without one)."""
    if url.startswith("s3://"):
        return S3Transport(url, timeout)
    return FolderTransport(url)
