"""Throughput of the ComfyUI backend against fake servers with a fixed service time (prints figures only).

1. Images/second with 1, 2 and 4 servers, as a ratio of the servers' aggregate capacity (target >= 0.95),
   beside the loop of the original setup guide: submit one prompt, poll /history/{id} every second until
   it is done, then the next.
2. Model switches with a reload penalty, for jobs over 3 checkpoint/LoRA sets in shuffled order (target:
   one per distinct set), beside what the same jobs in manifest order would cost.
3. Servers of different speeds (100 to 800 ms per image), 1, 2, 4 and 8 of them, each in its own process
   like a GPU machine: images/second as a ratio of their aggregate capacity, the sum of 1/service time
   (target >= 0.9), timed from ``start`` (connect, preflight) to the last result.

Run: ``python bench/comfyui_throughput.py [--only 3] [--repeat N]`` (about two minutes). Everything runs
on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import itertools
import logging
import multiprocessing
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pixelbuild.backends.base import GenerationJob
from pixelbuild.backends.comfyui import create
from pixelbuild.backends.comfyui.workflow import bind, load_template, model_set
from pixelbuild.testing import TINY_CKPT, TINY_LORA, FakeComfyServer, lora, make_job

SERVICE_TIME = 0.2  # seconds per image on the fake "GPU"
JOBS_PER_SERVER = 25
NAIVE_JOBS = 5
SWITCH_PENALTY = 1.0
SWITCH_JOBS = 30
SPEEDS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8)  # seconds per image of the 8 heterogeneous servers
IDEAL_SECONDS = 10.0  # jobs per run: what the fleet would finish in this long at full capacity


def _servers(count: int, **kwargs: object) -> list[FakeComfyServer]:
    servers = [FakeComfyServer(**kwargs).start() for _ in range(count)]  # type: ignore[arg-type]
    for server in servers:
        server.knobs.image_time = SERVICE_TIME
    return servers


def _run_backend(servers: Sequence[FakeComfyServer | _Remote], jobs: list[GenerationJob], k: int = 2) -> float:
    with tempfile.TemporaryDirectory() as root:
        backend = create({"servers": [server.url for server in servers], "max_in_flight": k}, Path(root))
        try:
            started = time.monotonic()
            backend.start(jobs)
            for job in backend.ordered(jobs):
                backend.result(job.key)
            return time.monotonic() - started
        finally:
            backend.close()


def _run_naive(server: FakeComfyServer, jobs: list[GenerationJob]) -> float:
    """The setup guide's loop: POST one prompt, GET /history/{id} once a second until it is there, repeat."""
    started = time.monotonic()
    with httpx.Client(base_url=server.url, timeout=30, trust_env=False) as http:
        for job in jobs:
            graph = bind(load_template(job.workflow_path), job.spec, template_name="t", output_prefix="naive/x").graph
            prompt_id = http.post("/prompt", json={"prompt": graph}).json()["prompt_id"]
            for _ in range(120):  # bounded: two minutes per prompt at most
                time.sleep(1.0)
                if http.get(f"/history/{prompt_id}").json():
                    break
            outputs = http.get(f"/history/{prompt_id}").json()[prompt_id]["outputs"]
            for image in next(iter(outputs.values()))["images"]:
                http.get("/view", params=image)
    return time.monotonic() - started


def throughput() -> None:
    print(
        f"1. Throughput, service time {SERVICE_TIME * 1000:.0f} ms per image, 64x64, K=2 prompts in flight per server"
    )
    print(
        f"{'servers':>8} {'jobs':>5} {'capacity img/s':>15} {'pixelbuild img/s':>17} {'ratio':>6}"
        f" {'GPU busy':>9} {'guide loop img/s':>17} {'ratio':>6}"
    )
    for count in (1, 2, 4):
        servers = _servers(count)
        try:
            jobs = [make_job(f"t{count}-{n:03d}", seed=n) for n in range(JOBS_PER_SERVER * count)]
            elapsed = _run_backend(servers, jobs)
            capacity = count / SERVICE_TIME
            rate = len(jobs) / elapsed
            busy = sum(server.busy_time for server in servers) / (elapsed * count)
            naive_jobs = [make_job(f"n{count}-{n:03d}", seed=10_000 + n) for n in range(NAIVE_JOBS)]
            naive_elapsed = _run_naive(servers[0], naive_jobs)
            naive_rate = len(naive_jobs) / naive_elapsed
            print(
                f"{count:>8} {len(jobs):>5} {capacity:>15.2f} {rate:>17.2f} {rate / capacity:>6.3f}"
                f" {busy:>9.3f} {naive_rate:>17.2f} {naive_rate / capacity:>6.3f}"
            )
        finally:
            for server in servers:
                server.close()


