"""The suite's own shape: tests that drive no browser collect where Playwright is not installed (conftest.py
and the helpers it imports leave the browser stack to the browser fixture)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent

# Playwright made unimportable (None in sys.modules), then pytest collects the given files.
COLLECT = """
import sys
sys.modules["playwright"] = None
import pytest
sys.exit(pytest.main(["--collect-only", "-q", "-p", "no:cacheprovider", "-o", "addopts=", *sys.argv[1:]]))
"""


def test_a_test_without_a_browser_collects_without_playwright():
    run = subprocess.run(
        [sys.executable, "-c", COLLECT, __file__], cwd=HERE.parent, capture_output=True, text=True, timeout=600
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert "test_a_test_without_a_browser_collects_without_playwright" in run.stdout
