"""`var-edit-train ... --ray local|ADDRESS --workers N --gpus-per-worker G`: the same fine-tuning, data-parallel
under Ray Train (a `TorchTrainer`; torch.distributed DDP over NCCL on GPUs, gloo on CPUs).

Each worker loads the start model and DATA itself (on a cluster, DATA, OUT and this package must be reachable
from every node: a shared folder and the same installation) and takes every N-th row of each global batch, so
the loss curve is the one-process one. Rank 0 writes OUT at every checkpoint and reports the training state to
Ray as a checkpoint; when a worker dies Ray restarts the group (up to --max-failures times) and every worker
continues from that checkpoint, exactly as `--resume` would.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import torch

from training.finetune import STATE_FILE, Progress, Recipe, TrainingError, finetune
from training.run_folder import RunFolder, prepare_out, read_state

RAY_FOLDER = ".ray"  # Ray's own checkpoints, inside OUT


def _worker(config: dict[str, Any]) -> None:
    """One Ray Train worker: the whole run, its shard of each batch."""
    import ray.train
    import ray.train.torch

    from training.__main__ import prepare

    torch.set_num_threads(config["threads"])
    torch.set_flush_denormal(True)
    rank = ray.train.get_context().get_world_rank()
    recipe = Recipe.from_dict(config["recipe"])
    out = Path(config["out"])
    state = None
    checkpoint = ray.train.get_checkpoint()
    if checkpoint is not None:  # a restart after a failure: Ray's latest checkpoint
        with checkpoint.as_directory() as folder:
            state = read_state(Path(folder) / STATE_FILE)
    elif config["resume"]:
        state = read_state(out / STATE_FILE)
    device = ray.train.torch.get_device()
    start, data = prepare(recipe, config["data"], state, say=print if rank == 0 else lambda _: None, device=device)
    folder = RunFolder(out, start, data, recipe)
    if state is None and rank == 0:
        folder.measure_before()

    def on_checkpoint(payload: dict[str, Any] | None, progress: Progress, final: bool) -> None:
        metrics = {"step": progress.step, "loss": progress.losses[-1]["loss"]}
        if payload is None:
            ray.train.report(metrics)
            return
        folder(payload, progress, final)
        with tempfile.TemporaryDirectory() as tmp:
            shutil.copy2(out / STATE_FILE, Path(tmp) / STATE_FILE)
            ray.train.report(metrics, checkpoint=ray.train.Checkpoint.from_directory(tmp))

    finetune(recipe, data, start, state, on_checkpoint=on_checkpoint, device=device)


def run_ray(args: argparse.Namespace) -> Any:
    """Start (or join) Ray, run the workers, return Ray's result; OUT is written as in one process."""
    import ray
    from ray.train import CheckpointConfig, FailureConfig, RunConfig, ScalingConfig
    from ray.train.torch import TorchConfig, TorchTrainer

    from training.__main__ import prepare, recipe_from

    out = Path(args.out).resolve()
    state = prepare_out(out, args.resume, create=False)
    recipe = recipe_from(args, state)
    if recipe.batch % args.workers:
        raise TrainingError(f"--batch {recipe.batch} does not split over {args.workers} workers; use a multiple.")
    prepare(recipe, args.data, state)  # the model and the data are checked here, before any worker starts
    prepare_out(out, args.resume, create=True)
    if not ray.is_initialized():
        here = str(Path(__file__).resolve().parent.parent)  # a checkout that is not installed: workers import it too
        path = os.pathsep.join(p for p in (here, os.environ.get("PYTHONPATH")) if p)
        ray.init(
            address=None if args.ray == "local" else args.ray,
            runtime_env={"env_vars": {"PYTHONPATH": path}},
            include_dashboard=False,
            log_to_driver=True,
        )
    gpus = args.gpus_per_worker or 0
    trainer = TorchTrainer(
        _worker,
        train_loop_config={
            "recipe": vars(recipe),
            "data": str(Path(args.data).resolve()),
            "out": str(out),
            "resume": args.resume,
            "threads": args.threads or max(1, (os.cpu_count() or 2) // args.workers),
        },
        scaling_config=ScalingConfig(
            num_workers=args.workers,
            use_gpu=gpus > 0,
            resources_per_worker={"GPU": gpus} if gpus else {"CPU": 1},
        ),
        torch_config=TorchConfig(backend="nccl" if gpus else "gloo"),
        run_config=RunConfig(
            name="var-edit-train",
            storage_path=str(out / RAY_FOLDER),
            failure_config=FailureConfig(max_failures=args.max_failures),
            checkpoint_config=CheckpointConfig(num_to_keep=1),
        ),
    )
    result = trainer.fit()
    if result.error is not None:
        raise result.error
    print(f"Wrote {out} with Ray Train ({args.workers} workers).")
    return result