def model_switches() -> None:
    sets = [[], [lora(TINY_LORA, 1.0)], [lora("style.safetensors", 0.6)]]
    order = [n % 3 for n in range(SWITCH_JOBS)]
    random.Random(7).shuffle(order)
    jobs = [make_job(f"s-{n:03d}", seed=n, loras=sets[group]) for n, group in enumerate(order)]
    fifo = 1 + sum(1 for a, b in itertools.pairwise(order) if a != b)
    distinct = len({model_set(job.spec) for job in jobs})
    print(
        f"\n2. Model switches, reload penalty {SWITCH_PENALTY:.1f} s, {SWITCH_JOBS} jobs over {distinct} "
        f"checkpoint/LoRA sets in shuffled order (manifest order would load {fifo} times)"
    )
    print(f"{'servers':>8} {'loads':>6} {'target':>7} {'seconds':>8}")
    for count in (1, 2):
        servers = _servers(count, checkpoints=(TINY_CKPT,), loras=(TINY_LORA, "style.safetensors"))
        for server in servers:
            server.knobs.image_time = 0.05
            server.knobs.model_switch_time = SWITCH_PENALTY
        try:
            elapsed = _run_backend(servers, jobs)
            loads = sum(server.model_loads for server in servers)
            print(f"{count:>8} {loads:>6} {distinct:>7} {elapsed:>8.2f}")
        finally:
            for server in servers:
                server.close()


def _serve(image_time: float, pipe: Connection) -> None:
    """A fake server in a process of its own: answers ``stats`` with its counters, ends on ``close``."""
    server = FakeComfyServer().start()
    server.knobs.image_time = image_time
    pipe.send(server.url)
    while (command := pipe.recv()) != "close":
        assert command == "stats"
        pipe.send(
            {
                "accepted": server.accepted,
                "busy": server.busy_time,
                "first": server.first_start,
                "last": server.last_end,
            }
        )
    server.close()


class _Remote:
    """A handle on a fake server process."""

    def __init__(self, image_time: float) -> None:
        context = multiprocessing.get_context("spawn")
        self._pipe, child = context.Pipe()
        self._process = context.Process(target=_serve, args=(image_time, child), daemon=True)
        self._process.start()
        self.url: str = self._pipe.recv()

    def stats(self) -> dict[str, Any]:
        self._pipe.send("stats")
        answer: dict[str, Any] = self._pipe.recv()
        return answer

    def close(self) -> None:
        self._pipe.send("close")
        self._process.join(timeout=10)


def heterogeneous(repeat: int) -> None:
    print(
        f"\n3. Servers of different speeds, each in its own process, K=2; jobs = {IDEAL_SECONDS:.0f} s of the "
        f"fleet's capacity; best and median of {repeat} run(s)"
    )
    header = f"{'servers':>8} {'ms per image':<34} {'jobs':>5} {'capacity img/s':>15} {'img/s':>7} {'ratio':>6}"
    print(f"{header} {'median':>7}")
    for count in (1, 2, 4, 8):
        times = [SPEEDS[index * len(SPEEDS) // count] for index in range(count)]
        capacity = sum(1 / seconds for seconds in times)
        ratios: list[float] = []
        rates: list[float] = []
        for run in range(repeat):
            remotes = [_Remote(seconds) for seconds in times]
            try:
                jobs = [make_job(f"h{count}-{run}-{n:04d}", seed=n) for n in range(round(capacity * IDEAL_SECONDS))]
                elapsed = _run_backend(remotes, jobs)
                rates.append(len(jobs) / elapsed)
                ratios.append(rates[-1] / capacity)
                shares = [remote.stats()["accepted"] for remote in remotes]
                assert sum(shares) == len(jobs), shares
            finally:
                for remote in remotes:
                    remote.close()
        speeds = ",".join(f"{seconds * 1000:.0f}" for seconds in times)
        print(
            f"{count:>8} {speeds:<34} {len(jobs):>5} {capacity:>15.2f} {max(rates):>7.2f} {max(ratios):>6.3f}"
            f" {statistics.median(ratios):>7.3f}"
        )


if __name__ == "__main__":
    logging.basicConfig(level=logging.ERROR)
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", type=int, choices=(1, 2, 3), help="run one section")
    parser.add_argument("--repeat", type=int, default=1, help="runs of section 3 per server count")
    arguments = parser.parse_args()
    if arguments.only in (None, 1):
        throughput()
    if arguments.only in (None, 2):
        model_switches()
    if arguments.only in (None, 3):
        heterogeneous(max(1, arguments.repeat))
