"""`var-edit` on a disk that fills up (a real 1 MiB tmpfs, so the writes fail with the kernel's own
ENOSPC): one sentence naming the folder, the report written where it can be, the jobs left listed as
not tried, exit code 3, no file left half-written; the same command run again once there is room
does the rest."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from small_disk import fill, small_tmpfs

from editing import read_params
from editing.__main__ import main

JOBS = 4
BATCH = 2  # small passes: the run stops after the pass that met the full disk


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 1 MiB tmpfs mounted for this test and unmounted after it."""
    with small_tmpfs(tmp_path / "disk", "1M") as disk:
        yield disk


@pytest.fixture
def jobs(tmp_path: Path) -> Path:
    folder = tmp_path / "jobs"
    folder.mkdir()
    rng = np.random.default_rng(0)
    mask = np.zeros((64, 64), np.uint8)
    mask[16:40, 20:44] = 255
    for i in range(JOBS):  # noise: about 12 kB a PNG, whatever the model draws in the mask
        Image.fromarray(rng.integers(0, 256, (64, 64, 3), np.uint8)).save(folder / f"p{i:02d}.png")
        Image.fromarray(mask).save(folder / f"p{i:02d}.mask.png")
    return folder


def _run(jobs: Path, out: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, dict]:
    code = main([str(jobs), "--out-dir", str(out), "--batch", str(BATCH)])
    err = capsys.readouterr().err
    assert "Traceback" not in err
    moved = [line for line in err.splitlines() if line.startswith("The report could not be written in")]
    where = Path(moved[0].rsplit(" it is ", 1)[1].rstrip(".")) if moved else out / "var-edit-report.json"
    return code, err, json.loads(where.read_text())


def test_full_disk_stops_reports_and_resumes(small_disk, jobs, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # where a report goes that the disk cannot take
    out = small_disk / "out"
    out.mkdir()
    ballast = small_disk / "ballast"
    fill(ballast)
    with open(ballast, "r+b") as file:
        file.truncate(ballast.stat().st_size - 24 * 1024)  # room for one output (about 12.5 kB) and the report

    code, err, report = _run(jobs, out, capsys)
    assert code == 3 and (out / "var-edit-report.json").is_file(), "the failed write's pages are free again"
    stopped = [line for line in err.splitlines() if line.startswith("stopped:")]
    assert (
        len(stopped) == 1
        and f"The disk holding {out} is full" in stopped[0]
        and "run the same command again" in stopped[0]
    )
    first = report["done"]
    assert 0 < len(first) < JOBS and report["failed"] == {} and report["stopped"] in stopped[0]
    assert sorted(first + report["not_tried"]) == [f"p{i:02d}" for i in range(JOBS)]
    assert sorted(p.name for p in out.iterdir() if p.suffix == ".png") == [f"{n}.inpaint.png" for n in sorted(first)]
    assert not [p for p in out.iterdir() if p.name.endswith(".tmp")], "no temporary file left"

    fill(ballast)  # not even the report fits now
    code, err, report = _run(jobs, out, capsys)
    assert code == 3 and f"The report could not be written in {out}; it is {tmp_path}" in err
    assert (
        sorted(report["skipped"]) == sorted(first)
        and report["done"] == []
        and len(report["not_tried"]) == JOBS - len(first)
    )

    ballast.unlink()
    code, err, report = _run(jobs, out, capsys)
    assert code == 0 and "stopped" not in err
    assert sorted(report["skipped"]) == sorted(first) and sorted(first + report["done"]) == [
        f"p{i:02d}" for i in range(JOBS)
    ]
    assert report["not_tried"] == [] and report["stopped"] is None
    for i in range(JOBS):
        assert read_params(out / f"p{i:02d}.inpaint.png")["name"] == f"p{i:02d}"
    assert not [p for p in out.iterdir() if p.name.endswith(".tmp")]
