"""`app.py --workers 2` started Ray itself: after SIGTERM nothing of it is left in TMPDIR, neither Ray's
session files (its logs, sockets; ray.init's `_temp_dir`, a folder of the studio's own) nor an empty
torch compile cache folder that the studio made. The studio is the one the tests of test_app_workers.py
share (a fresh one when this test runs first or alone)."""

from __future__ import annotations

import pytest
from studio_server import WorkersStudio

pytest.importorskip("ray", reason="Ray is an optional extra: pip install .[ray]")


def test_sigterm_leaves_nothing_of_ray_or_torch_in_tmpdir(workers_studio: WorkersStudio) -> None:
    studio = workers_studio.get()  # the one the browser tests edited with, where they ran first
    tmp = workers_studio.tmp
    assert any(tmp.glob("var-edit-ray-*/session_*")), sorted(p.name for p in tmp.iterdir())
    studio.stop(signal_wait=120)
    assert studio.proc.returncode == 0, studio.log[-3000:]
    assert sorted(p.name for p in tmp.iterdir()) == []
