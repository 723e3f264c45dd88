"""A real S3-compatible server on 127.0.0.1 (moto's standalone server, in a thread), for tests and bench/remote.py.

pixelbuild reaches it through its real client (obstore) over HTTP; only the environment says where it is.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import Any

#: Credentials the tests give the client: the secret is distinctive, so a test can look for it in output.
SECRET = "pb-test-secret-9f3c1d7e5a"
KEY_ID = "PBTESTKEYID0042"


@dataclass
class S3Server:
    """A running moto server: its endpoint and the environment that points a client at it."""

    server: Any
    port: int

    @property
    def endpoint(self) -> str:
        """The server's URL."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def env(self) -> dict[str, str]:
        """Environment variables that point obstore (and boto3) at this server."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ALLOW_HTTP": "true",
            "AWS_ACCESS_KEY_ID": KEY_ID,
            "AWS_SECRET_ACCESS_KEY": SECRET,
            "AWS_REGION": "us-east-1",
            "AWS_DEFAULT_REGION": "us-east-1",
        }

    def client(self) -> Any:
        """A boto3 client, for the test's own hands on the bucket (creating it, damaging an object)."""
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=KEY_ID,
            aws_secret_access_key=SECRET,
            region_name="us-east-1",
        )

    def create_bucket(self, name: str) -> None:
        """Create bucket ``name`` (no error if it exists)."""
        client = self.client()
        with suppress(client.exceptions.BucketAlreadyOwnedByYou):
            client.create_bucket(Bucket=name)

    def stop(self) -> None:
        """Stop the server (further requests are refused)."""
        self.server.stop()


@contextmanager
def s3_server() -> Iterator[S3Server]:
    """Start moto's server on a free port of 127.0.0.1; stop it afterwards."""
    import logging

    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one log line per request otherwise
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    _host, port = server.get_host_and_port()
    running = S3Server(server, int(port))
    try:
        yield running
    finally:
        with suppress(Exception):  # already stopped by the test
            server.stop()


@contextmanager
def environment(values: Mapping[str, str]) -> Iterator[None]:
    """Set environment variables for the duration (for scripts; tests use monkeypatch)."""
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
