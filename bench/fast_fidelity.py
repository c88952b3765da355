"""What the fast mode trades: the same runs exact and with `SamplingOptions(fast=True)`, same seeds.

    python bench/fast_fidelity.py [--model d16|demo] [--labels 4] [--threads 2] [--fast-float32]

Generation, greedy (top-k 1, cfg 1.5) on a d16-shaped VAR with random weights or sampled with the model's own
settings on the demo model: the share of tokens that agree per scale and the PSNR of the fast picture against
the exact one (images in [-1, 1], peak-to-peak 2). The fast decoder alone (exact tokens) is a row of its own.
On the demo model also centre-box in-paints (a quarter of the area) of its own exact generations: the agreement
among the sampled (masked) tokens, the kept area's
PSNR against the picture's VQVAE reconstruction and the seam (mean absolute colour step, 0..255, across the mask
border after pasting the picture back outside it), exact and fast.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import torch

import var_core
import var_core.sampling
import var_core.vqvae
from editing.masks import scale_masks
from editing.teacher_forcing import encode_source, run_edit
from var_core.cpu_linear import prepack

DEMO = Path(__file__).resolve().parent.parent / "assets" / "demo"


def psnr(a: torch.Tensor, b: torch.Tensor, where: torch.Tensor | None = None) -> float:
    """PSNR of images in [-1, 1], over the pixels where `where` (H, W) is True (all by default)."""
    d = (a - b).square()
    mse = (d.mean() if where is None else d[..., where].mean()).item()
    return math.inf if mse == 0 else 10 * math.log10(4.0 / mse)


def seam(picture: torch.Tensor, edited: torch.Tensor, mask: torch.Tensor) -> float:
    """Mean |colour step| (0..255) between 4-neighbour pixels on both sides of the mask border, after pasting
    `picture` back outside `mask` (H, W) bool."""
    pasted = torch.where(mask, edited, picture) * 127.5
    steps = []
    for dim in (-1, -2):
        a, b = pasted.narrow(dim, 0, pasted.shape[dim] - 1), pasted.narrow(dim, 1, pasted.shape[dim] - 1)
        ma, mb = mask.narrow(dim + 2, 0, mask.shape[dim] - 1), mask.narrow(dim + 2, 1, mask.shape[dim] - 1)
        steps.append((a - b).abs().mean(-3)[ma != mb])
    return torch.cat(steps).mean().item()


def models(name: str) -> tuple[var_core.VQVAE, var_core.VAR, var_core.SamplingOptions]:
    if name == "demo":
        vqvae, var = var_core.load_pair(DEMO / "vae.safetensors", DEMO / "var.safetensors")
        given = json.loads((DEMO / "defaults.json").read_text())
        return vqvae, var, var_core.SamplingOptions(given["cfg"], given["top_k"], given["top_p"])
    torch.manual_seed(0)
    vqvae = var_core.VQVAE().eval().requires_grad_(False)
    var = var_core.VAR(depth=16, patch_nums=vqvae.schedule).eval().requires_grad_(False)
    prepack(var)  # as loading does on the CPU
    return vqvae, var, var_core.SamplingOptions(cfg=1.5, top_k=1, top_p=0.0)


def decode(vqvae: var_core.VQVAE, f_hat: torch.Tensor, fast: bool) -> torch.Tensor:
    return torch.cat([vqvae.decode_fhat(f_hat[i : i + 1], fast=fast) for i in range(len(f_hat))])


def agreement(a: list[torch.Tensor], b: list[torch.Tensor], among: list[torch.Tensor] | None = None) -> str:
    """Per scale, the share of equal tokens (among the positions `among[k]` (pn_k^2,) marks; '-' where none)."""
    shares = []
    for k, (x, y) in enumerate(zip(a, b, strict=True)):
        same = (x == y).view(-1) if among is None else (x == y).view(-1)[among[k].view(-1)]
        shares.append(f"{same.float().mean().item():.3f}" if same.numel() else "-")
    return ", ".join(shares)


@torch.inference_mode()
def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="d16", choices=("d16", "demo"))
    p.add_argument("--labels", type=int, default=4, help="pictures: classes 0, 1, ... and the unconditional one")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument(
        "--fast-float32",
        action="store_true",
        help="the fast mode as on hardware without fast bfloat16 (float32, the last two scales' pruning alone)",
    )
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.fast_float32:
        var_core.sampling.fast_dtype = var_core.vqvae.fast_dtype = lambda device: None
    vqvae, var, exact = models(args.model)
    fast = var_core.SamplingOptions(exact.cfg, exact.top_k, exact.top_p, exact.more_smooth, fast=True)
    n = min(args.labels - 1, var.num_classes)
    labels = torch.tensor([*range(n), var.num_classes])

    def seeded() -> list[torch.Generator]:
        return [torch.Generator().manual_seed(i) for i in range(len(labels))]

    f_exact, t_exact = var_core.sample_fhat(var, vqvae, labels, exact, seeded())
    f_fast, t_fast = var_core.sample_fhat(var, vqvae, labels, fast, seeded())
    pictures = decode(vqvae, f_exact, False)
    print(f"model {args.model}, labels {labels.tolist()}, {exact}, {torch.get_num_threads()} threads\n")
    print("| generation | tokens agreeing, scales 0..K-1 | PSNR of each picture (dB) |\n|---|---|---|")
    scores = ", ".join(f"{psnr(a, b):.1f}" for a, b in zip(pictures, decode(vqvae, f_exact, True), strict=True))
    print(f"| fast decoder alone | all | {scores} |")
    scores = ", ".join(f"{psnr(a, b):.1f}" for a, b in zip(pictures, decode(vqvae, f_fast, True), strict=True))
    print(f"| fast mode | {agreement(t_exact, t_fast)} | {scores} |")
    if args.model != "demo":
        return
    R = vqvae.image_size
    box = torch.zeros(R, R)
    box[R // 4 : 3 * R // 4, R // 4 : 3 * R // 4] = 1
    inside = box.bool()
    regenerate = scale_masks(box, var.patch_nums)
    print("\n| in-paint of picture | sampled tokens agreeing, scales 0..K-1 | kept PSNR exact / fast ", end="")
    print("| seam exact / fast |")
    print("|---|---|---|---|")
    for i, picture in enumerate(pictures):
        source = encode_source(vqvae, picture[None])
        reconstruction = vqvae.decode_fhat(vqvae.quantize.tokens_to_fhat(source.tokens))[0]
        u = torch.tensor([var.num_classes])
        runs = []
        for options in (exact, fast):
            g = torch.Generator().manual_seed(100 + i)
            f_hat, tokens = run_edit(var, vqvae, u, options, source, regenerate, generator=g)
            runs.append((tokens, vqvae.decode_fhat(f_hat, fast=options.fast)[0]))
        (ta, ea), (tb, eb) = runs
        kept = f"{psnr(ea, reconstruction, ~inside):.1f} / {psnr(eb, reconstruction, ~inside):.1f}"
        seams = f"{seam(picture, ea, inside):.1f} / {seam(picture, eb, inside):.1f}"
        print(f"| {i} | {agreement(ta, tb, regenerate)} | {kept} | {seams} |")


if __name__ == "__main__":
    main()
