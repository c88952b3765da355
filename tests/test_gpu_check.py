"""bench/gpu_check.sh, the check prepared for a CUDA machine, runs end to end on the CPU at a tiny size."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_gpu_check_runs_small_on_the_cpu(tmp_path):
    report = tmp_path / "report.json"
    work = tmp_path / "work"
    cmd = ["bash", "bench/gpu_check.sh", "--device", "cpu", "--small", "--workdir", str(work), "--json", str(report)]
    env = {**os.environ, "PYTHON": sys.executable}  # this interpreter has everything: no venv is made
    out = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "bf16 vs fp32: greedy tokens equal" in out.stdout and out.stdout.rstrip().endswith("# done")
    data = json.loads(report.read_text())
    assert set(data["load"]) == set(data["agreement"]) == {"d16", "d30"}
    for agree in data["agreement"].values():
        assert 0 <= agree["greedy_tokens_equal"] <= 1 and agree["teacher_forced_top1_equal"] > 0.9
    assert set(data["speed"]) == {"ours bfloat16", "ours float32"}
    assert all(row["images_per_s"] > 0 and row["edit_latency_s"] > 0 for row in data["speed"].values())
    assert not list(work.glob("*.pth"))  # the random files are removed
