"""Where our time goes, per scale and per stage, against the FLOPs: generation and edits (d16 shape, random weights).

    python bench/profile_generate.py [--tasks generate,inpaint10,inpaint40,class10] [--fast] [--threads 2]
                                     [--encode] [--ops 12]

Each task (those of bench_speed.py, whose `Ours` worker builds the models and the picture to edit) runs once to warm
up, once timed, once with every operator timed and once under a FLOP counter. Stages are counted by wrapping this
process's model objects and the sampler's functions (no file changes): per scale the transformer (`VAR.step` with
the logits head; an edit's kept first scales in one pass, `VAR.prefill`), sampling (CFG, top-k/top-p, the draw),
the keep hook (teacher forcing: the kept tokens' nearest codes) with the f_hat update and the next scale's input;
then the VQVAE decode (and with --encode the source encode an edit starts from, which the bench caches). Each
stage's own time, without the stages nested in it; the transformer's split by the kind of its operators: the
linear layers, the attention kernel, LayerNorm/AdaLN/q-k normalisation/elementwise/copies, and "python" (its time
outside operators: interpreter and dispatch). GFLOP/s is a row's counted FLOPs over its time. Then the top
operators. --clock cpu counts the main thread's CPU time instead of the wall clock: with --threads 1 it is
nearly blind to other processes' load (not to their use of the caches and memory bandwidth).
"""

from __future__ import annotations

import argparse
import functools
import os
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from typing import Any

import torch
from bench_speed import Ours
from common import flop_mapping
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import FlopCounterMode

import editing.teacher_forcing as teacher_forcing
import var_core.sampling as sampling

KINDS = ("linear", "attention", "norm/elementwise", "python")  # of the transformer's time


