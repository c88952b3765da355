"""torch.profiler view of one 256 px generation (d16 shape, random weights), ours and optionally the original.

    python bench/profile_generate.py [--original /work/orig] [--batch 1] [--uncond] [--device cuda] [--rows 25]

Phases are labelled by wrapping (in this process only, no file is changed) the transformer pass, the
logits head, top-k/top-p filtering + sampling, the residual/upsample update and the VQVAE decode, so the
two implementations can be compared phase by phase; then the top operators by self time are listed.
Both sides run in this one process, one after the other (use bench_generate.py for timings).
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import importlib
import io
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from common import original_helpers
from torch.profiler import ProfilerActivity, profile, record_function

PHASES = ("transformer", "logits_head", "sample", "fhat_update", "decode")


def labelled(name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    """fn wrapped in a profiler range called `phase:name`."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with record_function(f"phase:{name}"):
            return fn(*args, **kwargs)

    return wrapper


def ours_runner(device: str, batch: int, uncond: bool) -> Callable[[], Any]:
    """Our generation with its phases labelled."""
    import var_core
    import var_core.sampling as sampling

    torch.manual_seed(0)
    vqvae = var_core.VQVAE().to(device).eval().requires_grad_(False)
    var = var_core.VAR(depth=16).to(device).eval().requires_grad_(False)
    for block in var.blocks:
        block.forward = labelled("transformer", block.forward)
    var.logits = labelled("logits_head", var.logits)
    sampling.filter_top_k_top_p = labelled("sample", sampling.filter_top_k_top_p)
    vqvae.quantize.scale_contribution = labelled("fhat_update", vqvae.quantize.scale_contribution)
    vqvae.decode_fhat = labelled("decode", vqvae.decode_fhat)
    g = torch.Generator().manual_seed(0)
    labels = torch.full((batch,), 1000) if uncond else torch.randint(0, 1000, (1, batch), generator=g)[0]
    labels = labels.to(device)
    options = var_core.SamplingOptions(cfg=1.5, top_k=900, top_p=0.96)

    def go() -> Any:
        return var_core.generate(var, vqvae, labels, options, torch.Generator(device).manual_seed(0))

    return go


def original_runner(device: str, batch: int, uncond: bool, original: str) -> Callable[[], Any]:
    """The original's generation with its phases labelled."""
    os.environ.setdefault("VAR_ORIG_DIR", str(Path(original) / "VAR"))
    with contextlib.redirect_stdout(io.StringIO()):
        helpers = original_helpers(original)  # it makes the original's VAR/ importable
        ovar = importlib.import_module("models.var")
        vae, var = helpers.build_original_d16(0)
    vae, var = vae.to(device), var.to(device)
    if device != "cpu":
        var.rng = torch.Generator(device=device)
    for block in var.blocks:
        block.forward = labelled("transformer", block.forward)
    var.get_logits = labelled("logits_head", var.get_logits)
    ovar.sample_with_top_k_top_p_ = labelled("sample", ovar.sample_with_top_k_top_p_)
    quant = vae.quantize
    quant.get_next_autoregressive_input = labelled("fhat_update", quant.get_next_autoregressive_input)
    vae.fhat_to_img = labelled("decode", vae.fhat_to_img)
    g = torch.Generator().manual_seed(0)
    labels = torch.full((batch,), 1000) if uncond else torch.randint(0, 1000, (1, batch), generator=g)[0]
    labels = labels.to(device)

    def go() -> Any:
        return var.autoregressive_infer_cfg(B=batch, label_B=labels.clone(), g_seed=0, cfg=1.5, top_k=900, top_p=0.96)

    return go


def run_profile(name: str, go: Callable[[], Any], device: str, rows: int) -> dict[str, float]:
    """Profile one call; print the phase split and top operators; return {phase: ms}."""
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.startswith("cuda") else [])
    with torch.inference_mode(), profile(activities=activities) as prof:
        t = time.perf_counter()
        go()
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        wall = time.perf_counter() - t
    events = prof.key_averages()
    phases = {e.key.split(":", 1)[1]: e.cpu_time_total / 1e3 for e in events if e.key.startswith("phase:")}
    print(f"\n## {name}: {wall:.2f} s wall (under the profiler)\n")
    print("| phase | ms (inclusive CPU) | share |\n|---|---|---|")
    for p in PHASES:
        ms = phases.get(p, float("nan"))
        print(f"| {p} | {ms:.0f} | {100 * ms / (wall * 1e3):.0f}% |")
    sort = "self_cuda_time_total" if device.startswith("cuda") else "self_cpu_time_total"
    print("\n```\n" + events.table(sort_by=sort, row_limit=rows) + "\n```")
    return {"wall_ms": wall * 1e3, **phases}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--original", default=None)
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--uncond", action="store_true")
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--rows", type=int, default=25)
    p.add_argument("--only", choices=("ours", "original"), default=None)
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    results = {}
    if args.only != "original":
        results["ours"] = run_profile("ours", ours_runner(args.device, args.batch, args.uncond), args.device, args.rows)
    if args.original and args.only != "ours":
        go = original_runner(args.device, args.batch, args.uncond, args.original)
        results["original"] = run_profile("original", go, args.device, args.rows)
    if len(results) == 2:
        print("\n| phase | ours ms | original ms | ours/original |\n|---|---|---|---|")
        for ph in ("wall_ms", *PHASES):
            a, b = results["ours"].get(ph, float("nan")), results["original"].get(ph, float("nan"))
            print(f"| {ph} | {a:.0f} | {b:.0f} | {a / b:.2f}x |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
