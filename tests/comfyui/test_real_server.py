"""The same client end to end against a real ComfyUI server named by PIXELBUILD_COMFYUI_URL (else skipped).

Uses the first checkpoint and LoRA the server lists (the tiny test models when present), 64x64, 4 steps.
Run: ``PIXELBUILD_COMFYUI_URL=http://127.0.0.1:8188 pytest -m comfyui``.
"""

from __future__ import annotations

import io
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from PIL import Image

from pixelbuild.backends.comfyui import Cancelled, ComfyUIBackend, PreflightError, create
from pixelbuild.testing import TINY_CKPT, TINY_LORA, lora, make_job

URL = os.environ.get("PIXELBUILD_COMFYUI_URL", "").split(",")[0].strip()
pytestmark = [
    pytest.mark.comfyui,
    pytest.mark.skipif(not URL, reason="set PIXELBUILD_COMFYUI_URL to run against a real ComfyUI server"),
]


@pytest.fixture(scope="module")
def models() -> dict[str, str]:
    with httpx.Client(base_url=URL, timeout=10, trust_env=False) as http:
        checkpoints = http.get("/models/checkpoints").json()
        loras = http.get("/models/loras").json()
    if not checkpoints:
        pytest.skip("the server has no checkpoint")
    return {
        "checkpoint": TINY_CKPT if TINY_CKPT in checkpoints else checkpoints[0],
        "lora": TINY_LORA if TINY_LORA in loras else (loras[0] if loras else ""),
    }


@pytest.fixture
def backend(tmp_path: Path) -> Iterator[ComfyUIBackend]:
    made = create({"servers": [URL], "timeout": 60}, tmp_path)
    yield made
    made.close()


def _job(key: str, models: dict[str, str], **overrides: Any) -> Any:
    # A run-unique key keeps the server's cache from answering with another run's files.
    return make_job(f"{key}-{int(time.time() * 1000)}", checkpoint=models["checkpoint"], **overrides)


def test_txt2img(backend: ComfyUIBackend, models: dict[str, str]) -> None:
    job = _job("t2i", models, seed=11)
    backend.start([job])
    result = backend.result(job.key)
    assert [image.size for image in result.images] == [(64, 64)]
    assert result.images[0].info == {}
    assert result.identity.name == "comfyui" and result.identity.version not in ("", "unknown")
    assert result.identity.models == (models["checkpoint"],)


def test_lora_batch_of_four(backend: ComfyUIBackend, models: dict[str, str]) -> None:
    if not models["lora"]:
        pytest.skip("the server has no LoRA")
    job = _job("lora", models, workflow="batch_generation", batch_size=4, loras=[lora(models["lora"], 0.8)])
    backend.start([job])
    result = backend.result(job.key)
    assert len(result.images) == 4
    arrays = [np.asarray(image) for image in result.images]
    assert not np.array_equal(arrays[0], arrays[1])
    assert result.identity.models == (models["checkpoint"], f"lora:{models['lora']}@0.8")


def test_img2img_with_upload(backend: ComfyUIBackend, models: dict[str, str], tmp_path: Path) -> None:
    init = tmp_path / "init.png"
    buffer = io.BytesIO()
    Image.new("RGB", (40, 40), (30, 200, 90)).save(buffer, format="PNG")
    init.write_bytes(buffer.getvalue())
    jobs = [_job(f"i2i{n}", models, workflow="img2img_sd15", init_image=init, denoise=0.6, seed=n) for n in range(2)]
    backend.start(jobs)
    results = [backend.result(job.key) for job in jobs]
    assert all(result.images[0].size == (64, 64) for result in results)


def test_identical_job_is_served_from_the_server_cache(tmp_path: Path, models: dict[str, str]) -> None:
    job = _job("cache", models, seed=5)
    images = []
    for run in range(2):
        # Separate project folders: the second must ask the server, not collect from the first's ledger.
        backend = create({"servers": [URL], "timeout": 60}, tmp_path / f"p{run}")
        try:
            backend.start([job])
            result = backend.result(job.key)
            images.append(result)
        finally:
            backend.close()
    assert images[0].info["files"] == images[1].info["files"]  # the replayed first file
    assert images[0].images[0].tobytes() == images[1].images[0].tobytes()


def test_preflight_catches_an_unknown_checkpoint(backend: ComfyUIBackend, models: dict[str, str]) -> None:
    job = make_job("bad", checkpoint=models["checkpoint"].replace(".safetensors", "x.safetensors"))
    with pytest.raises(PreflightError) as caught:
        backend.start([job])
    assert caught.value.field == "checkpoint"
    assert f"did you mean '{models['checkpoint']}'" in str(caught.value)


def test_cancel_interrupts_the_running_prompt(backend: ComfyUIBackend, models: dict[str, str]) -> None:
    jobs = [_job(f"slow{n}", models, width=512, height=512, steps=30, seed=n) for n in range(3)]
    backend.start(jobs)
    with httpx.Client(base_url=URL, timeout=10, trust_env=False) as http:
        deadline = time.monotonic() + 60
        while not http.get("/queue").json()["queue_running"] and time.monotonic() < deadline:
            time.sleep(0.1)
        ours: set[str] = set()
        for server in backend.servers:
            with server.lock:
                ours.update(server.in_flight)
        assert ours
        backend.cancel()
        # When cancel returns, none of our prompts waits in the queue any more (the running one stops at
        # its next sampler step, below).
        pending = {row[1] for row in http.get("/queue").json()["queue_pending"]}
        assert not ours & pending
        for job in jobs:
            with pytest.raises(Cancelled):
                backend.result(job.key)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            queue = http.get("/queue").json()
            if not queue["queue_running"] and not queue["queue_pending"]:
                break
            time.sleep(0.2)
        assert queue == {"queue_running": [], "queue_pending": []}


