"""The ComfyUI backend end to end against fake servers: results, errors, uploads, batches, several servers,
failover, cancellation, websocket loss, retries, preflight."""

from __future__ import annotations

import io
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from pixelbuild.backends import ALL_INPUTS, BACKENDS, BackendRequest, create_backend
from pixelbuild.backends.base import GenerationJob
from pixelbuild.backends.comfyui import Cancelled, ComfyUIBackend, PreflightError, ProgressEvent, create
from pixelbuild.errors import BackendUnavailable, GenerationError
from pixelbuild.testing import TINY_CKPT, TINY_LORA, FakeComfyServer, lora, make_job

Factory = Callable[..., FakeComfyServer]


@pytest.fixture
def backends(tmp_path: Path) -> Iterator[Callable[..., ComfyUIBackend]]:
    made: list[ComfyUIBackend] = []

    def make(*servers: FakeComfyServer | str, **settings: Any) -> ComfyUIBackend:
        urls = [server if isinstance(server, str) else server.url for server in servers]
        config = {"servers": urls, "retries": 1, "unavailable_timeout": 1, "timeout": 5, **settings}
        backend = create(config, tmp_path)
        made.append(backend)
        return backend

    yield make
    for backend in made:
        backend.close()


def _png(color: tuple[int, int, int], size: tuple[int, int] = (32, 32)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, format="PNG")
    return buffer.getvalue()


def _run_all(backend: ComfyUIBackend, jobs: list[GenerationJob]) -> dict[str, Any]:
    backend.start(jobs)
    out: dict[str, Any] = {}
    for job in backend.ordered(jobs):
        try:
            out[job.key] = backend.result(job.key)
        except GenerationError as error:
            out[job.key] = error
    return out


def test_registered_and_created_by_name(fake: FakeComfyServer, tmp_path: Path) -> None:
    info = BACKENDS["comfyui"]
    assert (info.module, info.version, info.inputs) == ("pixelbuild.backends.comfyui", "1", ALL_INPUTS)
    backend = create_backend(BackendRequest("comfyui", {"servers": [fake.url]}, tmp_path))
    assert isinstance(backend, ComfyUIBackend) and backend.name == "comfyui"
    backend.close()


def test_txt2img_result(fake: FakeComfyServer, backends: Callable[..., ComfyUIBackend]) -> None:
    backend = backends(fake)
    events: list[ProgressEvent] = []
    backend.set_progress_callback(events.append)
    job = make_job("k1", "hero", seed=3, width=48, height=32)
    result = _run_all(backend, [job])["k1"]
    assert len(result.images) == 1
    image = result.images[0]
    assert (image.size, image.mode) == ((48, 32), "RGB")
    assert image.info == {}  # the prompt text chunk ComfyUI writes is gone
    assert result.identity.name == "comfyui" and result.identity.version == "0.8.0"
    assert result.identity.models == (TINY_CKPT,)
    assert result.info["server"] == fake.url and result.info["files"] == ["pixelbuild/k1_00001_.png"]
    phases = [event.phase for event in events]
    assert phases[0] == "queued" and phases[-2:] == ["downloading", "done"]
    assert [(event.value, event.max) for event in events if event.phase == "sampling"] == [(n, 4) for n in range(1, 5)]
    assert all(event.sprite_id == "hero" and event.key == "k1" for event in events)
    # Deterministic: the same spec on a fresh server gives the same pixels.
    stored = fake.files[("output", "pixelbuild", "k1_00001_.png")]
    assert np.array_equal(np.asarray(image), np.asarray(Image.open(io.BytesIO(stored)).convert("RGB")))


def test_lora_chain_and_identity(fake_factory: Factory, backends: Callable[..., ComfyUIBackend]) -> None:
    fake = fake_factory(loras=(TINY_LORA, "style.safetensors"))
    backend = backends(fake)
    job = make_job("k1", loras=[lora(weight=0.5), lora("style.safetensors", 1.25)])
    result = _run_all(backend, [job])["k1"]
    assert result.identity.models == (TINY_CKPT, f"lora:{TINY_LORA}@0.5", "lora:style.safetensors@1.25")
    assert fake.model_log == [(TINY_CKPT, (TINY_LORA, 0.5), ("style.safetensors", 1.25))]


