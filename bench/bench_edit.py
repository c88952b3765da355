"""Speed of editing vs plain generation, d16-shaped VAR (random weights), 256 px, batch 1.

    python bench/bench_edit.py --repeats 3 [--original /work/orig] [--device cuda] [--editor] [--json out.json]

Rows, all with the same seed and cfg 1.5 / top-k 900 / top-p 0.96, timings include the VQVAE decode:
  original generate  the original's class-conditional generation (with --original): the baseline;
  generate           ours, class-conditional;
  class edit         the edit loop (`editing.teacher_forcing.run_edit`) regenerating a centre box as another
                     class, on an image whose encoding is cached (encoding excluded);
  inpaint (uncond)   the same box with the unconditional class: one CFG branch;
  encode             `encode_source` alone (VQVAE encoder + multi-scale quantisation);
  Editor.inpaint     (--editor) the high-level call end to end on a fresh Editor: crop, encode, edit, paste-back.
Each row's ratio is the median over repeats of (row / baseline in the same repeat); the baseline is the
original's generation, or ours without --original. Targets: class edit <= 1.1x, inpaint <= 0.75x.
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

TARGETS = {"class_edit": 1.1, "inpaint": 0.75}
LABELS = {
    "original_generate": "original: generate (class)",
    "generate": "ours: generate (class)",
    "class_edit": "ours: class edit, cached encoding",
    "inpaint": "ours: in-paint (uncond, 1 CFG branch)",
    "encode": "ours: encode only",
    "editor_inpaint": "ours: Editor.inpaint end to end (incl. encode)",
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--original", default=None, help="folder holding VAR/ and tools/orig_bench.py (e.g. /work/orig)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--dtype", default="float32", help="our compute precision (the original runs float32)")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--box", type=float, default=0.5, help="side of the centre box as a fraction of the image")
    p.add_argument("--editor", action="store_true", help="also time Editor.inpaint end to end")
    p.add_argument("--json", default=None)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    threads = args.threads or torch.get_num_threads()
    ours = Worker("ours", args.device, threads, dtype=args.dtype, seed=args.seed)
    orig = Worker("original", args.device, threads, original=args.original, seed=args.seed) if args.original else None
    gen = {"batch": 1, "seed": args.seed, "cfg": 1.5, "top_k": 900, "top_p": 0.96}
    edit = {"seed": args.seed, "cfg": 1.5, "top_k": 900, "top_p": 0.96, "frac": args.box}
    tasks: list[tuple[str, Worker, str, dict[str, Any]]] = []
    if orig is not None:
        tasks.append(("original_generate", orig, "generate", gen))
    tasks += [
        ("generate", ours, "generate", gen),
        ("class_edit", ours, "edit", {**edit, "uncond": False}),
        ("inpaint", ours, "edit", {**edit, "uncond": True}),
        ("encode", ours, "encode", {}),
    ]
    if args.editor:
        tasks.append(("editor_inpaint", ours, "editor_inpaint", edit))
    series = {name: Series() for name, *_ in tasks}
    loads = []
    try:
        for r in range(args.repeats):
            for name, worker, task, kw in tasks if r % 2 == 0 else tasks[::-1]:
                series[name].add(worker.run(task, **kw))
                print(
                    f"  repeat {r + 1}/{args.repeats} {name}: {series[name].seconds[-1]:.2f} s, "
                    f"peak {series[name].peak_mb[-1]:.0f} MB",
                    file=sys.stderr,
                    flush=True,
                )
            loads.append(load_avg())
    finally:
        ours.close()
        if orig is not None:
            orig.close()
    base = "original_generate" if orig is not None else "generate"
    rows = []
    for name, *_ in tasks:
        ratio = paired_ratio(series[name].seconds, series[base].seconds)
        target = TARGETS.get(name)
        rows.append(
            {
                "name": name,
                **series[name].summary(),
                "ratio": ratio,
                "target": target,
                "meets_target": None if target is None or orig is None else ratio <= target,
            }
        )
    info = machine_info(args.device, threads)
    info["workers"] = {"ours": ours.info, **({"original": orig.info} if orig is not None else {})}
    print(table(rows, base, info, args))
    write_json(args.json, {"machine": info, "args": vars(args), "baseline": base, "load_avg": loads, "rows": rows})
    return 0


def table(rows: list[dict[str, Any]], base: str, info: dict[str, Any], args: argparse.Namespace) -> str:
    """The results as a markdown table (medians over the repeats)."""
    head = (
        f"{info['date']} | {info['cpu']} | {info['torch_threads']} threads | device {info['device']} | "
        f"torch {info['torch']} | batch 1, 256 px, cfg 1.5, top-k 900, top-p 0.96, centre box {args.box:g} "
        f"of the side | {args.repeats} repeats, medians | ratio = x {LABELS[base]}\n\n"
    )
    lines = ["| task | seconds | ratio | target | peak MB (delta) |", "|---|---|---|---|---|"]
    for r in rows:
        target = (
            "-"
            if r["target"] is None
            else f"<= {r['target']}x"
            + ("" if r["meets_target"] is None else (" met" if r["meets_target"] else " MISSED"))
        )
        lines.append(
            f"| {LABELS[r['name']]} | {fmt(r['seconds_median'])} | {fmt(r['ratio'])}x | {target} | "
            f"{r['peak_mb_median']:.0f} ({r['delta_mb_median']:.0f}) |"
        )
    return head + "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
