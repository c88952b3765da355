"""Jobs: named requests, where their outputs go, and running a list of them.

Shared by the in-process CLI and the Ray batch runner: both hand the same batches of jobs to
`run_batch`, which writes each output once, as a PNG carrying its parameters.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .compose import EditResult
from .editor import Editor
from .errors import EditError
from .files import folder_problem, written_whole
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
    """What a run did: names done, skipped (already there with the same parameters), failed (why) and
    not tried (the run stopped first: `stopped` says why, a rerun does them)."""

    done: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    not_tried: list[str] = field(default_factory=list)
    stopped: str | None = None

    def add(self, outcome: dict[str, Any]) -> None:
        """One job's outcome: {"name", "status": done | skipped | failed | not_tried, "error"}."""
        status, error = outcome["status"], outcome.get("error")
        if status == "failed":
            self.failed[outcome["name"]] = error
        else:
            getattr(self, status).append(outcome["name"])
        if status == "not_tried" and self.stopped is None:
            self.stopped = error

    def stop(self, jobs: list[Job]) -> None:
        """The run stopped before `jobs`: each is not tried, or failed if it could not be made anyway."""
        for job in jobs:
            if job.request is None:
                self.failed[job.name] = str(job.error)
            else:
                self.not_tried.append(job.name)

    def progress(self, started: float) -> dict[str, Any]:
        """The counts and the rate since `started` (time.monotonic()), for a progress bar's postfix."""
        rate = len(self.done) / max(time.monotonic() - started, 1e-9)
        return {"done": len(self.done), "failed": len(self.failed), "skipped": len(self.skipped),
                "pictures_per_s": f"{rate:.2f}"}  # fmt: skip

    def as_dict(self, seconds: float) -> dict[str, Any]:
        return {"done": self.done, "skipped": self.skipped, "failed": self.failed, "not_tried": self.not_tried,
                "stopped": self.stopped, "seconds": round(seconds, 2)}  # fmt: skip


def write_report(report: Report, seconds: float, out_dir: Path) -> Path:
    """The report as JSON in `out_dir`, or in the temp folder when `out_dir` takes no more -> where it
    is. OSError when neither takes it."""
    text = json.dumps(report.as_dict(seconds), indent=2).encode()
    try:
        with written_whole(out_dir / REPORT) as file:
            file.write(text)
        return out_dir / REPORT
    except OSError:
        elsewhere = Path(tempfile.gettempdir()) / f"var-edit-report-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}.json"
        with written_whole(elsewhere) as file:
            file.write(text)
        return elsewhere


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
    """The candidates as PNGs with their parameters; never clobbers a file unless `overwrite` or it holds
    these very parameters (a candidate an interrupted run wrote: the same seed makes the same picture)."""
    written = []
    for i, (path, image) in enumerate(zip(output_paths(out_dir, job), result.images, strict=True)):
        params = {**result.png_params(i), "name": job.name}
        same = path.is_file() and read_params(path) == json.loads(json.dumps(params, sort_keys=True))
        written.append(save_png(image, path, params, overwrite=overwrite or same))
        for stale in path.parent.glob(f".{path.name}.*.tmp"):  # of a writer killed mid-write (a Ray worker)
            stale.unlink(missing_ok=True)
    return written


def run_batch(
    editor: Editor, jobs: list[Job], out_dir: Path, overwrite: bool, started: float | None = None
) -> list[dict[str, Any]]:
    """Run jobs in one pass and write their outputs -> one outcome per job (see `Report.add`).

    started: the run's start (time.time()); a job whose outputs were already written since then
    (by an earlier attempt of this batch that a dead worker left half done) counts as done, not
    written again. A write that fails for the whole folder (a full disk) leaves this job and the
    rest not tried, with the folder's one-sentence reason as their error.
    """
    outcomes: list[dict[str, Any] | None] = [None] * len(jobs)
    todo = []
    for i, job in enumerate(jobs):
        when = finished_at(out_dir, job) if job.request is not None else None
        if job.request is None:
            outcomes[i] = _outcome(job, "failed", job.error)
        elif when is not None:
            outcomes[i] = _outcome(job, "done" if started is not None and when >= started else "skipped")
        else:
            todo.append(i)
    results = editor.run([jobs[i].request for i in todo], return_errors=True)
    stopped = None
    for i, result in zip(todo, results, strict=True):
        job = jobs[i]
        if isinstance(result, EditError):
            outcomes[i] = _outcome(job, "failed", str(result))
        elif stopped is not None:
            outcomes[i] = _outcome(job, "not_tried", stopped)
        else:
            outcomes[i] = _write(out_dir, job, result, overwrite)
            if outcomes[i]["status"] == "not_tried":
                stopped = outcomes[i]["error"]
    return [o for o in outcomes if o is not None]


def _write(out_dir: Path, job: Job, result: EditResult, overwrite: bool) -> dict[str, Any]:
    try:
        return _outcome(job, "done", written=write_outputs(out_dir, job, result, overwrite))
    except (EditError, FileExistsError) as e:
        return _outcome(job, "failed", str(e))
    except OSError as e:
        problem = folder_problem(out_dir, e)
        if problem is not None:
            return _outcome(job, "not_tried", problem)
        return _outcome(job, "failed", f"its output could not be written ({e.strerror or e}).")


def _outcome(job: Job, status: str, error: str | None = None, written: Iterable[Path] = ()) -> dict[str, Any]:
    return {"name": job.name, "status": status, "error": error, "written": [str(p) for p in written]}


def now() -> float:
    """Wall-clock time as file modification times count it."""
    return time.time()
