"""Speed against the original: our generation and edits as ratios to the original code's generation.

    python bench/bench_speed.py --original /path/to/FoundationVision/VAR --old /tmp/old --repeats 5 --threads 2
    python bench/bench_speed.py --original ... --rows all                 # every row (masks 2..80 %, class 40 %)
    python bench/bench_speed.py --original ... --threads 1 --clock cpu    # steadier on a shared machine
    python bench/bench_speed.py --original ... --stat min                 # fastest repeats, for bursty load
    python bench/bench_speed.py --original ... --fast-float32             # fast mode without fast bfloat16

`--old PATH`: a checkout of an earlier commit of this project (`git worktree add /tmp/old c868edd`, or
`git archive c868edd | tar -x -C /tmp/old`), timed as a third side on the same rows: the regression guard.
The table gives, per row, the median of the per-repeat ratios and their spread (min-max over the repeats), this
machine's float32 and bfloat16 matrix-product rates (2048x2048, the workers' thread count, measured by our worker
before and after the run) and the share of the float32 rate that each of our rows reaches (its FLOPs, counted
once with `torch.utils.flop_counter`, over its median seconds).

d16-shaped models with random weights (speed does not depend on the values), 256 px, CPU, batch 1,
cfg 1.5, top-k 900, top-p 0.96, every timing including the VQVAE decode. Rows:
  original generate    the original's `autoregressive_infer_cfg` (class 207): the baseline, 1.00x;
  generate             ours, class 207;
  in-paint 2..80 %     ours, unconditional (one CFG branch), a centre box of 2 / 5 / 10 / 20 / 40 / 80 % of the
                       picture's area regenerated ("touch" masks), the picture's encoding cached (not timed);
  class edit 10 / 40 % the 10 and 40 % boxes redrawn as class 207 (two CFG branches);
each exact and in the fast mode (`SamplingOptions(fast=True)`: the last two scales and the decoder in bfloat16
where the CPU has fast bfloat16, and at those two scales only the positions being sampled).
Each side runs in its own worker process (this script with --worker); the original's has the checkout on its
PYTHONPATH (set through `env=`) and imports its `models` package there only; nothing of it is copied here. The
driver sends the tasks to the two workers one at a time, the original first in odd repeats and last in even ones;
a row's ratio is the median over repeats of (row / original generate in the same repeat), or with --stat min the
ratio of the fastest repeats. Without --original the baseline is our exact generation.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from common import MARK, ROOT, flop_mapping, fmt, load_avg, machine_info, median, paired_ratio, write_json

CLASS = 207
# issue 30's aims, as ratios to the original's generation: exact, and the fast mode
AIMS = {"generate": 0.7, "inpaint10": 0.45, "inpaint40": 0.55, "class10": 0.65}
FAST_AIMS = {"generate": 0.25, "inpaint10": 0.15}
ROWS = [("generate", "generate"), *((f"inpaint{a}", f"in-paint {a} %") for a in (2, 5, 10, 20, 40, 80))]
ROWS += [("class10", "class edit 10 %"), ("class40", "class edit 40 %")]
DEFAULT_ROWS = "generate,inpaint10,inpaint40,class10"


# ---- worker side ---------------------------------------------------------------------------------
def centre_box(size: int, area: float):
    """(size, size) float mask, 1 on a centred square covering `area` of the picture (1 = regenerate)."""
    import torch

    m = torch.zeros(size, size)
    a, b = round(size * (1 - math.sqrt(area)) / 2), round(size * (1 + math.sqrt(area)) / 2)
    m[a:b, a:b] = 1
    return m


class Ours:
    def __init__(self, seed: int, fast_float32: bool = False):
        import torch

        import var_core
        import var_core.sampling
        import var_core.vqvae
        from editing.teacher_forcing import encode_source
        from var_core.cpu_linear import prepack

        if fast_float32:  # the fast mode as on hardware without fast bfloat16: its pruning alone
            var_core.sampling.fast_dtype = var_core.vqvae.fast_dtype = lambda device: None

        torch.manual_seed(seed)
        self.vqvae = var_core.VQVAE().eval().requires_grad_(False)
        self.var = var_core.VAR(depth=16, patch_nums=self.vqvae.schedule).eval().requires_grad_(False)
        prepack(self.var)  # as loading does on the CPU
        g = torch.Generator().manual_seed(1234)
        low = torch.rand(1, 3, 8, 8, generator=g) * 2 - 1  # a smooth picture to edit
        picture = torch.nn.functional.interpolate(low, size=(256, 256), mode="bicubic").clamp(-1, 1)
        self.source = encode_source(self.vqvae, picture)

    def task(self, name: str, fast: bool, seed: int) -> None:
        import torch

        import var_core
        from editing.masks import scale_masks
        from editing.teacher_forcing import run_edit

        options = var_core.SamplingOptions(cfg=1.5, top_k=900, top_p=0.96, fast=fast)
        g = torch.Generator().manual_seed(seed)
        if name == "generate":
            var_core.generate(self.var, self.vqvae, torch.tensor([CLASS]), options, g)
            return
        label = self.var.num_classes if name.startswith("inpaint") else CLASS
        area = int(name.removeprefix("inpaint").removeprefix("class")) / 100
        regenerate = scale_masks(centre_box(256, area), self.var.patch_nums)
        labels = torch.tensor([label])
        f_hat, _ = run_edit(self.var, self.vqvae, labels, options, self.source, regenerate, generator=g)
        self.vqvae.decode_fhat(f_hat, fast=fast)


class Original:
    """FoundationVision/VAR's d16 and VQVAE, importable from PYTHONPATH (its `models` package)."""

    def __init__(self, seed: int):
        import torch
        import torch.nn as nn

        # The builder turns layer initialisation off for speed; keep the defaults to put sane weights
        # in the VQVAE (uninitialised memory may hold NaNs or denormals, which time differently).
        kinds = (nn.Linear, nn.Conv2d, nn.GroupNorm, nn.LayerNorm, nn.Embedding)
        defaults = {cls: cls.reset_parameters for cls in kinds}
        torch.manual_seed(seed)
        with contextlib.redirect_stdout(io.StringIO()):
            from models import build_vae_var

            self.vae, self.var = build_vae_var(device="cpu", depth=16)
        for cls, fn in defaults.items():
            cls.reset_parameters = fn
        for m in self.vae.modules():
            if isinstance(m, kinds):
                m.reset_parameters()
        self.vae.eval().requires_grad_(False)
        self.var.eval().requires_grad_(False)

    def task(self, name: str, fast: bool, seed: int) -> None:
        import torch

        assert name == "generate" and not fast
        labels = torch.tensor([CLASS])
        self.var.autoregressive_infer_cfg(B=1, label_B=labels, g_seed=seed, cfg=1.5, top_k=900, top_p=0.96)


