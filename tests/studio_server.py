"""The studio as the tests start it: `python app.py ARGS --port 0` in a subprocess, its console in a file."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
APP = ROOT / "app.py"


class Studio:
    """A started studio: `url` once Gradio serves it, `log` its console output so far.

    log_path: the file for its console output, or a folder to make a new one in."""

    def __init__(
        self, args: list[str], log_path: Path, env: dict[str, str] | None = None, cwd: Path = ROOT, wait: float = 600
    ) -> None:
        self.log_path = log_path / f"app-{time.monotonic_ns()}.log" if log_path.is_dir() else log_path
        with open(self.log_path, "wb") as out:
            self.proc = subprocess.Popen(
                [sys.executable, str(APP), "--port", "0", *args], env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + wait
        while (found := re.search(r"Ready: the studio answers on (http://\S+)", self.log)) is None:
            if self.proc.poll() is not None:
                pytest.fail(f"app.py {' '.join(args)} exited with {self.proc.returncode}:\n{self.log[-3000:]}")
            if time.monotonic() > deadline:
                self.stop()
                pytest.fail(f"app.py {' '.join(args)} did not serve within {wait:g} s:\n{self.log[-3000:]}")
            time.sleep(0.3)
        self.url = found[1].rstrip("/") + "/"

    @property
    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self, signal_wait: float = 30) -> None:
        """SIGTERM (the studio removes its files), then SIGKILL if it does not end within `signal_wait` s."""
        self.proc.terminate()
        try:
            self.proc.wait(timeout=signal_wait)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


@contextmanager
def running(
    args: list[str], log_path: Path, env: dict[str, str] | None = None, cwd: Path = ROOT, wait: float = 600
) -> Iterator[Studio]:
    """A studio for the length of the `with` block."""
    studio = Studio(args, log_path, env, cwd, wait)
    try:
        yield studio
    finally:
        studio.stop()


class WorkersStudio:
    """`app.py --workers 2` (a Ray it starts itself) with a short TMPDIR of its own (Ray's socket paths must stay
    under 108 characters), shared by the tests that only need one running: `get` starts it again where a test
    stopped it."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir, self.tmp, self.studio = log_dir, Path(), None

    def get(self) -> Studio:
        """The running studio, started where there is none (tried twice: on a heavily loaded machine Ray Serve's
        controller may fail its first start)."""
        if self.studio is None or self.studio.proc.poll() is not None:
            self.close()
            try:
                self.studio = self._start()
            except pytest.fail.Exception:
                self.studio = self._start()
        return self.studio

    def _start(self) -> Studio:
        if self.tmp.name:  # a start that failed
            shutil.rmtree(self.tmp, ignore_errors=True)
        self.tmp = Path(tempfile.mkdtemp(prefix="vw-", dir="/tmp"))
        env = {**os.environ, "TMPDIR": str(self.tmp)}
        env.pop("RAY_ADDRESS", None)
        return Studio(["--workers", "2"], self.log_dir, env)

    def close(self) -> None:
        """Stop the studio (SIGTERM) and remove its TMPDIR."""
        if self.studio is not None:
            self.studio.stop(signal_wait=120)
            shutil.rmtree(self.tmp, ignore_errors=True)
