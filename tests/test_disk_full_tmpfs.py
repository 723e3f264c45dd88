"""A build on a real, tiny filesystem that fills up: a tmpfs mounted in a private mount namespace."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO

SPRITES = 24
PAGES = 40  # tmpfs charges a page per file: room for a few sprites' cache entries and outputs, not for 24

SCRIPT = """
set -u
mount -t tmpfs -o size="$SIZE" tmpfs "$MNT" || exit 99
cp "$MANIFEST" "$MNT/pixelbuild.yaml"
"$PY" -m pixelbuild build -C "$MNT" --progress lines > "$OUT/out1" 2> "$OUT/err1"; echo $? > "$OUT/rc1"
mount -o remount,size=64m "$MNT"  # space freed
"$PY" -m pixelbuild build -C "$MNT" --json > "$OUT/out2" 2> "$OUT/err2"; echo $? > "$OUT/rc2"
"$PY" -m pixelbuild check -C "$MNT" > "$OUT/out3" 2> "$OUT/err3"; echo $? > "$OUT/rc3"
"""


def _namespaces_work() -> bool:
    if shutil.which("unshare") is None:
        return False
    probe = subprocess.run(["unshare", "-rm", "true"], capture_output=True, check=False)
    return probe.returncode == 0


@pytest.mark.skipif(
    not sys.platform.startswith("linux") or not _namespaces_work(),
    reason="needs Linux with unshare(1) and user+mount namespaces to mount a private tmpfs",
)
def test_build_on_a_filesystem_that_fills_up(tmp_path: Path) -> None:
    manifest = tmp_path / "pixelbuild.yaml"
    sprites = "".join(f"  - {{id: s{i}, prompt: thing {i}}}\n" for i in range(SPRITES))
    manifest.write_text("version: 1\ndefaults: {size: 32, post: [{resize: {size: 8}}]}\nsprites:\n" + sprites)
    mount_point, out = tmp_path / "mnt", tmp_path / "out"
    mount_point.mkdir()
    out.mkdir()
    env = dict(
        os.environ,
        PYTHONPATH=str(REPO),
        SIZE=str(PAGES * os.sysconf("SC_PAGE_SIZE")),
        MNT=str(mount_point),
        OUT=str(out),
        MANIFEST=str(manifest),
        PY=sys.executable,
    )
    env.pop("PIXELBUILD_DEBUG", None)
    subprocess.run(["unshare", "-rm", "sh", "-c", SCRIPT], env=env, check=True, timeout=120)

    def read(name: str) -> str:
        return (out / name).read_text()

    assert read("rc1").strip() == "1", read("err1")
    err = read("err1")
    assert "Traceback" not in err and "internal error" not in err and "FAILED" not in err
    last = err.splitlines()[-1]
    assert last.startswith(f"pixelbuild: error: no space left on device at {mount_point}/"), err
    assert "free some space" in last
    done = int(read("out1").split()[0])  # "N generated, 0 up to date (…s)"
    assert 1 <= done < SPRITES, read("out1")
    assert err.count("generated ") == done

    assert read("rc2").strip() == "0", read("err2")
    report = json.loads(read("out2"))
    assert report["up_to_date"] == done  # the finished sprites were kept (journal folded), not redone
    assert report["generated"] + report["post_processed"] == SPRITES - done
    assert read("rc3").strip() == "0" and read("out3").startswith(f"ok: {SPRITES} sprites")
