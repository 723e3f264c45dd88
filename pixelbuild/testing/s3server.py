"""A real S3-compatible server on 127.0.0.1 (moto's standalone server, in a thread or its own process), for
tests of the remote cache and ``bench/remote.py``: pixelbuild reaches it through its real client (obstore)
over HTTP, and only the environment (``S3Server.env``) says where it is. Needs the ``test`` extra (moto).

    with s3_server() as server:
        server.create_bucket("art")
        os.environ.update(server.env)   # then: pixelbuild build --remote s3://art/team
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


class _Process:
    """moto's server as its own process (``python -m moto.server``), stopped like the threaded one."""

    def __init__(self) -> None:
        import socket
        import subprocess
        import sys
        import time

        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.process = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with socket.socket() as attempt:
                if attempt.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.05)
        self.stop()
        raise RuntimeError("moto's server did not start in 30 s")

    def stop(self) -> None:
        """End the process (once)."""
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)


@contextmanager
def s3_server(process: bool = False) -> Iterator[S3Server]:
    """Start moto's server on a free port of 127.0.0.1 (in a thread, or with ``process`` as its own process,
    so that it does not share the caller's interpreter); stop it afterwards."""
    if process:
        own = _Process()
        try:
            yield S3Server(own, own.port)
        finally:
            own.stop()
        return
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