def test_batch_of_four(fake: FakeComfyServer, backends: Callable[..., ComfyUIBackend]) -> None:
    backend = backends(fake)
    job = make_job("k4", workflow="batch_generation", batch_size=4)
    result = _run_all(backend, [job])["k4"]
    assert len(result.images) == 4
    assert result.info["files"] == [f"pixelbuild/k4_0000{n}_.png" for n in range(1, 5)]
    arrays = [np.asarray(image) for image in result.images]
    assert not any(np.array_equal(arrays[0], other) for other in arrays[1:])
    single = _run_all(backends(fake), [make_job("k1", batch_size=1)])["k1"]
    assert not np.array_equal(np.asarray(single.images[0]), arrays[0])  # batch size belongs in the key


def test_img2img_uploads_each_init_image_once(
    fake: FakeComfyServer, backends: Callable[..., ComfyUIBackend], tmp_path: Path
) -> None:
    red, blue = tmp_path / "red.png", tmp_path / "blue.png"
    red.write_bytes(_png((255, 0, 0)))
    blue.write_bytes(_png((0, 0, 255)))
    jobs = [
        make_job(f"k{n}", workflow="img2img_sd15", init_image=path, denoise=0.5, seed=n)
        for n, path in enumerate([red, red, blue, red])
    ]
    first = backends(fake)
    results = _run_all(first, jobs)
    for job in jobs:
        first.settled(job.key)  # as the engine does once cached: else the next run collects from history
    assert len(fake.uploads) == 2 and all(name.startswith("pixelbuild/") for name in fake.uploads)
    for job in jobs:
        image = np.asarray(results[job.key].images[0]).astype(int)
        color = (255, 0, 0) if job.init_image_path == red else (0, 0, 255)
        # denoise 0.5 of noise over a flat init image: the mean leans to the init colour.
        assert image.shape == (64, 64, 3)
        assert np.argmax(image.mean(axis=(0, 1))) == np.argmax(color)
    # A second run (new backend, same server) uploads again once: the name is the content hash.
    _run_all(backends(fake), jobs[:1])
    assert fake.uploads[2] == fake.uploads[0]


def test_two_servers_share_the_work(fake_factory: Factory, backends: Callable[..., ComfyUIBackend]) -> None:
    one, two = fake_factory(), fake_factory()
    for server in (one, two):
        server.knobs.hold = True  # accept prompts, run none: shows what each server was given at once
    backend = backends(one, two, max_in_flight=2)
    jobs = [make_job(f"k{n}", seed=n) for n in range(10)]
    backend.start(jobs)
    deadline = time.monotonic() + 30
    while (one.accepted, two.accepted) != (2, 2) and time.monotonic() < deadline:
        time.sleep(0.01)
    # Both servers were fed at the same time, each up to its max_in_flight, and no further.
    assert (one.accepted, two.accepted) == (2, 2)
    assert (len(one.pending_ids()), len(two.pending_ids())) == (2, 2)
    one.release()
    two.release()
    results = {job.key: backend.result(job.key) for job in jobs}
    assert one.executed >= 2 and two.executed >= 2 and one.executed + two.executed == 10
    assert {result.info["server"] for result in results.values()} == {one.url, two.url}
    assert one.max_queue_depth <= 2 and two.max_queue_depth <= 2


def test_killed_server_work_goes_elsewhere(fake_factory: Factory, backends: Callable[..., ComfyUIBackend]) -> None:
    one, two = fake_factory(), fake_factory()
    for server in (one, two):
        server.knobs.image_time = 0.15
    one.knobs.hold_after = 1  # it keeps what it is given next, however late the test stops it
    backend = backends(one, two)
    jobs = [make_job(f"k{n}", seed=n) for n in range(8)]
    backend.start(jobs)
    backend.result(jobs[0].key)
    one.stop()  # killed with prompts queued
    results = {job.key: backend.result(job.key) for job in jobs}
    assert all(result.images for result in results.values())
    assert any(result.info["server"] == two.url for result in results.values())
    assert backend.scheduler is not None and backend.scheduler.stats.requeued >= 1


