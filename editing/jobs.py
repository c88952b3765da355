"""Jobs: named requests, where their outputs go, and running a list of them.

Shared by the in-process CLI and the Ray batch runner: both hand the same batches of jobs to
`run_batch`, which writes each output once, as a PNG carrying its parameters.
"""

from __future__ import annotations

import hashlib
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .compose import EditResult
from .editor import Editor
from .errors import EditError
from .metadata import read_params, save_png
from .request import EditRequest

REPORT = "var-edit-report.json"


@dataclass
class Job:
    """A named request, or the reason it could not be made."""

    name: str
    request: EditRequest | None = None
    error: str | None = None


@dataclass
class Report:
    """What a run did: names done, skipped (already there with the same parameters) and failed (why)."""

    done: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)

    def add(self, outcome: dict[str, Any]) -> None:
        """One job's outcome: {"name", "status": done | skipped | failed, "error"}."""
        if outcome["status"] == "failed":
            self.failed[outcome["name"]] = outcome["error"]
        else:
            getattr(self, outcome["status"]).append(outcome["name"])

    def progress(self, started: float) -> dict[str, Any]:
        """The counts and the rate since `started` (time.monotonic()), for a progress bar's postfix."""
        rate = len(self.done) / max(time.monotonic() - started, 1e-9)
        return {"done": len(self.done), "failed": len(self.failed), "skipped": len(self.skipped),
                "pictures_per_s": f"{rate:.2f}"}  # fmt: skip

    def as_dict(self, seconds: float) -> dict[str, Any]:
        return {"done": self.done, "skipped": self.skipped, "failed": self.failed, "seconds": round(seconds, 2)}


def name_seed(name: str) -> int:
    """The seed of a job that gives none: stable across runs, processes and machines."""
    return int.from_bytes(hashlib.blake2b(name.encode(), digest_size=4).digest(), "little") >> 1


def output_paths(out_dir: Path, job: Job) -> list[Path]:
    """OUT/NAME.MODE.png, or NAME.MODE-1.png, -2 ... for several candidates."""
    assert job.request is not None
    n = job.request.options.num_samples
    stem = f"{job.name}.{job.request.mode}"
    return [out_dir / f"{stem}.png"] if n == 1 else [out_dir / f"{stem}-{i + 1}.png" for i in range(n)]


def expected_params(job: Job) -> dict[str, Any]:
    """What an existing output's metadata must say for the job to count as done."""
    request = job.request
    assert request is not None
    return {"name": job.name, **request.options.to_dict(), **request.recorded()}


def finished_at(out_dir: Path, job: Job) -> float | None:
    """When every output of the job was written with its parameters (latest mtime), else None."""
    paths = output_paths(out_dir, job)
    if not all(p.is_file() for p in paths):
        return None
    wanted = expected_params(job)
    for path in paths:
        params = read_params(path)
        if any(params.get(k) != v for k, v in wanted.items()):
            return None
    return max(os.stat(p).st_mtime for p in paths)


def write_outputs(out_dir: Path, job: Job, result: EditResult, overwrite: bool) -> list[Path]:
    """The candidates as PNGs with their parameters; never clobbers a file unless `overwrite`."""
    written = []
    for i, (path, image) in enumerate(zip(output_paths(out_dir, job), result.images, strict=True)):
        params = {**result.params, "name": job.name, "candidate": i + 1}
        written.append(save_png(image, path, params, overwrite=overwrite))
    return written


def run_batch(
    editor: Editor, jobs: list[Job], out_dir: Path, overwrite: bool, started: float | None = None
) -> list[dict[str, Any]]:
    """Run jobs in one pass and write their outputs -> one outcome per job (see `Report.add`).

    started: the run's start (time.time()); a job whose outputs were already written since then
    (by an earlier attempt of this batch that a dead worker left half done) counts as done, not
    written again.
    """
    outcomes: list[dict[str, Any] | None] = [None] * len(jobs)
    todo = []
    for i, job in enumerate(jobs):
        when = finished_at(out_dir, job) if job.request is not None else None
        if job.request is None:
            outcomes[i] = {"name": job.name, "status": "failed", "error": job.error}
        elif when is not None:
            status = "done" if started is not None and when >= started else "skipped"
            outcomes[i] = {"name": job.name, "status": status, "error": None, "written": []}
        else:
            todo.append(i)
    results = editor.run([jobs[i].request for i in todo], return_errors=True)
    for i, result in zip(todo, results, strict=True):
        job = jobs[i]
        try:
            if isinstance(result, EditError):
                raise result
            paths = write_outputs(out_dir, job, result, overwrite)
            outcomes[i] = {"name": job.name, "status": "done", "error": None, "written": [str(p) for p in paths]}
        except (EditError, FileExistsError) as e:
            outcomes[i] = {"name": job.name, "status": "failed", "error": str(e)}
    return [o for o in outcomes if o is not None]


def now() -> float:
    """Wall-clock time as file modification times count it."""
    return time.time()