def matmul_rates(size: int = 2048, repeats: int = 5) -> dict[str, float]:
    """GFLOP/s of a (size, size) @ (size, size) product in float32 and bfloat16, fastest of `repeats`."""
    import torch

    rates = {}
    for dtype in (torch.float32, torch.bfloat16):
        a, b = torch.randn(size, size).to(dtype), torch.randn(size, size).to(dtype)
        a @ b  # warm-up
        best = math.inf
        for _ in range(repeats):
            start = time.perf_counter()
            a @ b
            best = min(best, time.perf_counter() - start)
        rates[str(dtype).removeprefix("torch.")] = 2 * size**3 / best / 1e9
    return rates


def count_flops(model: Ours | Original, name: str, fast: bool) -> float:
    """GFLOP of one run of a task (matrix products, convolutions, attention), the prepacked linear layers included."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False, custom_mapping=flop_mapping())
    with torch.inference_mode(), counter:
        model.task(name, fast, seed=0)
    return counter.get_total_flops() / 1e9


def answer(model: Ours | Original, req: dict[str, Any]) -> dict[str, Any]:
    """A worker's reply to one request: matmul rates, a task's FLOPs, or the seconds of one timed run."""
    import torch

    if req["task"] == "rates":
        return matmul_rates()
    if req["task"] == "flops":
        return {"gflop": count_flops(model, req["name"], req["fast"])}
    with torch.inference_mode():
        wall, cpu = time.perf_counter(), time.process_time()
        model.task(req["task"], req["fast"], req["seed"])
        return {"wall": time.perf_counter() - wall, "cpu": time.process_time() - cpu}


def worker(side: str, threads: int, seed: int, fast_float32: bool) -> None:
    import torch

    torch.set_num_threads(threads)
    model = Ours(seed, fast_float32) if side == "ours" else Original(seed)
    print(MARK + json.dumps({"ready": side, "threads": torch.get_num_threads()}), flush=True)
    for line in sys.stdin:
        print(MARK + json.dumps(answer(model, json.loads(line))), flush=True)


# ---- driver side ---------------------------------------------------------------------------------
class Side:
    """A worker subprocess for one side, importing its code from `path` (PYTHONPATH, set through `env=`)."""

    def __init__(self, side: str, path: Path, threads: int, seed: int, fast_float32: bool = False):
        env = {**os.environ, "PYTHONPATH": str(path)}
        cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", side, "--threads", str(threads)]
        cmd += ["--seed", str(seed)] + (["--fast-float32"] if fast_float32 else [])
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=path, env=env)
        self.info = self.read()

    def read(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if line.startswith(MARK):
                return json.loads(line[len(MARK) :])
        raise RuntimeError(f"worker exited with code {self.proc.wait()}")

    def ask(self, request: dict[str, Any]) -> dict[str, Any]:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(request) + "\n")
        self.proc.stdin.flush()
        return self.read()

    def time(self, task: str, fast: bool, seed: int) -> dict[str, float]:
        """Seconds of one run: wall clock and the worker's CPU time (all its threads)."""
        return self.ask({"task": task, "fast": fast, "seed": seed})

    def close(self) -> None:
        if self.proc.poll() is None:
            assert self.proc.stdin is not None
            self.proc.stdin.close()
            self.proc.wait(timeout=60)


