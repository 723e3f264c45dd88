"""Random mutations of a valid manifest: every outcome is success or one located paragraph with exit 2.

Bounded by default (``--fuzz-count``, 100 cases, a few seconds); ``pytest tests/test_fuzz_manifest.py
--fuzz-count 3000`` runs a longer campaign, ``--fuzz-seed`` another one. Each case runs ``validate`` and ``plan``, and
``build`` when the mutated manifest is valid and small enough to build quickly.
"""

from __future__ import annotations

import copy
import io
import random
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from PIL import Image

from pixelbuild.errors import PixelbuildError
from pixelbuild.manifest import load_manifest
from pixelbuild.resolver import resolve
from tests.conftest import REPO, Result

BASE: dict[str, Any] = {
    "version": 1,
    "project": {"output": "assets", "keep": ["ui/**"]},
    "include": ["parts/*.yaml"],
    "defaults": {"size": 32, "steps": 4, "post": [{"pixelate": {"mode": "box", "size": 16}}, "trim"]},
    "sprites": [
        {"id": "hero", "prompt": "knight", "seed": 5, "output": "chars/hero.png"},
        {
            "id": "walk",
            "prompt": "knight walking",
            "frames": [{}, {"prompt": "step"}, {"seed": 9}],
            "layout": {"type": "grid", "columns": 2, "padding": 1},
        },
        {
            "id": "slime_{colour}",
            "prompt": "{colour} slime",
            "matrix": {"colour": ["red", "blue"]},
            "post": [{"palette": {"file": "palettes/two.hex"}}, {"outline": {"color": "#000000ff"}}],
        },
        {"id": "ref", "prompt": "from a picture", "init_image": "art/ref.png", "denoise": 0.5},
        {"id": "flow", "prompt": "custom", "workflow": "flows/custom.json", "cfg": 7.5},
    ],
    "atlases": [{"id": "all", "sprites": ["hero", "slime_*"], "formats": ["texturepacker-hash", "godot"]}],
}
PART = {"sprites": [{"id": "coin", "prompt": "gold coin", "size": 16, "post": [{"scale": {"factor": 2}}]}]}

