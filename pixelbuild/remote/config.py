"""Which remote cache a command uses: ``project.remote`` in the manifest, overridden by
``PIXELBUILD_REMOTE`` and then ``--remote`` (``--no-remote`` turns it off).

Pure but for ``session_remote``, which reads the process's environment and working folder (it lives here,
not in ``sync``, so that a build without a remote never imports the transfer code). Endpoints, regions and
credentials are never part of the configuration: the client library reads them from its own environment.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

import msgspec

from pixelbuild.errors import UsageError

if TYPE_CHECKING:
    from pixelbuild.project import Session

ENV_VAR = "PIXELBUILD_REMOTE"
#: Transfers in flight at once unless ``project.remote.transfers`` or ``--transfers`` says otherwise.
DEFAULT_TRANSFERS = 16
MAX_TRANSFERS = 256
#: Seconds one request to the remote may take (connecting: at most 3 of them) unless ``project.remote.timeout``
#: says otherwise.
DEFAULT_TIMEOUT = 30.0
MAX_TIMEOUT = 600.0
#: S3 bucket names (the rules every S3-compatible store accepts); a prefix is plain path segments.
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]")
_SEGMENT = re.compile(r"[A-Za-z0-9._\-]+")


class BadRemote(ValueError):
    """A remote cache setting that cannot be used; the message says why (callers say where)."""


class RemoteConfig(msgspec.Struct, frozen=True):
    """A remote cache: ``url`` is ``s3://bucket/prefix`` or an absolute folder; ``push``: write through;
    ``transfers`` in flight at once; ``timeout``: seconds one request may take."""

    url: str
    push: bool = True
    transfers: int = DEFAULT_TRANSFERS
    timeout: float = DEFAULT_TIMEOUT

    @property
    def is_s3(self) -> bool:
        """Whether this remote is an S3-compatible bucket (else a folder)."""
        return self.url.startswith("s3://")


def check_url(url: str, base: Path) -> str:
    """``url`` normalised (an S3 URL as given, a folder or ``file://`` URL as an absolute path resolved
    from ``base``); BadRemote when it is none of these."""
    text = url.strip()
    if not text:
        raise BadRemote("the remote cache is empty; give s3://bucket/prefix or a folder")
    if text.startswith("s3://"):
        parts = urlsplit(text)
        if parts.query or parts.fragment or "@" in parts.netloc or not _BUCKET.fullmatch(parts.netloc):
            raise BadRemote(
                f"{text!r} is not s3://bucket/prefix (a bucket name of 3-63 lowercase letters, digits, "
                "dots or dashes; the endpoint and credentials come from the environment, never from the URL)"
            )
        segments = [segment for segment in parts.path.split("/") if segment]
        if any(not _SEGMENT.fullmatch(s) or s in (".", "..") for s in segments):
            raise BadRemote(f"the prefix of {text!r} may hold letters, digits, '.', '_' and '-' only")
        return "s3://" + "/".join([parts.netloc, *segments])
    if "://" in text:
        parts = urlsplit(text)
        if parts.scheme != "file" or parts.netloc not in ("", "localhost") or parts.query or parts.fragment:
            raise BadRemote(f"{text!r}: a remote cache is s3://bucket/prefix, a folder or a file:// URL")
        text = unquote(parts.path)
    return os.path.normpath(base / os.path.expanduser(text))


def from_manifest(value: Any, project_dir: Path) -> RemoteConfig | None:
    """The manifest's ``project.remote`` (a URL, or ``{url, push, transfers}``; checked by the schema first);
    BadRemote when it cannot be used."""
    if value is None:
        return None
    if isinstance(value, str):
        return RemoteConfig(check_url(value, project_dir))
    if not isinstance(value, Mapping) or not isinstance(value.get("url"), str):
        raise BadRemote("project.remote is a URL or a mapping with 'url'")
    push = value.get("push", True)
    transfers = value.get("transfers", DEFAULT_TRANSFERS)
    timeout = value.get("timeout", DEFAULT_TIMEOUT)
    if not isinstance(push, bool) or type(transfers) is not int or not 1 <= transfers <= MAX_TRANSFERS:
        raise BadRemote(f"project.remote: 'push' is true or false, 'transfers' 1 to {MAX_TRANSFERS}")
    if type(timeout) not in (int, float) or not 0.1 <= timeout <= MAX_TIMEOUT:
        raise BadRemote(f"project.remote: 'timeout' is 0.1 to {MAX_TIMEOUT:.0f} seconds")
    return RemoteConfig(check_url(value["url"], project_dir), push, transfers, float(timeout))


def resolve_remote(
    manifest: RemoteConfig | None,
    env: Mapping[str, str],
    cwd: Path,
    *,
    cli_url: str | None = None,
    disabled: bool = False,
    no_push: bool = False,
    transfers: int | None = None,
) -> RemoteConfig | None:
    """The remote a command uses: ``--no-remote`` → none; else ``--remote``, else ``PIXELBUILD_REMOTE``, else the
    manifest's URL. The manifest's ``push`` and ``transfers`` stay unless ``--no-push``/``--transfers`` change them."""
    if disabled:
        return None
    base = manifest or RemoteConfig("")
    url: str | None = None
    try:
        if cli_url is not None:
            url = check_url(cli_url, cwd)
        elif env.get(ENV_VAR, "").strip():
            url = check_url(env[ENV_VAR], cwd)
    except BadRemote as error:
        raise UsageError(f"{'--remote' if cli_url is not None else ENV_VAR}: {error}") from None
    if url is None and manifest is not None:
        url = manifest.url
    if url is None:
        return None
    if transfers is not None and not 1 <= transfers <= MAX_TRANSFERS:
        raise UsageError(f"--transfers must be 1 to {MAX_TRANSFERS}, got {transfers}")
    return RemoteConfig(url, base.push and not no_push, transfers or base.transfers, base.timeout)


def session_remote(
    session: Session,
    *,
    cli_url: str | None = None,
    disabled: bool = False,
    no_push: bool = False,
    transfers: int | None = None,
    env: Mapping[str, str] | None = None,
) -> RemoteConfig | None:
    """The remote cache of a loaded project, after the environment's and the command line's overrides."""
    return resolve_remote(
        session.resolved.project.remote,
        os.environ if env is None else env,
        Path.cwd(),
        cli_url=cli_url,
        disabled=disabled,
        no_push=no_push,
        transfers=transfers,
    )