def test_pixelbuild_build_end_to_end(models: dict[str, str], tmp_path: Path) -> None:
    """The whole tool on a real server: build, no-op, one edit, and a from-scratch rebuild that reproduces
    the asset tree's pixels."""
    import shutil

    from pixelbuild.builder import BuildOptions, build
    from pixelbuild.checker import check

    project = tmp_path / "game"
    project.mkdir()
    run = int(time.time() * 1000)  # a run-unique prompt: the server's cache must not answer for us
    (project / "pixelbuild.yaml").write_text(
        f"""\
version: 1
project:
  backend: comfyui
  comfyui: {{servers: ["{URL}"], timeout: 120}}
defaults:
  size: 64
  steps: 4
  cfg: 7
  checkpoint: {models["checkpoint"]}
  workflow: txt2img_sd15
  post: [{{resize: {{size: 16, filter: box}}}}]
sprites:
  - {{id: knight, prompt: "pixel knight {run}", seed: 1}}
  - {{id: slime, prompt: "pixel slime {run}", seed: 2}}
"""
    )
    manifest = project / "pixelbuild.yaml"
    first = build(manifest, BuildOptions(jobs=2))
    assert first.ok and first.generator_calls == 2, first.failures
    assert build(manifest, BuildOptions()).noop
    manifest.write_text(manifest.read_text().replace("pixel slime", "pixel red slime"))
    assert build(manifest, BuildOptions()).generator_calls == 1
    assert check(manifest).ok
    lock_before = (project / "pixelbuild.lock").read_bytes()
    shutil.rmtree(project / ".pixelbuild")
    shutil.rmtree(project / "assets")
    again = build(manifest, BuildOptions())
    assert again.ok and again.generator_calls == 2
    # Same seeds, same server: the same pixels, so the same lock, byte for byte.
    assert (project / "pixelbuild.lock").read_bytes() == lock_before


@pytest.mark.parametrize("drain", [True, False], ids=["after-they-ran", "while-queued"])
def test_sigkilled_build_is_resumed_from_the_server(models: dict[str, str], tmp_path: Path, drain: bool) -> None:
    """kill -9 a build while its prompts are queued; rerun once the server has run them (collected from
    /history) or at once (followed on /queue): the rerun posts none of them again."""
    import json
    import signal
    import subprocess
    import sys

    from pixelbuild.builder import BuildOptions, build

    project = tmp_path / "game"
    project.mkdir()
    tag = f"resume{int(time.time() * 1000)}"  # our prompts' SaveImage prefix: pixelbuild-<tag>/<key>
    sprites = "".join(f'  - {{id: s{n}, prompt: "pixel creature {n}", seed: {n}}}\n' for n in range(5))
    (project / "pixelbuild.yaml").write_text(
        f"""\
version: 1
project:
  backend: comfyui
  comfyui: {{servers: ["{URL}"], timeout: 120, max_in_flight: 3, output_prefix: {tag}}}
defaults:
  size: 64
  steps: 2
  checkpoint: {models["checkpoint"]}
  workflow: txt2img_sd15
  post: [{{resize: {{size: 16, filter: box}}}}]
sprites:
{sprites}"""
    )

    def ours(rows: list[Any]) -> list[str]:
        return [
            node["inputs"]["filename_prefix"]
            for row in rows
            for node in row[2].values()
            if node["class_type"] == "SaveImage" and node["inputs"]["filename_prefix"].startswith(tag + "/")
        ]

    with httpx.Client(base_url=URL, timeout=30, trust_env=False) as http:

        def queued() -> list[str]:
            queue = http.get("/queue").json()
            return ours(queue["queue_running"] + queue["queue_pending"])

        def finished() -> list[str]:
            return ours([entry["prompt"] for entry in http.get("/history").json().values()])

        env = {k: v for k, v in os.environ.items() if k != "PIXELBUILD_COMFYUI_URL"}
        command = [sys.executable, "-m", "pixelbuild", "build", "-C", str(project), "--progress", "none"]
        process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and len(queued()) < 2:
            time.sleep(0.05)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)
        killed_run = queued() + finished()
        assert len(killed_run) >= 2, "prompts should have been queued"
        if drain:
            deadline = time.monotonic() + 300
            while time.monotonic() < deadline and queued():
                time.sleep(0.2)
            assert sorted(finished()) == sorted(killed_run)  # the server ran them all after the kill
        else:
            assert queued(), "some prompts should still be queued when the rerun starts"

        rerun = build(project / "pixelbuild.yaml", BuildOptions())
        assert rerun.ok and rerun.generator_calls == 5, rerun.failures
        new = [prefix for prefix in finished() if prefix not in killed_run]
        assert len(finished()) == len(killed_run) + len(new) == 5  # each sprite's prompt was posted once
        ledger = (project / ".pixelbuild/comfyui/prompts.jsonl").read_text().splitlines()
        print(json.dumps({"drain": drain, "killed_run_prompts": len(killed_run), "rerun_new_prompts": len(new)}))
        assert sum('"op":"settled"' in line for line in ledger) == 5
