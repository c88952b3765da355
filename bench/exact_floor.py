"""How far the exact (float32) path is from this machine's limits: its linear layers per scale and its decoder
against a roofline measured here.

    python bench/exact_floor.py --threads 1 --clock cpu     # a shared machine: CPU time of one thread
    python bench/exact_floor.py --threads 2                  # a quiet machine: wall clock, the bench's threads

Measured in one process on a d16-shaped VAR (random weights, prepacked as loading does) and the 256 px VQVAE:
the float32 matrix-product rate (2048x2048), the rate at which the blocks' weights are read (a sum over all of
them: 0.8 GB), the prepacked linear layers of all 16 blocks (q/k/v, projection, MLP with its GELU) at each scale's
row count of a class-conditional generation (two CFG rows per token), and one decode beside one 256 px 160-channel
3x3 convolution. A scale's roofline is max(weight bytes / read rate, FLOPs / product rate): no float32 kernel can
beat it, so "above roofline" is the most any exact change to the linear layers could win; the decoder's line says
the same for its convolutions (its FLOPs at the convolution's own rate).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import var_core  # noqa: E402
from var_core.cpu_linear import prepack  # noqa: E402

DECODER_GFLOP = 351.8  # one 256 px decode, torch.utils.flop_counter (docs/speed.md)


def timer(clock: str) -> Callable[[Callable[[], object], int], float]:
    """A function timing `fn` `n` times (after one warm-up) -> the median seconds, by wall or thread CPU time."""
    now = time.thread_time if clock == "cpu" else time.perf_counter

    def run(fn: Callable[[], object], n: int) -> float:
        fn()
        times = []
        for _ in range(n):
            t = now()
            fn()
            times.append(now() - t)
        return sorted(times)[len(times) // 2]

    return run


def block_layers(var: var_core.VAR) -> list[torch.nn.Module]:
    """Every block's linear layers, in the order a block calls them."""
    return [layer for b in var.blocks for layer in (b.attn.mat_qkv, b.attn.proj, b.ffn.fc1, b.ffn.fc2)]


def linear_pass(layers: list[torch.nn.Module], rows: int) -> Callable[[], object]:
    """One call of every layer on `rows` random rows of its input width."""
    xs = {width: torch.randn(rows, width) for width in {layer.in_features for layer in layers}}
    return lambda: [layer(xs[layer.in_features]) for layer in layers]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--clock", choices=("wall", "cpu"), default="wall", help="cpu: thread CPU time (one thread only)")
    p.add_argument("--repeats", type=int, default=5)
    args = p.parse_args(argv)
    if args.clock == "cpu" and args.threads != 1:
        p.error("--clock cpu measures one thread: use --threads 1")
    torch.set_num_threads(args.threads)
    run = timer(args.clock)
    torch.manual_seed(0)
    var = var_core.VAR(depth=16).eval().requires_grad_(False)
    vqvae = var_core.VQVAE().eval().requires_grad_(False)
    params = sum(layer.weight.numel() for layer in block_layers(var))
    gbytes = params * 4 / 1e9

    with torch.inference_mode():
        a = torch.randn(2048, 2048)
        rate = 2 * 2048**3 / run(lambda: a @ a, args.repeats) / 1e9
        read = gbytes / run(lambda: [layer.weight.sum() for layer in block_layers(var)], args.repeats)  # plain yet
        prepack(var)
        layers = block_layers(var)
        print(f"load average {os.getloadavg()[0]:.1f}, {args.threads} thread(s), {args.clock} clock")
        print(
            f"float32 matrix product: {rate:.0f} GFLOP/s; reading the blocks' weights ({gbytes:.2f} GB): "
            f"{read:.1f} GB/s\n"
        )
        conv = torch.nn.Conv2d(160, 160, 3, padding=1).to(memory_format=torch.channels_last)
        x = torch.randn(1, 160, 256, 256).contiguous(memory_format=torch.channels_last)
        conv_rate = 2 * 160 * 160 * 9 * 256 * 256 / run(lambda: conv(x), args.repeats) / 1e9
        f_hat = torch.randn(1, vqvae.Cvae, 16, 16)
        decode = run(lambda: vqvae.decode_fhat(f_hat), max(3, args.repeats // 2))
        print(
            f"decode: {decode * 1e3:.0f} ms for {DECODER_GFLOP} GFLOP = {DECODER_GFLOP / decode:.0f} GFLOP/s; one "
            f"256 px 160-channel 3x3 convolution {conv_rate:.0f} GFLOP/s: the decode at that rate "
            f"{DECODER_GFLOP / conv_rate * 1e3:.0f} ms ({DECODER_GFLOP / conv_rate / decode:.0%} of its time)\n"
        )
        sys.stdout.flush()
        print("| scale | rows | GFLOP | linear ms | roofline ms | bound | share of roofline |")
        print("|---|---|---|---|---|---|---|")
        spent = floor = 0.0
        for k, pn in enumerate(var.patch_nums):
            rows = 2 * pn * pn
            seconds = run(linear_pass(layers, rows), max(3, args.repeats // 2))
            gflop = 2 * rows * params / 1e9
            roof = max(gbytes / read, gflop / rate)
            bound = "weights" if gbytes / read > gflop / rate else "products"
            spent, floor = spent + seconds, floor + roof
            print(
                f"| {k} ({pn}x{pn}) | {rows} | {gflop:.1f} | {seconds * 1e3:.0f} | {roof * 1e3:.0f} | {bound} | "
                f"{roof / seconds:.0%} |"
            )
        print(f"| all | - | - | {spent * 1e3:.0f} | {floor * 1e3:.0f} | - | {floor / spent:.0%} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
