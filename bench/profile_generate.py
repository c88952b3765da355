"""torch.profiler view of where our time goes: 256 px generation and a 10 % in-paint (d16 shape, random weights).

    python bench/profile_generate.py [--tasks generate,inpaint10] [--fast] [--threads 2] [--rows 15]

Ranges are added by wrapping methods of this process's model objects (no file changes): the transformer per
scale (and the one pass over an edit's kept first scales), and inside it the attention (qkv, cache, SDPA, proj)
and the MLP; the logits head; top-k/top-p and the draw; the keep hook (teacher forcing); the f_hat update and
next input; the VQVAE decode split into its 16 px part (conv_in, mid and level 4 with their global attention)
and each upsampling level. Times are the inclusive CPU time of each range, shares of the wall time of the
run; then the top operators by self time. The tasks are those of bench_speed.py (its `Ours` worker builds the
models and the picture to edit).
"""

from __future__ import annotations

import argparse
import functools
import sys
import time
from collections.abc import Callable
from typing import Any

import torch
from bench_speed import Ours
from torch.profiler import ProfilerActivity, profile, record_function

import editing.teacher_forcing as teacher_forcing
import var_core.sampling as sampling


def labelled(name: str | Callable[..., str], fn: Callable[..., Any]) -> Callable[..., Any]:
    """fn wrapped in a profiler range `phase:<name>` (name may be a function of fn's arguments)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with record_function("phase:" + (name(*args, **kwargs) if callable(name) else name)):
            return fn(*args, **kwargs)

    return wrapper


def instrument(ours: Ours) -> None:
    var, vqvae = ours.var, ours.vqvae
    pns = var.patch_nums
    begins = [b for b, _ in var.begin_ends]

    def scale(x: torch.Tensor, cond: Any, caches: list, *rest: Any) -> str:
        k = begins.index(caches[0].end)  # the cache holds every position before this scale's
        return f"transformer scale {k} ({pns[k]}x{pns[k]})"

    def prefix(x: torch.Tensor, cond: Any, caches: list) -> str:
        k = begins.index(x.shape[1]) if x.shape[1] in begins else len(pns)
        return f"transformer, kept scales 0-{k - 1} in one pass"

    var.step = labelled(scale, var.step)
    var.prefill = labelled(prefix, var.prefill)
    for block in var.blocks:
        block.attn.forward = labelled("  attention (qkv, cache, sdpa, proj)", block.attn.forward)
        block.ffn.forward = labelled("  mlp", block.ffn.forward)
    var.logits = labelled("logits head", var.logits)
    sampling.top_k_top_p = labelled("top-k/top-p", sampling.top_k_top_p)
    sampling.draw = labelled("draw (exponential race)", sampling.draw)
    sampling._exponential = labelled("draw noise", sampling._exponential)
    quant = vqvae.quantize
    quant.scale_contribution = labelled("f_hat update", quant.scale_contribution)
    var.next_input = labelled("next input", var.next_input)
    hook = teacher_forcing.TeacherForcing
    hook.__call__ = labelled("keep hook", hook.__call__)
    dec = vqvae.decoder
    vqvae.decode_fhat = labelled("decode", vqvae.decode_fhat)
    dec.mid.forward = labelled("  decoder mid (16 px, attention)", dec.mid.forward)
    for i, level in enumerate(dec.up):
        side = pns[-1] * 2 ** (len(dec.up) - 1 - i)
        attn = ", attention" if len(level.attn) else ""
        level.forward = labelled(f"  decoder level {i} ({side} px{attn})", level.forward)


def run_profile(ours: Ours, task: str, fast: bool, rows: int) -> None:
    ours.task(task, fast, seed=0)  # warm-up
    with torch.inference_mode(), profile(activities=[ProfilerActivity.CPU]) as prof:
        t = time.perf_counter()
        ours.task(task, fast, seed=0)
        wall = time.perf_counter() - t
    events = prof.key_averages()
    phases = sorted((e.key.split(":", 1)[1], e.cpu_time_total / 1e3) for e in events if e.key.startswith("phase:"))
    mode = "fast" if fast else "exact"
    print(f"\n## {task}, {mode}: {wall:.2f} s wall under the profiler, {torch.get_num_threads()} threads\n")
    print("| range | ms (inclusive CPU) | share of wall |\n|---|---|---|")
    for name, ms in phases:
        print(f"| {name} | {ms:.0f} | {100 * ms / (wall * 1e3):.1f} % |")
    print("\n```\n" + events.table(sort_by="self_cpu_time_total", row_limit=rows) + "\n```")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tasks", default="generate,inpaint10", help="comma-separated tasks of bench_speed.py")
    p.add_argument("--fast", action="store_true", help="the fast mode")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--rows", type=int, default=15)
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    ours = Ours(seed=0)
    instrument(ours)
    for task in args.tasks.split(","):
        run_profile(ours, task, args.fast, args.rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
