"""The studio's own temporary folder: result files, masks, API results and Gradio's cache, all
removed when the studio stops; folders left by studios that were killed are removed at the next start.

No Gradio import here: `launch` makes the folder before Gradio is imported, so that Gradio's cache
(GRADIO_TEMP_DIR) lives inside it.
"""

from __future__ import annotations

import getpass
import logging
import os
import shutil
import tempfile
import time
from pathlib import Path

log = logging.getLogger("var-edit-studio")
WORKDIR_PREFIX = "var-edit-app-"
STALE_LEGACY_SECONDS = 24 * 3600


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_workdirs(root: Path | None = None) -> list[Path]:
    """Remove the folders of studios that are no longer running (a killed server leaves them);
    folders named without a process id (older versions) once they are a day old."""
    root = Path(root or tempfile.gettempdir())
    removed = []
    for folder in root.glob(f"{WORKDIR_PREFIX}*"):
        pid_text = folder.name[len(WORKDIR_PREFIX) :].split("-", 1)[0]
        if pid_text.isdigit():
            stale = not _alive(int(pid_text))
        else:
            stale = time.time() - folder.stat().st_mtime > STALE_LEGACY_SECONDS
        if stale and folder.is_dir():
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
    if removed:
        log.info("removed %d folder(s) left by studios that are no longer running", len(removed))
    return removed


def compile_cache() -> Path:
    """torch's compile cache folder (TorchInductor's default: torchinductor_<user> in the temp folder)."""
    return Path(tempfile.gettempdir()) / f"torchinductor_{getpass.getuser()}"


class Workdir:
    """One studio's temporary folder (var-edit-app-<pid>-…): a folder per run (a page's or an API call's
    results, capped by `results.Results`), masks to download, and `gradio` for Gradio's cache."""

    def __init__(self, compile_cache_was_there: bool | None = None) -> None:
        """compile_cache_was_there: whether torch's compile cache folder was there before the studio loaded
        its model (None: look now). That folder is shared by the user's torch programs, so it is kept unless
        this studio made it and left it empty."""
        remove_stale_workdirs()
        self.path = Path(tempfile.mkdtemp(prefix=f"{WORKDIR_PREFIX}{os.getpid()}-"))
        self._inductor = compile_cache()
        was_there = compile_cache_was_there
        self._inductor_was_there = self._inductor.exists() if was_there is None else was_there

    @property
    def gradio_cache(self) -> Path:
        """Where Gradio keeps uploads and served copies for this studio (GRADIO_TEMP_DIR)."""
        return self.path / "gradio"

    def run_folder(self) -> Path:
        """A new folder for one run's results."""
        return Path(tempfile.mkdtemp(dir=self.path))

    def masks(self) -> Path:
        """The folder of masks saved for download."""
        folder = self.path / "masks"
        folder.mkdir(exist_ok=True)
        return folder

    def close(self) -> None:
        """Remove everything (results, masks, Gradio's cache; torch's compile cache if made here and empty)."""
        shutil.rmtree(self.path, ignore_errors=True)
        if not self._inductor_was_there and self._inductor.is_dir():
            if not any(p.is_file() for p in self._inductor.rglob("*")):
                shutil.rmtree(self._inductor, ignore_errors=True)
