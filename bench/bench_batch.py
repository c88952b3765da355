"""Batching, measured: 8 different pictures' in-paints as one `Editor.run` call against 8 single calls.

    python bench/bench_batch.py [--models demo,d16] [--repeats 3] [--threads 2]

Both ways run in this process, alternating, on the same Editor; medians and their ratio are
printed per model. "d16" is a d16-shaped model with random weights (256 px, 10 scales), "demo"
the bundled one. Each picture gets its own mask (a box at a different place, about 10-20 % of the
picture) and its own seed; candidates 1 each.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch

import var_core
from editing import EditOptions, Editor, EditRequest, VarModel
from var_core.cpu_linear import prepack


def picture(size: int, seed: int) -> np.ndarray:
    """A smooth picture with some structure, uint8 (size, size, 3)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size] / size
    channels = [np.sin(xx * f + p) * np.cos(yy * g + q) for f, g, p, q in rng.uniform(1, 8, (3, 4))]
    return ((np.stack(channels, -1) + 1) * 127.5).astype(np.uint8)


def requests(size: int, n: int = 8) -> list[EditRequest]:
    out = []
    for i in range(n):
        mask = np.zeros((size, size), np.uint8)
        x0, y0 = (i * size) // (2 * n), ((n - i) * size) // (2 * n)
        side = size // 3 + (i % 3) * size // 16
        mask[y0 : y0 + side, x0 : x0 + side] = 255
        out.append(EditRequest("inpaint", picture(size, i), mask, options=EditOptions(seed=100 + i)))
    return out


def editor(name: str) -> Editor:
    if name == "demo":
        return Editor.from_pretrained("demo", device="cpu")
    torch.manual_seed(0)
    vqvae = var_core.VQVAE().eval().requires_grad_(False)
    var = var_core.VAR(depth=16, patch_nums=vqvae.schedule).eval().requires_grad_(False)
    prepack(var)  # as loading does on the CPU
    return Editor(
        VarModel(vqvae, var), device="cpu", defaults=EditOptions(cfg=1.5, top_k=900, top_p=0.96), name="d16-random"
    )


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", default="demo,d16")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {args.threads} threads, CPU, {args.repeats} repeats, medians")
    print("| model | 8 single calls (s) | one call with 8 (s) | ratio batched / singles |")
    print("|---|---|---|---|")
    for name in args.models.split(","):
        ed = editor(name)
        reqs = requests(ed.resolution)
        ed.run(reqs[:2])  # warm-up: allocator, encodings of the first pictures
        singles, batched = [], []
        for _ in range(args.repeats):
            t = time.perf_counter()
            one_by_one = [ed.run([r])[0] for r in reqs]
            singles.append(time.perf_counter() - t)
            t = time.perf_counter()
            together = ed.run(reqs)
            batched.append(time.perf_counter() - t)
            for a, b in zip(one_by_one, together, strict=True):
                assert np.array_equal(np.asarray(a.images[0]), np.asarray(b.images[0])), "batching changed a picture"
        s, b = statistics.median(singles), statistics.median(batched)
        print(f"| {ed.name} ({ed.resolution} px) | {s:.2f} | {b:.2f} | {b / s:.2f}x |", flush=True)


if __name__ == "__main__":
    main()
