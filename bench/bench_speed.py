"""Speed against the original: our generation and edits as ratios to the original code's generation.

    python bench/bench_speed.py --original /path/to/FoundationVision/VAR [--repeats 3] [--threads 2] [--json out.json]
    python bench/bench_speed.py --original ... --threads 1 --clock cpu    # steadier on a shared machine
    python bench/bench_speed.py --original ... --stat min                 # fastest repeats, for bursty load
    python bench/bench_speed.py --original ... --fast-float32             # fast mode without fast bfloat16

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

from common import MARK, ROOT, fmt, load_avg, machine_info, median, paired_ratio, write_json

CLASS = 207
AIMS = {"generate": 0.85, "inpaint10": 0.5, "class10": 0.75}
ROWS = [("generate", "generate"), *((f"inpaint{a}", f"in-paint {a} %") for a in (2, 5, 10, 20, 40, 80))]
ROWS += [("class10", "class edit 10 %"), ("class40", "class edit 40 %")]


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


def worker(side: str, threads: int, seed: int, fast_float32: bool) -> None:
    import torch

    torch.set_num_threads(threads)
    model = Ours(seed, fast_float32) if side == "ours" else Original(seed)
    print(MARK + json.dumps({"ready": side, "threads": torch.get_num_threads()}), flush=True)
    for line in sys.stdin:
        req = json.loads(line)
        with torch.inference_mode():
            wall, cpu = time.perf_counter(), time.process_time()
            model.task(req["task"], req["fast"], req["seed"])
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        print(MARK + json.dumps({"wall": wall, "cpu": cpu}), flush=True)


# ---- driver side ---------------------------------------------------------------------------------
class Side:
    """A worker subprocess for one side."""

    def __init__(self, side: str, threads: int, seed: int, original: Path | None = None, fast_float32: bool = False):
        # ours: this checkout's packages, whatever another checkout may have installed
        env = {**os.environ, "PYTHONPATH": str(original if original is not None else ROOT)}
        cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", side, "--threads", str(threads)]
        cmd += ["--seed", str(seed)] + (["--fast-float32"] if fast_float32 else [])
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT, env=env)
        self.info = self.read()

    def read(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if line.startswith(MARK):
                return json.loads(line[len(MARK) :])
        raise RuntimeError(f"worker exited with code {self.proc.wait()}")

    def time(self, task: str, fast: bool, seed: int) -> dict[str, float]:
        """Seconds of one run: wall clock and the worker's CPU time (all its threads)."""
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps({"task": task, "fast": fast, "seed": seed}) + "\n")
        self.proc.stdin.flush()
        return self.read()

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


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--original", default=None, help="the FoundationVision/VAR checkout (or a folder holding it as VAR)")
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
    p.add_argument("--json", default=None)
    p.add_argument("--worker", choices=("ours", "original"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        worker(args.worker, args.threads, args.seed, args.fast_float32)
        return 0
    ours = Side("ours", args.threads, args.seed, fast_float32=args.fast_float32)
    orig = Side("original", args.threads, args.seed, original_checkout(args.original)) if args.original else None
    tasks = [(f"{name}{'_fast' if fast else ''}", name, fast) for name, _ in ROWS for fast in (False, True)]
    if orig is not None:
        tasks.insert(0, ("original", "generate", False))
    seconds: dict[str, list[float]] = {key: [] for key, *_ in tasks}
    loads = []
    try:
        for r in range(args.repeats):
            for key, name, fast in tasks if r % 2 == 0 else tasks[::-1]:
                side = orig if key == "original" else ours
                assert side is not None
                run = side.time(name, fast, seed=r)
                seconds[key].append(run[args.clock])
                log = f"  repeat {r + 1}/{args.repeats} {key}: {run['wall']:.2f} s wall, {run['cpu']:.2f} s CPU"
                print(log, file=sys.stderr, flush=True)
            loads.append(load_avg())
    finally:
        ours.close()
        if orig is not None:
            orig.close()
    base = "original" if orig is not None else "generate"
    rows = []
    for key, name, fast in tasks:
        if args.stat == "min":
            ratio = min(seconds[key]) / min(seconds[base])
        else:
            ratio = paired_ratio(seconds[key], seconds[base])
        aim = AIMS.get(name) if orig is not None and key != "original" and not fast else None
        typical = min(seconds[key]) if args.stat == "min" else median(seconds[key])
        rows.append({"key": key, "seconds": typical, "all": seconds[key], "ratio": ratio, "aim": aim})
    info = machine_info("cpu", args.threads)
    print(table(rows, base, info, args, loads))
    write_json(args.json, {"machine": info, "args": vars(args), "baseline": base, "load_avg": loads, "rows": rows})
    return 0


def table(rows: list[dict[str, Any]], base: str, info: dict[str, Any], args: argparse.Namespace, loads) -> str:
    names = {"original": "original: generate", **{k: f"ours: {v}" for k, v in ROWS}}
    fast = "fast (float32, pruning alone)" if args.fast_float32 else "fast"
    names.update({f"{k}_fast": f"ours: {v}, {fast}" for k, v in ROWS})
    head = (
        f"{info['date']} | {info['cpu']} | {args.threads} threads | torch {info['torch']} | d16, 256 px, batch 1, "
        f"cfg 1.5, top-k 900, top-p 0.96, incl. decode | {args.clock} seconds, {args.repeats} repeats, {args.stat} | "
        f"load avg {', '.join(f'{x:.1f}' for x in loads)} | ratio = x {names[base]}\n\n"
    )
    lines = ["| task | seconds | ratio | aim |", "|---|---|---|---|"]
    for r in rows:
        aim = "-" if r["aim"] is None else f"<= {r['aim']}x " + ("met" if r["ratio"] <= r["aim"] else "missed")
        lines.append(f"| {names[r['key']]} | {fmt(r['seconds'])} | {fmt(r['ratio'])}x | {aim} |")
    return head + "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
