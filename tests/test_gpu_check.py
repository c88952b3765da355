"""bench/gpu_check.sh, the check prepared for a CUDA machine, runs end to end on the CPU at a tiny size: its models
(VAR's and the Infinity-2B part's) are built in memory (no weight file is written), every number lands in one JSON
and the short table comes last."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_gpu_check_runs_small_on_the_cpu(tmp_path):
    report = tmp_path / "report.json"
    cmd = ["bash", str(ROOT / "bench" / "gpu_check.sh"), "--device", "cpu", "--small", "--json", str(report)]
    env = {**os.environ, "PYTHON": sys.executable}  # this interpreter has everything: no venv is made
    out = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "bf16 vs fp32: greedy tokens equal" in out.stdout
    assert out.stdout.rstrip().splitlines()[-1].startswith("aims: d16 10 % in-paint, batch 1")  # the table, last
    data = json.loads(report.read_text())
    assert set(data["load"]) == set(data["speed"]) == {"d16", "d30", "infinity-2b"}
    assert set(data["agreement"]) == {"d16", "d30"}
    assert all(stats["origin"] == "random" for stats in data["load"].values())
    for agree in data["agreement"].values():
        assert 0 <= agree["greedy_tokens_equal"] <= 1 and agree["top1_equal"] > 0.8
    assert set(data["speed"]["d16"]) == {f"eager {d} b{b}" for d in ("float32", "bf16") for b in (1, 4)}
    for row in [*data["speed"]["d16"].values(), *data["speed"]["infinity-2b"].values()]:
        assert row["generate_s"] > 0 and row["inpaint10_s"] > 0 and row["decode_s"] > 0
    assert data["speed"]["infinity-2b"]["eager bf16 b1"]["pixels"] == [256, 256]  # the tiny stand-in's size
    assert "| infinity-2b | eager bf16 | 1 |" in out.stdout and "aims: Infinity-2B 256² generation" in out.stdout
    assert [p.name for p in tmp_path.iterdir()] == ["report.json"]  # nothing else written
