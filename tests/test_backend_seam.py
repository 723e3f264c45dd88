"""The backend seam: a build takes any ``Backend`` through ``BuildOptions.backend_factory``, and the engine
uses the protocol's ordering and typed progress events directly."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

from pixelbuild.backends import Backend, BackendRequest, GenerationJob, GenerationResult, ProgressCallback
from pixelbuild.backends import create_backend as create_named
from pixelbuild.backends.base import ProgressEvent
from pixelbuild.backends.placeholder import PlaceholderBackend
from pixelbuild.builder import BuildOptions, build
from pixelbuild.progress import QuietProgress


class RecordingProgress(QuietProgress):
    """Keeps every ``working`` message."""

    def __init__(self) -> None:
        self.working_messages: list[tuple[str, str]] = []
        self._lock = threading.Lock()

    def working(self, sprite_id: str, what: str) -> None:
        with self._lock:
            self.working_messages.append((sprite_id, what))


class ReversingBackend:
    """The placeholder's pixels, but it asks for the jobs in reverse and reports two sampler steps each."""

    name = "reversing"

    def __init__(self) -> None:
        self.inner = PlaceholderBackend()
        self.asked: list[str] = []
        self.settled_keys: list[str] = []
        self.callback: ProgressCallback | None = None

    def ordered(self, jobs: Sequence[GenerationJob]) -> list[GenerationJob]:
        return list(reversed(jobs))

    def set_progress_callback(self, callback: ProgressCallback | None) -> None:
        self.callback = callback

    def start(self, jobs: Sequence[GenerationJob]) -> None:
        self.inner.start(jobs)

    def result(self, key: str) -> GenerationResult:
        job = self.inner._jobs[key]
        self.asked.append(job.sprite_id)
        assert self.callback is not None
        for step in (1, 2):
            self.callback(ProgressEvent(key, job.sprite_id, "", "sampling", step, 2))
        return self.inner.result(key)

    def settled(self, key: str) -> None:
        self.settled_keys.append(self.inner._jobs[key].sprite_id)

    def cancel(self) -> None:
        self.inner.cancel()

    def close(self) -> None:
        self.inner.close()


def test_an_injected_backend_orders_the_work_and_reports_progress(make_project: Callable[..., Path]) -> None:
    project = make_project()
    backend = ReversingBackend()
    requests: list[BackendRequest] = []

    def factory(request: BackendRequest) -> Backend:
        requests.append(request)
        return backend

    progress = RecordingProgress()
    options = BuildOptions(servers=("http://cli:9",), backend_factory=factory)
    report = build(project / "pixelbuild.yaml", options, progress)
    assert report.ok and report.generated == 3
    [request] = requests
    assert (request.name, request.project_root, request.servers) == ("placeholder", project, ("http://cli:9",))
    assert backend.asked == ["items/coin", "slime", "hero"]  # the backend's order, not the manifest's
    assert sorted(backend.settled_keys) == sorted(backend.asked)  # each told once its result was cached
    sampling = [entry for entry in progress.working_messages if entry[1].startswith("sampling")]
    assert sampling == [(sprite, f"sampling {step}/2") for sprite in backend.asked for step in (1, 2)]


def test_protocol_defaults_keep_the_manifest_order(make_project: Callable[..., Path]) -> None:
    class Minimal(Backend):
        """Only what a backend must write; ``ordered``, ``set_progress_callback`` and ``settled`` are inherited."""

        name = "minimal"

        def __init__(self) -> None:
            self.inner = PlaceholderBackend()
            self.asked: list[str] = []

        def start(self, jobs: Sequence[GenerationJob]) -> None:
            self.inner.start(jobs)

        def result(self, key: str) -> GenerationResult:
            self.asked.append(self.inner._jobs[key].sprite_id)
            return self.inner.result(key)

        def cancel(self) -> None:
            """Nothing runs in the background."""

        def close(self) -> None:
            """Nothing to release."""

    minimal = Minimal()
    jobs = [GenerationJob(str(n), f"s{n}", None, Path("w.json")) for n in range(3)]  # type: ignore[arg-type]
    assert minimal.ordered(jobs) == jobs and minimal.set_progress_callback(print) is None
    project = make_project()
    report = build(project / "pixelbuild.yaml", BuildOptions(backend_factory=lambda request: minimal))
    assert report.ok and report.generated == 3
    assert minimal.asked == ["hero", "slime", "items/coin"]


def test_the_named_factory_passes_servers_to_the_backend(tmp_path: Path) -> None:
    placeholder = create_named(BackendRequest("placeholder", {}, tmp_path, ("http://ignored:1",)))
    assert isinstance(placeholder, PlaceholderBackend)
    comfy = create_named(BackendRequest("comfyui", {"servers": ["http://manifest:1"]}, tmp_path, ("http://cli:9",)))
    try:
        assert [server.url for server in comfy.settings.servers] == ["http://cli:9"]  # type: ignore[attr-defined]
    finally:
        comfy.close()


def test_a_run_size_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="sprites_per_run must be at least 1"):
        BuildOptions(sprites_per_run=0)


def test_each_backend_a_build_needs_is_requested_and_only_the_projects_gets_the_servers(
    make_project: Callable[..., Path],
) -> None:
    import io

    from PIL import Image

    gem = io.BytesIO()
    Image.new("RGBA", (16, 16), (200, 40, 60, 255)).save(gem, format="PNG")
    manifest = "version: 1\nsprites:\n  - id: slime\n    prompt: green slime\n  - id: gem\n    source: art/gem.png\n"
    project = make_project(manifest, files={"art/gem.png": gem.getvalue()})
    requests: list[BackendRequest] = []

    def factory(request: BackendRequest) -> Backend:
        requests.append(request)
        return create_named(request)

    report = build(project / "pixelbuild.yaml", BuildOptions(servers=("http://cli:9",), backend_factory=factory))
    assert report.ok, report.failures
    by_name = {request.name: request for request in requests}
    assert sorted(by_name) == ["placeholder", "source"] and len(requests) == 2
    assert by_name["placeholder"].servers == ("http://cli:9",)
    assert (by_name["source"].settings, by_name["source"].servers) == ({}, ())
