"""Speed of class-conditional 256 px generation, d16-shaped VAR (random weights), ours vs the original.

    python bench/bench_generate.py --batches 1,8 --repeats 3 [--original /work/orig] [--device cuda] [--json out.json]

cfg 1.5, top-k 900, top-p 0.96, timing includes the VQVAE decode. Each side runs in its own worker
subprocess (its own peak memory); runs alternate between the sides (the order flips every repeat) so
both see the same background load. Reported: median seconds per image, the median of the paired
ratios ours/original, and peak memory (CPU: RSS high-water mark of the worker during the run, i.e.
including the weights; "delta" is that peak minus the RSS just before the run; CUDA: max allocated).
The "uncond" rows use the unconditional class for every label: ours then runs a single CFG branch.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

import torch
from common import (
    Series,
    Worker,
    fmt,
    load_avg,
    machine_info,
    paired_ratio,
    write_json,
)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--batches", default="1,8", help="comma-separated batch sizes (default 1,8)")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--variants", default="cond,uncond", help="cond, uncond or both (default both)")
    p.add_argument("--original", default=None, help="folder holding VAR/ and tools/orig_bench.py (e.g. /work/orig)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--dtype", default="float32", help="our compute precision (the original runs float32)")
    p.add_argument("--threads", type=int, default=None, help="torch threads per worker (default: torch's)")
    p.add_argument("--warmup", type=int, default=0, help="untimed runs per side before each row")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--first", choices=("ours", "original"), default="ours", help="side that runs first in repeat 1")
    p.add_argument("--cfg", type=float, default=1.5)
    p.add_argument("--top-k", type=int, default=900)
    p.add_argument("--top-p", type=float, default=0.96)
    p.add_argument("--json", default=None, help="write all measurements to this JSON file")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    batches = [int(b) for b in args.batches.split(",") if b]
    variants = [v for v in args.variants.split(",") if v]
    threads = args.threads or torch.get_num_threads()
    workers = {"ours": Worker("ours", args.device, threads, dtype=args.dtype, seed=args.seed)}
    if args.original:
        workers["original"] = Worker("original", args.device, threads, original=args.original, seed=args.seed)
    sides = sorted(workers, key=lambda s: s != args.first)
    sampling = {"cfg": args.cfg, "top_k": args.top_k, "top_p": args.top_p}
    rows: list[dict[str, Any]] = []
    try:
        for batch in batches:  # ascending: a larger run's allocator cache would inflate a later small run's peak
            for variant in variants:
                kw = {"batch": batch, "seed": args.seed, "uncond": variant == "uncond", **sampling}
                series = {s: Series() for s in sides}
                for _ in range(args.warmup):
                    for s in sides:
                        workers[s].run("generate", **kw)
                loads = []
                for r in range(args.repeats):
                    for s in sides if r % 2 == 0 else sides[::-1]:
                        series[s].add(workers[s].run("generate", **kw), per=batch)
                        print(
                            f"  batch {batch} {variant} repeat {r + 1}/{args.repeats} {s}: "
                            f"{series[s].seconds[-1]:.2f} s/img, peak {series[s].peak_mb[-1]:.0f} MB",
                            file=sys.stderr,
                            flush=True,
                        )
                    loads.append(load_avg())
                row: dict[str, Any] = {
                    "batch": batch,
                    "labels": variant,
                    "load_avg": loads,
                    **{s: series[s].summary() for s in sides},
                }
                if "original" in series:
                    row["ratio"] = paired_ratio(series["ours"].seconds, series["original"].seconds)
                rows.append(row)
    finally:
        for w in workers.values():
            w.close()
    info = machine_info(args.device, threads)
    info["workers"] = {s: w.info for s, w in workers.items()}
    print(table(rows, "original" in sides, info, args))
    write_json(args.json, {"machine": info, "args": vars(args), "rows": rows})
    return 0


def table(rows: list[dict[str, Any]], with_original: bool, info: dict[str, Any], args: argparse.Namespace) -> str:
    """The results as a markdown table (medians over the repeats)."""
    head = (
        f"{info['date']} | {info['cpu']} | {info['torch_threads']} threads | device {info['device']} | "
        f"torch {info['torch']} | cfg {args.cfg}, top-k {args.top_k}, top-p {args.top_p} | "
        f"{args.repeats} repeats, medians\n\n"
    )
    if with_original:
        header = (
            "| batch | labels | ours s/img | original s/img | ours/original | ours peak MB (delta) "
            "| original peak MB (delta) |"
        )
        lines = [header, "|---|---|---|---|---|---|---|"]
    else:
        lines = ["| batch | labels | ours s/img | ours peak MB (delta) |", "|---|---|---|---|"]
    for r in rows:
        o = r["ours"]
        ours_mem = f"{o['peak_mb_median']:.0f} ({o['delta_mb_median']:.0f})"
        if with_original:
            g = r["original"]
            lines.append(
                f"| {r['batch']} | {r['labels']} | {fmt(o['seconds_median'])} | {fmt(g['seconds_median'])} | "
                f"{fmt(r['ratio'])}x | {ours_mem} | {g['peak_mb_median']:.0f} ({g['delta_mb_median']:.0f}) |"
            )
        else:
            lines.append(f"| {r['batch']} | {r['labels']} | {fmt(o['seconds_median'])} | {ours_mem} |")
    return head + "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