#: Values that often still validate, so that mutations reach resolution and the build too.
PLAUSIBLE: list[Any] = [
    2,
    3,
    16,
    24,
    64,
    0.25,
    "blue",
    "a/b",
    "x.png",
    "sub/x.png",
    "hero_{colour}",
    ["red"],
    "trim",
    "flip",
    {"trim": {"margin": 2}},
    {"canvas": {"size": 40, "anchor": "bottom-center"}},
    {"seed": 1},
    {},
    "vertical",
]
HOSTILE: list[Any] = [
    0,
    -1,
    1,
    7,
    8192,
    16384,
    2**31,
    2**64,
    10**30,
    -(2**63),
    0.5,
    -0.0,
    1e308,
    float("nan"),
    float("inf"),
    True,
    False,
    None,
    "",
    " ",
    "x" * 300,
    "\x00",
    "a\nb",
    "tab\there",
    "../x.png",
    "/abs.png",
    "C:\\x.png",
    "CON",
    "aux.png",
    "lpt1/x.png",
    "x.png/y.png",
    "é" * 200,
    ".pixelbuild",
    ".",
    "*",
    "{colour}",
    "{nope}",
    "#ff0000",
    "not a colour",
    "pico-8",
    "auto",
    "grid",
    "hero",
    [],
    {},
    [1, 2],
    [[[]]],
    {"a": 1},
    {"size": 1},
    ["x"] * 300,
    {"resize": {"size": 8192}},
    {"pad": {"amount": 16384}},
    {"scale": {"factor": 64}},
]


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path to a value inside ``node``."""
    found = [prefix]
    if isinstance(node, dict):
        for key, value in node.items():
            found += _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found += _paths(value, (*prefix, index))
    return found


def _mutate_data(rng: random.Random, data: Any) -> Any:
    data = copy.deepcopy(data)
    for _ in range(rng.choice((1, 1, 2, 3))):
        path = rng.choice(_paths(data)[1:])
        parent = data
        for step in path[:-1]:
            parent = parent[step]
        last = path[-1]
        action = rng.random()
        if action < 0.55:
            parent[last] = copy.deepcopy(rng.choice(PLAUSIBLE if rng.random() < 0.4 else HOSTILE))
        elif action < 0.7 and isinstance(parent, dict):
            del parent[last]
        elif action < 0.8 and isinstance(parent, list):
            parent.insert(rng.randrange(len(parent) + 1), copy.deepcopy(parent[last]))
        elif isinstance(parent[last], dict):
            key = rng.choice(["size", "frames", "seed", "output", "matrix", "post", "id", "layout", "bogus", "x" * 40])
            parent[last][key] = copy.deepcopy(rng.choice(HOSTILE))
        else:
            parent[last] = copy.deepcopy(rng.choice(HOSTILE))
    return data


def _mutate_text(rng: random.Random, text: bytes) -> bytes:
    lines = text.split(b"\n")
    action = rng.randrange(7)
    index = rng.randrange(len(lines))
    if action == 0:
        del lines[index]
    elif action == 1:
        lines.insert(index, lines[rng.randrange(len(lines))])
    elif action == 2 and lines[index]:
        position = rng.randrange(len(lines[index]))
        line = bytearray(lines[index])
        line[position] = rng.randrange(256)
        lines[index] = bytes(line)
    elif action == 3:
        return text[: rng.randrange(len(text))]
    elif action == 4:
        lines.insert(
            index,
            rng.choice(
                [b"\t- x", b"  &a [*a]", b"- &b {x: *b}", b"\xff\xfe", b"  ? [a]", b"!!python/object:os.system x"]
            ),
        )
    elif action == 5:
        lines[index] = b"  " + lines[index]
    else:
        lines.insert(index, b"x: &x [" + b",".join([b"y"] * 12) + b"]")
    return b"\n".join(lines)


def _write_project(root: Path, manifest: bytes) -> Path:
    project = root / "project"
    (project / "parts").mkdir(parents=True)
    (project / "palettes").mkdir()
    (project / "art").mkdir()
    (project / "flows").mkdir()
    (project / "pixelbuild.yaml").write_bytes(manifest)
    (project / "parts" / "coin.yaml").write_text(yaml.safe_dump(PART))
    (project / "palettes" / "two.hex").write_text("000000\nffffff\n")
    buffer = io.BytesIO()
    Image.new("RGB", (32, 32), (200, 40, 40)).save(buffer, "PNG")
    (project / "art" / "ref.png").write_bytes(buffer.getvalue())
    (project / "flows" / "custom.json").write_text((REPO / "workflows" / "txt2img_sdxl.json").read_text())
    (root / "outside.txt").write_text("do not touch")
    return project


def _small_enough_to_build(project: Path) -> bool:
    try:
        sprites = resolve(load_manifest(project / "pixelbuild.yaml")).sprites
    except PixelbuildError:
        return False
    pixels = sum(g.width * g.height * g.batch_size for s in sprites for g in s.generations)
    return len(sprites) <= 20 and pixels <= 20 * 128 * 128


def _check(result: Result, command: str, case: str) -> None:
    where = f"case {case}, {command}"
    # A build may also fail a step for what only the generated pictures tell (an atlas that does not fit
    # its max_size once trimmed): exit 1 with a FAILED line, never a bug.
    allowed = (0, 1, 2) if command == "build" else (0, 2)
    assert result.code in allowed, f"{where}: exit {result.code}: {result.err}"
    everything = result.out + result.err
    assert "Traceback" not in everything and "internal error" not in everything, f"{where}: {everything}"
    if result.code == 2:
        message = result.err.strip()
        assert message.startswith("pixelbuild: error: "), f"{where}: {message}"
        assert "\n" not in message, f"{where}: not one paragraph: {message!r}"
        assert len(message) < 2000, f"{where}: {len(message)} characters"


@pytest.mark.timeout(3600)  # --fuzz-count 5000 runs for minutes; each command in it is bounded anyway
def test_random_manifest_mutations(cli: Callable[..., Result], tmp_path: Path, request: pytest.FixtureRequest) -> None:
    count: int = request.config.getoption("--fuzz-count")
    seed: int = request.config.getoption("--fuzz-seed")
    base = yaml.safe_dump(BASE, sort_keys=False).encode()
    outcomes: Counter[str] = Counter()
    for number in range(count):
        rng = random.Random(seed * 100_003 + number)
        if rng.random() < 0.7:
            manifest = yaml.safe_dump(_mutate_data(rng, BASE), sort_keys=False, allow_unicode=rng.random() < 0.5)
            raw = manifest.encode("utf-8")
        else:
            raw = _mutate_text(rng, base)
        root = tmp_path / f"case{number}"
        project = _write_project(root, raw)
        case = f"{seed}/{number}"
        for command in ("validate", "plan"):
            result = cli(command, "-C", project)
            _check(result, command, case)
            outcomes[f"{command} exit {result.code}"] += 1
        if result.code == 0 and _small_enough_to_build(project):
            result = cli("build", "-C", project)
            _check(result, "build", case)
            outcomes[f"build exit {result.code}"] += 1
        # Nothing written beside the project, whatever the manifest said.
        assert sorted(p.name for p in root.iterdir()) == ["outside.txt", "project"], case
        assert (root / "outside.txt").read_text() == "do not touch"
    print(f"\nfuzz: {count} mutations (seed {seed}): " + ", ".join(f"{k}: {v}" for k, v in sorted(outcomes.items())))
