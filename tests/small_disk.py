"""A real small tmpfs for the full-disk tests (writes on it fail with the kernel's own ENOSPC), and a way to
fill it. Mounting needs root: where it cannot be mounted the test is skipped, saying why."""

from __future__ import annotations

import errno
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest


@contextmanager
def small_tmpfs(disk: Path, size: str) -> Iterator[Path]:
    """A tmpfs of `size` (mount's spelling: "1M", "4M") mounted on the new folder `disk` for the `with` block;
    unmounted lazily after it, so that a process still holding a file there does not keep it mounted."""
    disk.mkdir()
    if shutil.which("mount") is None:
        pytest.skip("no `mount` command here to make a small tmpfs")
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(disk)], capture_output=True, text=True
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs to fill (needs root): {done.stderr.strip()}")
    try:
        yield disk
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=True)


def fill(path: Path) -> None:
    """Append to `path` until the disk holding it is full."""
    with open(path, "ab", buffering=0) as file:
        for chunk in (65536, 4096, 512, 1):
            try:
                while True:
                    file.write(b"\0" * chunk)
            except OSError as e:
                assert e.errno == errno.ENOSPC