def test_only_server_killed_fails_cleanly(fake: FakeComfyServer, backends: Callable[..., ComfyUIBackend]) -> None:
    fake.knobs.image_time = 0.15
    fake.knobs.hold_after = 1  # the other four wait on it, however late the test stops it
    backend = backends(fake)
    jobs = [make_job(f"k{n}", seed=n) for n in range(5)]
    backend.start(jobs)
    first = backend.result(jobs[0].key)
    fake.stop()
    # Given up by the scheduler once no server came back within unavailable_timeout (that timing is
    # tested on a fake clock in test_scheduler.py); a hang would trip pytest's timeout.
    with pytest.raises(BackendUnavailable, match="no ComfyUI server could run sprite") as caught:
        backend.result(jobs[-1].key)
    assert "sprite 'sprite-k4'" in str(caught.value) and fake.url in str(caught.value)
    assert backend.result(jobs[0].key).images[0].tobytes() == first.images[0].tobytes()  # finished stays


def test_restarted_server_lost_prompts_are_resubmitted(
    fake: FakeComfyServer, backends: Callable[..., ComfyUIBackend]
) -> None:
    fake.knobs.image_time = 0.2
    backend = backends(fake)
    jobs = [make_job(f"k{n}", seed=n) for n in range(3)]
    backend.start(jobs)
    deadline = time.monotonic() + 30
    while fake.running_id() is None and time.monotonic() < deadline:  # the server holds our prompts
        time.sleep(0.01)
    assert fake.running_id() is not None
    fake.restart()  # forgets queue and history, like a real restart
    results = {job.key: backend.result(job.key) for job in jobs}
    assert all(len(result.images) == 1 for result in results.values())


def test_cancel_deletes_queued_and_interrupts_running(
    fake: FakeComfyServer, backends: Callable[..., ComfyUIBackend]
) -> None:
    fake.knobs.image_time = 0.1
    backend = backends(fake, max_in_flight=2)
    quick = make_job("k0", seed=0)
    slow = [make_job(f"k{n}", seed=n, steps=30) for n in range(1, 5)]
    backend.start([quick])
    done = backend.result("k0")
    made = fake.images_made
    fake.knobs.image_time = 5.0
    backend.start(slow)
    deadline = time.monotonic() + 30
    while (fake.running_id() is None or not fake.pending_ids()) and time.monotonic() < deadline:
        time.sleep(0.01)
    running, pending = fake.running_id(), fake.pending_ids()
    assert running and pending
    backend.cancel()
    # By the time cancel returns, the queued prompts are gone and the running one is told to stop.
    assert set(pending) <= set(fake.deleted) and not set(pending) & set(fake.pending_ids())
    assert {"prompt_id": running} in fake.interrupts
    for job in slow:
        with pytest.raises(Cancelled):
            backend.result(job.key)
    assert backend.result("k0").images[0].tobytes() == done.images[0].tobytes()
    deadline = time.monotonic() + 30  # a bound for a hang only: the interrupt lands at the next sampler step
    while running not in fake.history and time.monotonic() < deadline:
        time.sleep(0.01)
    assert fake.history[running]["status"]["status_str"] == "error"  # interrupted at the next step
    assert [run.status for run in fake.executions if run.prompt_id == running] == ["interrupted"]
    assert fake.images_made == made  # no slow prompt was waited out: each was withdrawn or stopped
    assert fake.running_id() is None and fake.pending_ids() == []
    with pytest.raises(RuntimeError, match="cancelled"):
        backend.start([make_job("k9")])


def test_close_withdraws_unfinished_work(fake: FakeComfyServer, tmp_path: Path) -> None:
    fake.knobs.image_time = 5.0
    backend = create({"servers": [fake.url]}, tmp_path)
    jobs = [make_job(f"k{n}", seed=n) for n in range(3)]
    backend.start(jobs)
    while fake.running_id() is None:
        time.sleep(0.01)
    backend.close()
    with pytest.raises(Cancelled):
        backend.result("k2")
    assert fake.interrupts


def test_websocket_drops_fall_back_to_polling(fake: FakeComfyServer, backends: Callable[..., ComfyUIBackend]) -> None:
    fake.knobs.drop_ws_after_frames = 4
    backend = backends(fake)
    results = _run_all(backend, [make_job(f"k{n}", seed=n) for n in range(4)])
    assert all(len(result.images) == 1 for result in results.values())
    assert fake.ws_connects >= 3  # reconnected after each drop


def test_no_websocket_at_all(fake: FakeComfyServer, backends: Callable[..., ComfyUIBackend]) -> None:
    fake.knobs.ws_enabled = False
    results = _run_all(backends(fake), [make_job("k1"), make_job("k2", seed=2)])
    assert all(len(result.images) == 1 for result in results.values())


