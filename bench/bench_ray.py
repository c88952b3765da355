"""Batch jobs: in-process against Ray Data with 1 and 2 workers on this machine.

    python bench/bench_ray.py [--jobs 64] [--batch 8]

Makes N demo-model in-paint jobs (96 px pictures, each its own mask, unseeded: seeds from names),
runs `python -m editing` on them in-process, then with `--ray local --workers 1` and `--workers 2`,
each into a fresh folder, and prints pictures per second, Ray's start-up overhead (the time to the
first result is not separable here, so the whole run is timed) and checks the outputs are identical.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image


def make_jobs(folder: Path, n: int) -> None:
    rng = np.random.default_rng(0)
    for i in range(n):
        Image.fromarray((rng.random((96, 96, 3)) * 255).astype(np.uint8)).save(folder / f"p{i:03d}.png")
        mask = np.zeros((96, 96), np.uint8)
        mask[10 + i % 40 : 60, 20:70] = 255
        Image.fromarray(mask).save(folder / f"p{i:03d}.mask.png")


def run(jobs: Path, out: Path, extra: list[str], batch: int) -> float:
    started = time.monotonic()
    command = [sys.executable, "-m", "editing", str(jobs), "--out-dir", str(out), "--batch", str(batch), *extra]
    subprocess.run(command, check=True, capture_output=True)
    return time.monotonic() - started


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--jobs", type=int, default=64)
    p.add_argument("--batch", type=int, default=8)
    args = p.parse_args(argv)
    root = Path(tempfile.mkdtemp(prefix="var-edit-bench-ray-"))
    jobs = root / "jobs"
    jobs.mkdir()
    make_jobs(jobs, args.jobs)
    rows = []
    for label, extra in (
        ("in-process (2 threads)", []),
        ("Ray Data, 1 worker (2 threads)", ["--ray", "local", "--workers", "1"]),
        ("Ray Data, 2 workers (1 thread each)", ["--ray", "local", "--workers", "2", "--threads", "1"]),
    ):
        out = root / label.split()[0].replace(",", "") / str(len(rows))
        seconds = run(jobs, out, extra, args.batch)
        report = json.loads((out / "var-edit-report.json").read_text())
        rows.append((label, seconds, len(report["done"]), out))
    base = rows[0][3]
    print(f"{args.jobs} demo-model jobs, batch {args.batch}, this machine's CPU")
    print("| run | wall s | pictures/s | vs in-process | outputs identical |")
    print("|---|---|---|---|---|")
    for label, seconds, done, out in rows:
        same = all(
            np.array_equal(np.asarray(Image.open(f)), np.asarray(Image.open(out / f.name))) for f in base.glob("*.png")
        )
        print(f"| {label} | {seconds:.1f} | {done / seconds:.2f} | {rows[0][1] / seconds:.2f}x | {same} |")


if __name__ == "__main__":
    main()
