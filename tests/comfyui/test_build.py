"""`pixelbuild build` end to end on the ComfyUI backend, against fake servers on loopback."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from PIL import Image

from pixelbuild.builder import BuildOptions, build
from pixelbuild.testing import FakeComfyServer
from tests.conftest import REPO, Result, build_json


def manifest(servers: list[str], sprites: str, extra_settings: str = "") -> str:
    urls = ", ".join(servers)
    return textwrap.dedent(
        f"""\
            version: 1
            project:
              backend: comfyui
              comfyui:
                servers: [{urls}]
                timeout: 5
                retries: 1
                unavailable_timeout: 1
            {textwrap.indent(extra_settings, "    ")}
            defaults:
              size: 64
              steps: 4
              cfg: 7
              checkpoint: tiny-sd15.safetensors
              workflow: txt2img_sd15
              post:
                - resize: {{size: 16, filter: box}}
            sprites:
            """
    ) + textwrap.indent(textwrap.dedent(sprites), "  ")


SIX = "".join(f"- id: s{i}\n  prompt: creature number {i}\n" for i in range(6))


def png(colour: tuple[int, int, int]) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (64, 64), colour).save(buffer, format="PNG")
    return buffer.getvalue()


def test_build_generates_once_then_is_up_to_date(
    cli: Callable[..., Result], make_project: Callable[..., Path], fake: FakeComfyServer
) -> None:
    project = make_project(manifest([fake.url], SIX))
    report = build_json(cli, project)
    assert (report["generator_calls"], report["generated"]) == (6, 6)
    assert fake.accepted == 6
    lock = json.loads((project / "pixelbuild.lock").read_text())
    backend = lock["sprites"]["s0"]["backend"]
    assert backend == {"name": "comfyui", "version": "0.8.0", "models": ["tiny-sd15.safetensors"]}
    assert build_json(cli, project)["noop"] is True
    assert cli("check", "-C", project).code == 0
    assert fake.accepted == 6


def test_template_edit_regenerates_exactly_its_sprites(
    cli: Callable[..., Result], make_project: Callable[..., Path], fake: FakeComfyServer
) -> None:
    template = (REPO / "workflows/txt2img_sd15.json").read_text()
    project = make_project(
        manifest([fake.url], SIX + "- id: custom\n  prompt: special\n  workflow: workflows/mine.json\n"),
        files={"workflows/mine.json": template},
    )
    build_json(cli, project)
    graph = json.loads(template)
    sampler = next(node for node in graph.values() if node["class_type"] == "KSampler")
    sampler["_meta"] = {"title": "My sampler"}  # any edit of the template file counts
    (project / "workflows/mine.json").write_text(json.dumps(graph, indent=1))
    plan = cli("plan", "-C", project, "--json").json
    stale = [(s["id"], s["reasons"]) for s in plan["sprites"] if s["action"] != "up-to-date"]
    assert stale == [("custom", ["workflow changed"])]
    before = fake.accepted
    report = build_json(cli, project)
    assert report["generator_calls"] == 1 and fake.accepted == before + 1


def test_lora_chain_and_batch_frames(
    cli: Callable[..., Result], make_project: Callable[..., Path], fake: FakeComfyServer
) -> None:
    project = make_project(
        manifest(
            [fake.url],
            """\
            - id: walk
              prompt: knight walking
              frames: 4
              loras: [{name: tiny-sd15-lora.safetensors, weight: 0.7}]
            """,
        )
    )
    report = build_json(cli, project)
    assert report["generator_calls"] == 1 and fake.images_made == 4
    with Image.open(project / "assets/walk.png") as strip:
        assert strip.size == (64, 16)
    lock = json.loads((project / "pixelbuild.lock").read_text())
    assert lock["sprites"]["walk"]["backend"]["models"] == [
        "tiny-sd15.safetensors",
        "lora:tiny-sd15-lora.safetensors@0.7",
    ]


def test_img2img_uploads_a_shared_init_image_once(
    cli: Callable[..., Result], make_project: Callable[..., Path], fake: FakeComfyServer
) -> None:
    project = make_project(
        manifest(
            [fake.url],
            """\
            - id: a
              prompt: red knight
              workflow: img2img_sd15
              init_image: refs/knight.png
              denoise: 0.6
            - id: b
              prompt: blue knight
              workflow: img2img_sd15
              init_image: refs/knight.png
              denoise: 0.6
            """,
        ),
        files={"refs/knight.png": png((200, 40, 40))},
    )
    assert build_json(cli, project)["generator_calls"] == 2
    assert len(fake.uploads) == 1
    (project / "refs/knight.png").write_bytes(png((40, 40, 200)))
    report = build_json(cli, project)
    assert report["generator_calls"] == 2 and len(fake.uploads) == 2


def test_two_servers_share_the_work(
    cli: Callable[..., Result], make_project: Callable[..., Path], fake_factory: Callable[..., FakeComfyServer]
) -> None:
    one, two = fake_factory(), fake_factory()
    one.knobs.image_time = two.knobs.image_time = 0.05
    project = make_project(manifest([one.url, two.url], SIX))
    assert build_json(cli, project)["generator_calls"] == 6
    assert one.accepted >= 2 and two.accepted >= 2 and one.accepted + two.accepted == 6


def test_unknown_checkpoint_is_a_located_error_before_any_generation(
    cli: Callable[..., Result], make_project: Callable[..., Path], fake: FakeComfyServer
) -> None:
    project = make_project(manifest([fake.url], SIX + "- id: odd\n  prompt: x\n  checkpoint: tiny-sd16.safetensors\n"))
    result = cli("build", "-C", project)
    assert result.code == 2, result.err
    message = result.err.strip()
    assert "\n" not in message and "Traceback" not in message
    lines = (project / "pixelbuild.yaml").read_text().splitlines()
    line = next(n for n, text in enumerate(lines, 1) if "tiny-sd16" in text)
    assert f"pixelbuild.yaml:{line}:" in message and "sprite 'odd'" in message and "field 'checkpoint'" in message
    assert "tiny-sd15.safetensors" in message  # what the server has
    assert fake.accepted == 0
    assert not (project / "pixelbuild.lock").exists()


def test_no_server_answering_is_one_clear_paragraph(
    cli: Callable[..., Result], make_project: Callable[..., Path]
) -> None:
    project = make_project(manifest(["http://127.0.0.1:9"], SIX))
    result = cli("build", "-C", project)
    assert result.code == 3
    message = result.err.strip()
    assert "http://127.0.0.1:9" in message and "PIXELBUILD_COMFYUI_URL" in message
    assert "Traceback" not in message


def test_execution_error_names_the_sprite_and_keeps_the_rest(
    cli: Callable[..., Result], make_project: Callable[..., Path], fake_factory: Callable[..., FakeComfyServer]
) -> None:
    fake = fake_factory(checkpoints=("tiny-sd15.safetensors", "corrupt-test.safetensors"))
    project = make_project(
        manifest([fake.url], SIX + "- id: bad\n  prompt: x\n  checkpoint: corrupt-test.safetensors\n")
    )
    result = cli("build", "-C", project)
    assert result.code == 1
    (line,) = [line for line in result.err.splitlines() if line.startswith("FAILED")]
    assert line.split()[1] == "bad:" and "SafetensorError" in line
    assert "6 generated, 1 failed" in result.out
    lock = json.loads((project / "pixelbuild.lock").read_text())
    assert sorted(lock["sprites"]) == [f"s{i}" for i in range(6)]


def test_server_killed_mid_build_keeps_finished_sprites(
    make_project: Callable[..., Path], fake: FakeComfyServer
) -> None:
    fake.knobs.image_time = 0.15
    fake.knobs.hold_after = 2  # four sprites are left when the server dies, however late the test stops it
    project = make_project(manifest([fake.url], SIX))
    reports = []
    runner = threading.Thread(target=lambda: reports.append(build(project / "pixelbuild.yaml", BuildOptions())))
    runner.start()
    journal = project / ".pixelbuild/journal.jsonl"
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and not (journal.exists() and journal.read_text().count("\n") >= 2):
        time.sleep(0.02)
    fake.stop()
    runner.join(timeout=60)
    assert not runner.is_alive()
    (report,) = reports
    assert report.failures and report.generated >= 2
    lock = json.loads((project / "pixelbuild.lock").read_text())
    finished = set(lock["sprites"])
    assert len(finished) == report.generated
    for sprite_id in finished:
        assert (project / "assets" / f"{sprite_id}.png").is_file()

    fake.knobs.hold_after, fake.knobs.hold = None, False
    fake.start()
    rerun = build(project / "pixelbuild.yaml", BuildOptions())
    assert rerun.ok and rerun.generator_calls == 6 - len(finished)


def test_ctrl_c_cancels_our_queued_prompts(make_project: Callable[..., Path], fake: FakeComfyServer) -> None:
    fake.knobs.image_time = 0.5
    project = make_project(manifest([fake.url], SIX, extra_settings="max_in_flight: 3"))
    env = {k: v for k, v in os.environ.items() if k != "PIXELBUILD_COMFYUI_URL"}
    env["PYTHONPATH"] = str(REPO)
    process = subprocess.Popen(
        [sys.executable, "-m", "pixelbuild", "build", "-C", str(project), "--progress", "none"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and not (fake.running_id() and fake.pending_ids()):
        time.sleep(0.02)
    assert fake.pending_ids(), "prompts should be queued on the server"
    process.send_signal(signal.SIGINT)
    _out, err = process.communicate(timeout=30)
    assert process.returncode == 130, err.decode()
    assert b"Traceback" not in err
    assert fake.pending_ids() == []
    deadline = time.monotonic() + 30  # a bound for a hang only: an interrupt lands at the next sampler step
    while time.monotonic() < deadline and fake.running_id() is not None:
        time.sleep(0.02)
    assert fake.running_id() is None
    assert fake.deleted and fake.interrupts


def test_server_dying_for_good_mid_build_exits_3_and_keeps_finished_sprites(
    cli: Callable[..., Result], make_project: Callable[..., Path], fake: FakeComfyServer
) -> None:
    fake.knobs.image_time = 0.15
    fake.knobs.hold_after = 2  # four sprites are left when the server dies, however late the test stops it
    project = make_project(manifest([fake.url], SIX))
    journal = project / ".pixelbuild/journal.jsonl"

    def kill_after_two() -> None:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not (journal.exists() and journal.read_text().count("\n") >= 2):
            time.sleep(0.02)
        fake.stop()

    killer = threading.Thread(target=kill_after_two)
    killer.start()
    result = cli("build", "-C", project, "--json")
    killer.join()
    assert result.code == 3, result.err
    error = result.json["error"]
    assert (error["kind"], error["exit_code"]) == ("unavailable", 3)
    assert error["message"].startswith("no ComfyUI server could run sprite 's")
    assert fake.url in error["message"] and "Run the build again once a server answers." in error["message"]
    assert result.err == f"pixelbuild: error: {error['message']}\n"  # said once, in one paragraph
    finished = set(json.loads((project / "pixelbuild.lock").read_text())["sprites"])
    assert len(finished) == result.json["generated"] >= 2
    assert f"the {len(finished)} finished are in the lock" in error["message"]
    assert sorted(result.json["failures"]) == sorted({f"s{i}" for i in range(6)} - finished)


def test_preflight_counts_sprites_not_generations(
    cli: Callable[..., Result], make_project: Callable[..., Path], fake: FakeComfyServer
) -> None:
    animated = "".join(
        f"- id: {name}\n  prompt: {name}\n  frames: [{{}}, {{seed: 5}}, {{seed: 6}}]\n" for name in ("a", "b", "c")
    )
    project = make_project(manifest([fake.url], animated).replace("tiny-sd15.safetensors", "tiny-sd16.safetensors"))
    result = cli("build", "-C", project)
    assert result.code == 2, result.err
    assert "sprite 'a', field 'checkpoint'" in result.err
    assert "; the same for 2 more sprite(s): b, c" in result.err
    assert result.err.count(" b,") == 1 and fake.accepted == 0


def test_disk_full_stops_the_build_and_takes_our_prompts_back(
    cli: Callable[..., Result],
    make_project: Callable[..., Path],
    fake: FakeComfyServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from tests.test_cli_messages import fill_disk_after

    fake.knobs.image_time = 0.2
    project = make_project(manifest([fake.url], SIX, extra_settings="max_in_flight: 3"))
    fill_disk_after(monkeypatch, 3)  # the first generation's cache entries, then nothing
    result = cli("build", "-C", project, "-j", "3")  # threads wait on generations when the disk fills
    assert result.code == 1, result.err
    assert result.err.splitlines()[-1].startswith("pixelbuild: error: no space left on device at ")
    assert "FAILED" not in result.err + result.out  # cancelled for the full disk, not failed
    assert fake.pending_ids() == [] and fake.accepted < 6
