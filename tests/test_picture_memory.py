"""Memory follows the work: one large in-paint (16 MP, one candidate) peaks at most 8x the picture's RGB
bytes above the idle process (docs/operating.md), measured in a fresh process by bench/picture_memory.py."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RULE = 8.0  # peak RSS above idle / the picture's RGB bytes


def test_a_large_picture_peaks_within_the_rule(tmp_path):
    figures_file = tmp_path / "memory.json"
    command = [sys.executable, "bench/picture_memory.py", "--side", "4000", "--json", str(figures_file)]
    run = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    figures = json.loads(figures_file.read_text())
    print(json.dumps(figures, indent=2))
    assert figures["megapixels"] == 16.0
    assert figures["peak_over_rgb"] <= RULE, figures