def test_history_written_late(fake: FakeComfyServer, backends: Callable[..., ComfyUIBackend]) -> None:
    fake.knobs.history_lag = 0.3
    assert len(_run_all(backends(fake), [make_job("k1")])["k1"].images) == 1


def test_5xx_is_retried_4xx_is_not(fake: FakeComfyServer, backends: Callable[..., ComfyUIBackend]) -> None:
    fake.knobs.fail_http["POST /prompt"] = 1
    assert len(_run_all(backends(fake), [make_job("k1")])["k1"].images) == 1
    assert fake.requests["POST /prompt"] == 2
    fake.knobs.fail_http["GET /view"] = 10
    error = _run_all(backends(fake), [make_job("k2", seed=9)])["k2"]
    assert isinstance(error, GenerationError) and not isinstance(error, BackendUnavailable)
    assert "HTTP 500" in str(error) and "sprite 'sprite-k2'" in str(error)


def test_server_side_rejection_after_preflight(fake: FakeComfyServer, backends: Callable[..., ComfyUIBackend]) -> None:
    backend = backends(fake)
    backend.start([make_job("warm")])
    backend.result("warm")
    fake.checkpoints = ["other.safetensors"]  # the model vanished after preflight
    posted = fake.requests["POST /prompt"]
    backend.start([make_job("k1", "hero", seed=5)])
    with pytest.raises(GenerationError) as caught:
        backend.result("k1")
    assert caught.value.field == "checkpoint" and caught.value.sprite == "hero"
    assert "has no checkpoint 'tiny-sd15.safetensors'" in str(caught.value)
    assert fake.requests["POST /prompt"] == posted + 1  # a validation error is never retried


def test_accepted_with_node_errors_is_a_failure(
    fake: FakeComfyServer, backends: Callable[..., ComfyUIBackend], tmp_path: Path
) -> None:
    import json

    from pixelbuild.backends.comfyui.templates import builtin_template

    graph = json.loads(builtin_template("txt2img_sd15").read_text())
    graph["20"] = {"class_type": "LoadImage", "inputs": {"image": "missing.png"}}
    graph["21"] = {"class_type": "SaveImage", "inputs": {"images": ["20", 0], "filename_prefix": "side"}}
    template = tmp_path / "two_outputs.json"
    template.write_text(json.dumps(graph))
    job = make_job("k1", "hero")
    job = GenerationJob(job.key, job.sprite_id, job.spec, template)
    error = _run_all(backends(fake), [job])["k1"]
    assert isinstance(error, GenerationError)
    assert "node 20 (LoadImage)" in str(error) and "Invalid image file: missing.png" in str(error)
    assert fake.deleted or fake.interrupts  # the half-accepted prompt was taken back


def test_execution_error_names_node_and_exception(
    fake_factory: Factory, backends: Callable[..., ComfyUIBackend]
) -> None:
    fake = fake_factory(loras=(TINY_LORA, "corrupt-test.safetensors"))
    error = _run_all(backends(fake), [make_job("k1", "hero", loras=[lora("corrupt-test.safetensors")])])["k1"]
    assert isinstance(error, GenerationError)
    assert error.field == "loras[0]"
    assert "LoraLoader" in str(error) and "SafetensorError: Error while deserializing header" in str(error)


def test_interrupted_by_someone_else_is_resubmitted(
    fake: FakeComfyServer, backends: Callable[..., ComfyUIBackend]
) -> None:
    fake.knobs.image_time = 0.3
    backend = backends(fake)
    backend.start([make_job("k1")])
    while fake.running_id() is None:
        time.sleep(0.01)
    import httpx

    httpx.post(f"{fake.url}/interrupt", json={})  # someone pressed cancel in the ComfyUI page
    assert len(backend.result("k1").images) == 1
    assert fake.accepted == 2


def test_deleted_output_files_are_regenerated(fake: FakeComfyServer, backends: Callable[..., ComfyUIBackend]) -> None:
    first = _run_all(backends(fake), [make_job("k1")])["k1"]
    made = fake.images_made
    second = _run_all(backends(fake), [make_job("k1")])["k1"]  # identical prompt: served from cache
    assert fake.images_made == made and second.info["files"] == first.info["files"]
    for key in [key for key in fake.files if key[0] == "output"]:
        del fake.files[key]
    third = _run_all(backends(fake), [make_job("k1")])["k1"]
    assert third.info["files"] == ["pixelbuild/k1_r1_00001_.png"]
    assert third.images[0].tobytes() == first.images[0].tobytes()


