"""The soak test's short form: one client for each hostile kind (huge picture, decompression-bomb mask, 64
candidates, malformed options, 5 MB values and keys) for 10 s against a fresh studio, valid small edits mixed
with the hostile ones: each refused in one sentence, and the studio's log grows by less than LOG_MB. Client i
sends hostile kind i first and each client ends the round it started, so every kind is sent however slow a
loaded machine makes the round."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PEAK_RSS_MB = 2000  # the demo model's studio under this load stays far below (about 0.5 GB measured)
TEMP_DIR_MB = 50
CLIENTS = 8  # one for each hostile kind of bench/soak.py
LOG_MB = 1  # a 5 MB hostile value is quoted in 80 characters, not echoed


def test_soak_short_form(tmp_path):
    figures_file = tmp_path / "soak.json"
    command = [sys.executable, "bench/soak.py", "--start", "--clients", str(CLIENTS), "--seconds", "10"]
    command += ["--json", str(figures_file)]
    run = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    figures = json.loads(figures_file.read_text())
    print(json.dumps(figures, indent=2))
    assert figures["valid_served"] > 0 and not [k for k in figures["outcomes"] if "FAILED" in k]
    hostile = {k: v for k, v in figures["outcomes"].items() if not k.startswith("valid")}
    assert hostile and all(k.endswith("refused in one sentence") for k in hostile), hostile
    assert figures["peak_server_rss_mb"] < PEAK_RSS_MB
    assert figures["temp_dir_mb_at_end"] < TEMP_DIR_MB
    assert len(hostile) >= CLIENTS and figures["outcomes"].get("huge-value: refused in one sentence", 0) > 0, hostile
    assert figures["log_mb_at_end"] < LOG_MB
