"""Batch jobs on Ray Data with a local Ray on this CPU and the tiny reference model (tests/fixtures/tiny, the
smallest that shows it): the same PNGs as in-process, resumable, a broken picture reported alone, a killed
worker replaced with every output written once."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from editing.__main__ import main

pytest.importorskip("ray", reason="Ray is an optional extra: pip install .[ray]")

ROOT = Path(__file__).resolve().parent.parent
WORKER_TITLE = "MapBatches(EditWorker)"
TINY = ROOT / "tests" / "fixtures" / "tiny"


@pytest.fixture(scope="module")
def jobs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """20 jobs (no seeds: each takes its name's), one of them a text file posing as a PNG."""
    folder = tmp_path_factory.mktemp("jobs")
    rng = np.random.default_rng(0)
    for i in range(20):
        name = f"p{i:02d}"
        if i == 7:
            (folder / f"{name}.png").write_text("not a picture")
        else:
            Image.fromarray((rng.random((96, 96, 3)) * 255).astype(np.uint8)).save(folder / f"{name}.png")
        mask = np.zeros((96, 96), np.uint8)
        mask[20 + i : 60, 30:70] = 255
        Image.fromarray(mask).save(folder / f"{name}.mask.png")
    return folder


@pytest.fixture(scope="module")
def in_process(jobs: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("here")
    assert main([str(jobs), "--model", str(TINY), "--out-dir", str(out)]) == 1
    return out


def _workers(root: int) -> list[int]:
    """Pids of the batch job's Ray workers: those under `root` (another run's Ray on this machine is not ours)."""
    parents, titles = {}, {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                titles[int(entry.name)] = (entry / "cmdline").read_bytes().decode(errors="replace")
                parents[int(entry.name)] = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except OSError:
                continue

    def under_root(pid: int) -> bool:
        while pid > 1:
            pid = parents.get(pid, 0)
            if pid == root:
                return True
        return False

    return [pid for pid, title in titles.items() if WORKER_TITLE in title and under_root(pid)]


def test_two_workers_match_in_process_survive_a_killed_worker_and_resume(jobs, in_process, tmp_path):
    out = tmp_path / "ray"
    command = [sys.executable, "-m", "editing", str(jobs), "--model", str(TINY), "--out-dir", str(out)]
    command += ["--ray", "local", "--workers", "2"]
    proc = subprocess.Popen([*command, "--batch", "1"], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    killed = None
    deadline = time.monotonic() + 900  # generous: Ray and its workers start slowly on a loaded machine
    while proc.poll() is None and time.monotonic() < deadline:
        written = len(list(out.glob("*.png"))) if out.exists() else 0
        workers = _workers(proc.pid)
        if killed is None and 1 <= written < 15 and len(workers) == 2:
            killed = workers[0]
            os.kill(killed, signal.SIGKILL)
        time.sleep(0.05)
    log = proc.communicate(timeout=600)[0].decode(errors="replace")
    assert killed is not None, f"no worker was killed mid-run:\n{log[-3000:]}"
    assert proc.returncode == 1, log[-3000:]  # one job failed: the broken picture
    report = json.loads((out / "var-edit-report.json").read_text())
    assert list(report["failed"]) == ["p07"] and "not an image" in report["failed"]["p07"]
    assert sorted(report["done"]) == sorted(p.name.split(".")[0] for p in in_process.glob("*.png"))
    assert len(report["done"]) == 19 == len(set(report["done"]))
    for theirs in in_process.glob("*.png"):
        ours = out / theirs.name
        assert np.array_equal(np.asarray(Image.open(ours)), np.asarray(Image.open(theirs))), theirs.name
    assert sorted(p.name for p in out.glob("*")) == sorted(
        [*(p.name for p in in_process.glob("*.png")), "var-edit-report.json"]
    )

    rerun = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=900)
    report = json.loads((out / "var-edit-report.json").read_text())
    assert len(report["skipped"]) == 19 and report["done"] == [] and list(report["failed"]) == ["p07"], rerun.stdout
    assert "19 skipped" in rerun.stdout