def original_checkout(path: str) -> Path:
    """The folder holding the original's `models` package (PATH itself or PATH/VAR)."""
    for root in (Path(path), Path(path) / "VAR"):
        if (root / "models" / "var.py").exists():
            return root.resolve()
    raise SystemExit(f"No FoundationVision/VAR checkout at {path} (expected {path}/models/var.py).")


def old_checkout(path: str) -> Path:
    """An earlier commit of this project (its var_core and editing packages and this bench's `Ours`)."""
    root = Path(path).resolve()
    if not (root / "var_core" / "sampling.py").exists():
        raise SystemExit(f"No checkout of this project at {path} (expected {path}/var_core/sampling.py).")
    return root


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--original", default=None, help="the FoundationVision/VAR checkout (or a folder holding it as VAR)")
    p.add_argument("--old", default=None, help="a checkout of an earlier commit of this project, timed beside ours")
    p.add_argument(
        "--rows", default=DEFAULT_ROWS, help=f"comma-separated rows, or 'all' ({', '.join(k for k, _ in ROWS)})"
    )
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    p.add_argument("--seed", type=int, default=0, help="weight-init seed; repeat r samples with seed r")
    p.add_argument(
        "--clock",
        choices=("wall", "cpu"),
        default="wall",
        help="what the table shows: wall clock, or the worker's CPU time (steadier on a shared machine, best "
        "with --threads 1)",
    )
    p.add_argument(
        "--stat",
        choices=("median", "min"),
        default="median",
        help="median: each row's median, ratios the median of the per-repeat ratios; min: the fastest repeat of "
        "each row and their ratio (load on a shared machine only ever adds time)",
    )
    p.add_argument(
        "--fast-float32",
        action="store_true",
        help="time the fast mode as on hardware without fast bfloat16 (float32, the last two scales' pruning alone)",
    )
    p.add_argument("--no-flops", action="store_true", help="skip counting each row's FLOPs")
    p.add_argument("--json", default=None)
    p.add_argument("--worker", choices=("ours", "original"), help=argparse.SUPPRESS)
    return p.parse_args(argv)


def start_sides(args: argparse.Namespace) -> dict[str, Side]:
    """The workers: 'ours' (this checkout), 'old' (--old) and 'original' (--original), each in its own process."""
    sides = {"ours": Side("ours", ROOT, args.threads, args.seed, args.fast_float32)}
    if args.old:
        sides["old"] = Side("ours", old_checkout(args.old), args.threads, args.seed, args.fast_float32)
    if args.original:
        sides["original"] = Side("original", original_checkout(args.original), args.threads, args.seed)
    return sides


def task_list(args: argparse.Namespace, sides: dict[str, Side]) -> list[tuple[str, str, str, bool]]:
    """(key, side, task, fast) in the order of one repeat: each row's sides back to back."""
    names = [k for k, _ in ROWS] if args.rows == "all" else args.rows.split(",")
    tasks = [("original", "original", "generate", False)] if "original" in sides else []
    for name in names:
        for fast in (False, True):
            for side in ("old", "ours"):
                if side in sides:
                    key = f"{'old ' if side == 'old' else ''}{name}{'_fast' if fast else ''}"
                    tasks.append((key, side, name, fast))
    return tasks


def measure(args: argparse.Namespace, sides: dict[str, Side], tasks: list) -> tuple[dict[str, list[float]], list]:
    """Every task once per repeat, the order reversed in every other repeat (the load falls on all sides alike)."""
    seconds: dict[str, list[float]] = {key: [] for key, *_ in tasks}
    loads = []
    for r in range(args.repeats):
        for key, side, name, fast in tasks if r % 2 == 0 else tasks[::-1]:
            run = sides[side].time(name, fast, seed=r)
            seconds[key].append(run[args.clock])
            log = f"  repeat {r + 1}/{args.repeats} {key}: {run['wall']:.2f} s wall, {run['cpu']:.2f} s CPU"
            print(log, file=sys.stderr, flush=True)
        loads.append(load_avg())
    return seconds, loads


