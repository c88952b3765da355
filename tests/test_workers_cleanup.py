"""`app.py --workers 2` started Ray itself: after SIGTERM nothing of it is left in TMPDIR, neither Ray's
session files (its logs, sockets; ray.init's `_temp_dir`, a folder of the studio's own) nor an empty
torch compile cache folder that the studio made."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest
from studio_server import running

pytest.importorskip("ray", reason="Ray is an optional extra: pip install .[ray]")


def test_sigterm_leaves_nothing_of_ray_or_torch_in_tmpdir(tmp_path):
    # A short TMPDIR of the test's own: Ray's socket paths must stay under 108 characters.
    tmp = Path(tempfile.mkdtemp(prefix="vw-", dir="/tmp"))
    try:
        env = {**os.environ, "TMPDIR": str(tmp)}
        env.pop("RAY_ADDRESS", None)
        with running(["--workers", "2"], tmp_path, env) as studio:
            assert any(tmp.glob("var-edit-ray-*/session_*")), sorted(p.name for p in tmp.iterdir())
            studio.stop(signal_wait=120)
            assert studio.proc.returncode == 0, studio.log[-3000:]
        assert sorted(p.name for p in tmp.iterdir()) == []
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