def test_job_timeout(fake: FakeComfyServer, backends: Callable[..., ComfyUIBackend]) -> None:
    fake.knobs.image_time = 5.0
    error = _run_all(backends(fake, job_timeout=0.3), [make_job("k1")])["k1"]
    assert isinstance(error, GenerationError) and "job_timeout" in str(error)
    assert fake.interrupts or fake.deleted


def test_preflight_stops_before_any_prompt(fake: FakeComfyServer, backends: Callable[..., ComfyUIBackend]) -> None:
    backend = backends(fake)
    jobs = [
        make_job("k1", "hero", checkpoint="tiny-sd16.safetensors"),
        make_job("k2", "villain", loras=[lora("tiny-sd15-lora")]),
        make_job("k3", "ok"),
    ]
    with pytest.raises(PreflightError) as caught:
        backend.start(jobs)
    assert fake.posted == 0
    assert [(problem.sprite, problem.field) for problem in caught.value.problems] == [
        ("hero", "checkpoint"),
        ("villain", "loras[0]"),
    ]
    assert "did you mean 'tiny-sd15.safetensors'" in str(caught.value)


def test_preflight_uses_each_servers_catalog(fake_factory: Factory, backends: Callable[..., ComfyUIBackend]) -> None:
    plain, styled = fake_factory(), fake_factory(loras=(TINY_LORA, "style.safetensors"))
    backend = backends(plain, styled)
    jobs = [make_job(f"k{n}", seed=n, loras=[lora("style.safetensors")]) for n in range(4)]
    results = _run_all(backend, jobs)
    assert {result.info["server"] for result in results.values()} == {styled.url}
    assert plain.posted == 0


def test_no_server_answers(backends: Callable[..., ComfyUIBackend]) -> None:
    backend = backends("http://127.0.0.1:9")
    with pytest.raises(BackendUnavailable) as caught:
        backend.start([make_job("k1")])
    text = str(caught.value)
    assert "http://127.0.0.1:9" in text
    assert "python main.py --listen 127.0.0.1 --port 8188" in text
    assert "PIXELBUILD_COMFYUI_URL" in text and "--server" in text
    assert caught.value.exit_code == 3


def test_one_of_two_servers_down_at_start(fake: FakeComfyServer, backends: Callable[..., ComfyUIBackend]) -> None:
    backend = backends("http://127.0.0.1:9", fake)
    assert len(_run_all(backend, [make_job("k1")])["k1"].images) == 1
    assert [server.url for server in backend.servers] == [fake.url]


def test_groups_run_together(fake: FakeComfyServer, backends: Callable[..., ComfyUIBackend]) -> None:
    fake.loras = [TINY_LORA, "b.safetensors"]
    sets = [[], [lora()], [lora("b.safetensors", 0.5)]]
    order = [2, 0, 1, 1, 2, 0, 0, 2, 1, 0, 1, 2]
    jobs = [make_job(f"k{n}", seed=n, loras=sets[group]) for n, group in enumerate(order)]
    backend = backends(fake)
    grouped = backend.ordered(jobs)
    assert [job.key for job in grouped][:4] == ["k0", "k4", "k7", "k11"]  # first seen group first
    _run_all(backend, jobs)
    assert fake.model_loads == 3


def test_same_key_runs_once_and_result_is_thread_safe(
    fake: FakeComfyServer, backends: Callable[..., ComfyUIBackend]
) -> None:
    fake.knobs.image_time = 0.05
    backend = backends(fake)
    jobs = [make_job(f"k{n % 4}", f"sprite{n}", seed=n % 4) for n in range(8)]
    backend.start(jobs)
    errors: list[BaseException] = []
    sizes: list[int] = []

    def fetch(key: str) -> None:
        try:
            sizes.append(len(backend.result(key).images))
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=fetch, args=(f"k{n % 4}",)) for n in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert not errors and sizes == [1] * 16
    assert fake.accepted == 4
    with pytest.raises(KeyError):
        backend.result("nope")