def summarise(args: argparse.Namespace, tasks: list, seconds: dict[str, list[float]], base: str, flops: dict) -> list:
    """One row per task: typical seconds, the ratio to `base`, the spread of the per-repeat ratios, the aim."""
    rows = []
    for key, side, name, fast in tasks:
        per_repeat = [a / b for a, b in zip(seconds[key], seconds[base], strict=True)]
        if args.stat == "min":
            ratio, typical = min(seconds[key]) / min(seconds[base]), min(seconds[key])
        else:
            ratio, typical = paired_ratio(seconds[key], seconds[base]), median(seconds[key])
        aims = FAST_AIMS if fast else AIMS
        aim = aims.get(name) if base == "original" and side == "ours" else None
        row = {"key": key, "side": side, "seconds": typical, "all": seconds[key], "ratio": ratio, "aim": aim}
        row.update(spread=[min(per_repeat), max(per_repeat)], gflop=flops.get(key))
        rows.append(row)
    return rows


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.worker:
        worker(args.worker, args.threads, args.seed, args.fast_float32)
        return 0
    sides = start_sides(args)
    tasks = task_list(args, sides)
    try:
        rates = [sides["ours"].ask({"task": "rates"})]
        seconds, loads = measure(args, sides, tasks)
        rates.append(sides["ours"].ask({"task": "rates"}))
        flops = {}
        if not args.no_flops:
            for key, side, name, fast in tasks:
                if side == "ours":
                    flops[key] = sides[side].ask({"task": "flops", "name": name, "fast": fast})["gflop"]
    finally:
        for side in sides.values():
            side.close()
    base = "original" if "original" in sides else "generate"
    rows = summarise(args, tasks, seconds, base, flops)
    info = machine_info("cpu", args.threads)
    print(table(rows, base, info, args, loads, rates))
    payload = {"machine": info, "args": vars(args), "baseline": base, "load_avg": loads, "rates": rates, "rows": rows}
    write_json(args.json, payload)
    return 0


def label(key: str, fast_name: str) -> str:
    """A row's name in the table, from its key ('old inpaint10_fast' -> 'old: in-paint 10 %, fast')."""
    names = dict(ROWS)
    side, _, task = key.rpartition(" ")
    name, fast = task.removesuffix("_fast"), task.endswith("_fast")
    if key == "original":
        return "original: generate"
    return f"{side or 'ours'}: {names[name]}" + (f", {fast_name}" if fast else "")


def table(rows: list[dict[str, Any]], base: str, info: dict[str, Any], args: argparse.Namespace, loads, rates) -> str:
    fast_name = "fast (float32, pruning alone)" if args.fast_float32 else "fast"
    f32 = min(r["float32"] for r in rates)
    rate_text = ", ".join(f"{d} {min(r[d] for r in rates):.0f}-{max(r[d] for r in rates):.0f}" for d in rates[0])
    head = (
        f"{info['date']} | {info['cpu']} | {args.threads} threads | torch {info['torch']} | d16, 256 px, batch 1, "
        f"cfg 1.5, top-k 900, top-p 0.96, incl. decode | {args.clock} seconds, {args.repeats} repeats, {args.stat} | "
        f"load avg {', '.join(f'{x:.1f}' for x in loads)} | matmul 2048^2 GFLOP/s {rate_text} | "
        f"ratio = x {label(base, fast_name)}\n\n"
    )
    lines = ["| task | seconds | ratio | spread | aim | GFLOP | share of fp32 rate |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        aim = "-" if r["aim"] is None else f"<= {r['aim']}x " + ("met" if r["ratio"] <= r["aim"] else "missed")
        lo, hi = r["spread"]
        flop = "-" if r["gflop"] is None else f"{r['gflop']:.0f}"
        wall = r["seconds"] / (args.threads if args.clock == "cpu" else 1)  # CPU seconds count every thread
        share = "-" if r["gflop"] is None else f"{100 * r['gflop'] / wall / f32:.0f} %"
        cells = [label(r["key"], fast_name), fmt(r["seconds"]), f"{fmt(r['ratio'])}x", f"{fmt(lo)}-{fmt(hi)}", aim]
        lines.append("| " + " | ".join([*cells, flop, share]) + " |")
    return head + "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
