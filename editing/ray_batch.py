"""Batch jobs on Ray Data: the CLI's jobs spread over a pool of model workers.

Each worker is a stateful actor that loads the model once and runs batches of requests through
`Editor.run`, writing each output as a PNG (the output folder must be reachable from every
worker: a local disk for one machine, a shared file system for a cluster). Ray restarts a worker
that dies and retries its batch; outputs that batch had already written are found with their
parameters and counted, not written again. Results stream back to the driver for one progress bar.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from .batch import Job, Report, finished_at, now, run_batch
from .request import EditRequest


class EditWorker:
    """A Ray Data actor: one Editor, many batches of requests (rows: name, request as JSON)."""

    def __init__(
        self,
        model: str,
        device: str | None,
        dtype: str | None,
        out_dir: str,
        overwrite: bool,
        started: float,
        threads: int,
    ) -> None:
        import torch

        from .editor import Editor

        torch.set_num_threads(max(1, threads))
        self.editor = Editor.from_pretrained(model, device=device, dtype=dtype)
        self.out_dir, self.overwrite, self.started = Path(out_dir), overwrite, started

    def __call__(self, batch: dict[str, Any]) -> dict[str, list[Any]]:
        jobs = [
            Job(str(name), EditRequest.from_dict(json.loads(str(request))))
            for name, request in zip(batch["name"], batch["request"], strict=True)
        ]
        outcomes = run_batch(self.editor, jobs, self.out_dir, self.overwrite, self.started)
        return {
            "name": [o["name"] for o in outcomes],
            "status": [o["status"] for o in outcomes],
            "error": [o["error"] or "" for o in outcomes],
        }


def run_on_ray(jobs: list[Job], out_dir: Path, args: argparse.Namespace) -> tuple[Report, float]:
    """Run the jobs on `args.workers` Ray actors (`args.ray`: 'local' or a cluster address)."""
    import ray
    from tqdm import tqdm

    report, started, wall = Report(), now(), time.monotonic()
    rows = []
    for job in jobs:
        if job.request is None:
            report.failed[job.name] = str(job.error)
        elif finished_at(out_dir, job) is not None:
            report.skipped.append(job.name)
        else:
            rows.append({"name": job.name, "request": json.dumps(job.request.to_dict())})
    if not rows:
        return report, time.monotonic() - wall
    ray.init(address=None if args.ray == "local" else args.ray, log_to_driver=False, include_dashboard=False)
    try:
        context = ray.data.DataContext.get_current()
        context.enable_progress_bars = False
        context.print_on_execution_start = False
        dataset = ray.data.from_items(rows, override_num_blocks=max(1, len(rows) // args.batch))
        results = dataset.map_batches(
            EditWorker,
            fn_constructor_kwargs={
                "model": args.model,
                "device": args.device,
                "dtype": args.dtype,
                "out_dir": str(out_dir.resolve()),
                "overwrite": args.overwrite,
                "started": started,
                "threads": args.threads,
            },
            batch_size=args.batch,
            concurrency=args.workers,
            num_cpus=args.cpus_per_worker,
            num_gpus=args.gpus_per_worker,
            batch_format="numpy",
        )
        bar = tqdm(total=len(rows), desc=f"editing on {args.workers} Ray worker(s)", unit="job")
        for batch in results.iter_batches(batch_size=None, batch_format="numpy"):
            for name, status, error in zip(batch["name"], batch["status"], batch["error"], strict=True):
                report.add({"name": str(name), "status": str(status), "error": str(error)})
                bar.update(1)
            bar.set_postfix(report.progress(wall))
            if report.stopped is not None:  # the folder takes no more: the batches still out are not tried
                break
        bar.close()
        if report.stopped is not None:
            reported = {*report.done, *report.skipped, *report.failed, *report.not_tried}
            report.stop([job for job in jobs if job.request is not None and job.name not in reported])
    finally:
        ray.shutdown()
    return report, time.monotonic() - wall