class Phases:
    """The current scale and a stack of stages; each stage's own seconds and, with a FLOP counter attached, FLOPs."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self.clock = clock
        self.scale = "-"
        self.stack: list[list[Any]] = []  # [label, clock and FLOPs at entry, clock and FLOPs of nested stages]
        self.counter: FlopCounterMode | None = None
        self.seconds: dict[tuple[str, str], float] = defaultdict(float)
        self.flops: dict[tuple[str, str], float] = defaultdict(float)

    def label(self) -> tuple[str, str]:
        return self.stack[-1][0] if self.stack else ("-", "outside")

    def wrap(self, stage: str, fn: Callable[..., Any], scale: Callable[..., str | None] | None = None) -> Callable:
        """fn counted as `stage` of the current scale; `scale(*args)` sets the current scale first."""

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            k = scale(*args, **kwargs) if scale is not None else None
            if k is not None:
                self.scale = k
            flops = self.counter.get_total_flops() if self.counter else 0
            self.stack.append([(self.scale, stage), self.clock(), flops, 0.0, 0])
            try:
                return fn(*args, **kwargs)
            finally:
                label, start, flops0, nested, nested_flops = self.stack.pop()
                spent = self.clock() - start
                spent_flops = (self.counter.get_total_flops() if self.counter else 0) - flops0
                self.seconds[label] += spent - nested
                self.flops[label] += spent_flops - nested_flops
                if self.stack:
                    self.stack[-1][3] += spent
                    self.stack[-1][4] += spent_flops

        return wrapper


class OpTimes(TorchDispatchMode):
    """Each operator's seconds (the phases' clock, around the operator alone) by (scale, stage, kind) and by name."""

    def __init__(self, phases: Phases) -> None:
        super().__init__()
        self.phases = phases
        self.by_kind: dict[tuple[str, str, str], float] = defaultdict(float)
        self.by_name: dict[str, list[float]] = defaultdict(lambda: [0.0, 0])

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        clock = self.phases.clock
        start = clock()
        out = func(*args, **(kwargs or {}))
        spent = clock() - start
        name = str(func.overloadpacket)
        self.by_kind[(*self.phases.label(), kind(name))] += spent
        entry = self.by_name[name]
        entry[0] += spent
        entry[1] += 1
        return out


def instrument(ours: Ours, phases: Phases) -> None:
    """Wrap the models' and the sampler's stages in ranges (this process only)."""
    var, vqvae = ours.var, ours.vqvae

    def prefix(x: torch.Tensor, *_: Any) -> str:
        kept = next(k for k, (b, e) in enumerate(var.begin_ends) if e == x.shape[1])
        return f"0-{kept} kept"

    var.step = phases.wrap("transformer", var.step)
    var.prefill = phases.wrap("transformer", var.prefill, prefix)
    var.logits = phases.wrap("head", var.logits)
    sampling._logits = phases.wrap("transformer", sampling._logits, lambda run, k, x: str(k))
    sampling._guide = phases.wrap("sampling", sampling._guide)
    sampling._draw = phases.wrap("sampling", sampling._draw)
    sampling._keep = phases.wrap("keep hook", sampling._keep)
    sampling._contribution = phases.wrap("f_hat/input", sampling._contribution, lambda quant, h, k: str(k))
    sampling._next_input = phases.wrap("f_hat/input", sampling._next_input)
    hook = teacher_forcing.TeacherForcing
    hook.__call__ = phases.wrap("keep hook", hook.__call__, lambda self, k, f_hat: str(k))
    vqvae.decode_fhat = phases.wrap("decode", vqvae.decode_fhat, lambda *a, **kw: "decode")
    teacher_forcing.encode_source = phases.wrap("encode", teacher_forcing.encode_source, lambda *a: "encode")


def kind(name: str) -> str:
    """An operator's kind: the linear layers (and the decoder's convolutions), the attention kernel, the rest."""
    if name in ("mkldnn._linear_pointwise", "aten.addmm", "aten.mm", "aten.bmm", "aten.linear"):
        return "linear"
    if "conv" in name:
        return "conv"
    if "scaled_dot_product" in name or "flash_attention" in name:
        return "attention"
    return "norm/elementwise"


def run_task(ours: Ours, task: str, fast: bool, encode: bool) -> None:
    if encode:  # the picture Ours edits, encoded again (the bench caches it)
        low = torch.rand(1, 3, 8, 8, generator=torch.Generator().manual_seed(1234)) * 2 - 1
        picture = torch.nn.functional.interpolate(low, size=(256, 256), mode="bicubic").clamp(-1, 1)
        teacher_forcing.encode_source(ours.vqvae, picture)
    ours.task(task, fast, seed=0)


def _order(s: str) -> tuple[int, float]:
    if s == "encode":
        return (0, 0)
    if s == "decode":
        return (3, 0)
    if s.isdigit():
        return (2, int(s))
    return (1, 0)  # the kept prefix


def table(total: float, seconds: dict, ops: dict, flops: dict, pns: tuple[int, ...]) -> str:
    """Per scale: ms per stage (the transformer, logits head included, split by kind; python = its time outside
    operators), GFLOP and GFLOP/s, share of the run."""
    stages = {"transformer": ("transformer", "head"), "sampling": ("sampling",), "keep/f_hat": ("keep hook",
              "f_hat/input"), "VQVAE": ("decode", "encode")}  # fmt: skip
    head = "| scale | transformer ms | linear | attention | norm/elementwise | python | sampling ms | "
    head += "keep hook + f_hat ms | VQVAE ms | total ms | share | GFLOP | GFLOP/s |\n" + "|---" * 13 + "|"
    lines, sums = [head], defaultdict(float)
    for s in sorted({sc for sc, _ in seconds}, key=_order):
        if s == "-":
            continue
        cols = {name: sum(seconds.get((s, st), 0.0) for st in sts) * 1e3 for name, sts in stages.items()}
        split = {k: sum(ops.get((s, st, k), 0.0) for st in stages["transformer"]) * 1e3 for k in KINDS[:3]}
        split["python"] = max(cols["transformer"] - sum(split.values()), 0.0)  # two runs: their noise
        row = {**cols, **split, "total": sum(cols.values())}
        row["gflop"] = sum(v for (sc, _), v in flops.items() if sc == s) / 1e9
        for key, v in row.items():
            sums[key] += v
        name = f"{s} ({pns[int(s)]}x{pns[int(s)]})" if s.isdigit() else s
        lines.append(_line(name, row, total))
    lines.append(_line("all", sums, total))
    return "\n".join(lines)


def _line(name: str, row: dict, total: float) -> str:
    keys = ("transformer", *KINDS, "sampling", "keep/f_hat", "VQVAE", "total")
    cells = [name, *(f"{row[k]:.0f}" for k in keys), f"{100 * row['total'] / (total * 1e3):.1f} %"]
    rate = "-" if row["total"] <= 0 or row["gflop"] <= 0 else f"{row['gflop'] / row['total'] * 1e3:.0f}"
    return "| " + " | ".join([*cells, f"{row['gflop']:.1f}", rate]) + " |"


def run_profile(ours: Ours, phases: Phases, task: str, fast: bool, encode: bool, rows: int) -> None:
    """Warm-up, a timed run (stages), a run timing each operator, a run counting FLOPs; prints the tables."""
    run_task(ours, task, fast, encode)
    phases.seconds.clear()
    with torch.inference_mode():
        start = phases.clock()
        run_task(ours, task, fast, encode)
        total = phases.clock() - start
    seconds = dict(phases.seconds)
    ops = OpTimes(phases)
    with torch.inference_mode(), ops:
        run_task(ours, task, fast, encode)
    phases.counter = FlopCounterMode(display=False, custom_mapping=flop_mapping())
    phases.flops.clear()
    try:
        with torch.inference_mode(), phases.counter:
            run_task(ours, task, fast, encode)
    finally:
        phases.counter = None
    mode = "fast" if fast else "exact"
    print(f"\n## {task}, {mode}: {total:.2f} s, {torch.get_num_threads()} threads, load avg {os.getloadavg()[0]:.1f}\n")
    print(table(total, seconds, ops.by_kind, dict(phases.flops), ours.var.patch_nums))
    top = sorted(ops.by_name.items(), key=lambda item: -item[1][0])[:rows]
    print("\n| operator | ms | calls |\n|---|---|---|")
    for name, (spent, calls) in top:
        print(f"| {name} | {spent * 1e3:.0f} | {calls} |")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tasks", default="generate,inpaint10", help="comma-separated tasks of bench_speed.py")
    p.add_argument("--fast", action="store_true", help="the fast mode")
    p.add_argument("--encode", action="store_true", help="also encode the edited picture in each run (timed)")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--ops", type=int, default=12, help="rows of the top-operator table")
    p.add_argument(
        "--clock",
        choices=("wall", "cpu"),
        default="wall",
        help="wall clock, or the main thread's CPU time (steadier on a shared machine; with --threads 1 only)",
    )
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    ours = Ours(seed=0)
    phases = Phases(time.perf_counter if args.clock == "wall" else time.thread_time)
    instrument(ours, phases)
    for task in args.tasks.split(","):
        run_profile(ours, phases, task, args.fast, args.encode, args.ops)
    return 0


if __name__ == "__main__":
    sys.exit(main())
