"""What the fast mode trades: the exact path against `fast_decode`, greedy, on a d16-shaped VAR with random weights.

    python bench/fast_fidelity.py [--model d16|demo] [--labels 4] [--threads 2]

Per picture: greedy token agreement per scale (fast vs exact) and the PSNR of the decoded picture (images in
[-1, 1], peak-to-peak 2), plus the decode times. For comparison, a candidate that was measured and not offered:
the transformer in bfloat16 at the last scale only ("bf16 last scale"), which moves tokens.
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import torch

import var_core

DEMO = Path(__file__).resolve().parent.parent / "assets" / "demo"


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    mse = (a - b).square().mean().item()
    return math.inf if mse == 0 else 10 * math.log10(4.0 / mse)


def models(name: str) -> tuple[var_core.VQVAE, var_core.VAR]:
    if name == "demo":
        return var_core.load_pair(DEMO / "vae.safetensors", DEMO / "var.safetensors")
    torch.manual_seed(0)
    vqvae = var_core.VQVAE().eval().requires_grad_(False)
    return vqvae, var_core.VAR(depth=16, patch_nums=vqvae.schedule).eval().requires_grad_(False)


def timed(fn):
    t = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t


@torch.inference_mode()
def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="d16", choices=("d16", "demo"))
    p.add_argument("--labels", type=int, default=4, help="pictures: classes 0, 1, ... and the unconditional one")
    p.add_argument("--threads", type=int, default=None)
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    vqvae, var = models(args.model)
    n = min(args.labels - 1, var.num_classes)
    labels = torch.tensor([*range(n), var.num_classes])
    greedy = var_core.SamplingOptions(cfg=1.5, top_k=1, top_p=0.0)
    f_hat, tokens = var_core.sample_fhat(var, vqvae, labels, greedy)
    vqvae.decode_fhat(f_hat[:1])  # warm-up
    exact, t_exact = timed(lambda: torch.cat([vqvae.decode_fhat(f_hat[i : i + 1]) for i in range(len(labels))]))
    fast, t_fast = timed(
        lambda: torch.cat([vqvae.decode_fhat(f_hat[i : i + 1], fast=True) for i in range(len(labels))])
    )
    threads = torch.get_num_threads()
    print(f"model {args.model}, labels {labels.tolist()}, greedy cfg 1.5, {threads} threads")
    print("| mode | greedy tokens agreeing, per scale | PSNR of the picture (dB) | decode s/picture |")
    print("|---|---|---|---|")
    print(f"| exact | all | - | {t_exact / len(labels):.2f} |")
    agree = "all (the sampler does not change)"
    scores = ", ".join(f"{psnr(exact[i], fast[i]):.1f}" for i in range(len(labels)))
    print(f"| fast_decode | {agree} | {scores} | {t_fast / len(labels):.2f} |")

    step = var.step
    last = var.num_scales - 1

    def bf16_last(x, cond, caches, select=None):
        if caches[0].end + x.shape[1] == var.L:  # the last scale
            with torch.autocast(x.device.type, dtype=torch.bfloat16):
                return step(x, cond, caches, select).float()
        return step(x, cond, caches, select)

    var.step = bf16_last
    try:
        f_alt, alt = var_core.sample_fhat(var, vqvae, labels, greedy)
    finally:
        var.step = step
    per_scale = [(a == b).float().mean().item() for a, b in zip(tokens, alt, strict=True)]
    image = torch.cat([vqvae.decode_fhat(f_alt[i : i + 1]) for i in range(len(labels))])
    scores = ", ".join(f"{psnr(exact[i], image[i]):.1f}" for i in range(len(labels)))
    print(f"| bf16 last scale (not offered) | scale {last}: {per_scale[last]:.3f}, others 1 | {scores} | - |")


if __name__ == "__main__":
    main()
