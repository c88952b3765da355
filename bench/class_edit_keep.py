"""Class edit that keeps what fits, against today's class edit, on the demo model.

Pictures: the demo model's held-out data is not in the repository, so the sources are the model's
own class-conditional samples (`--per-class` per class, seed `--seed`). Each gets a centred box
(3/4 or 7/8 of the side: the emoji fill the picture, and a smaller box leaves so much of the
outline that today's class edit is itself rarely read as the new class) and is edited to a
randomly chosen *other* class, once per way, with the same generator seed for every way:
- today: every masked token is drawn under the new class;
- keep what fits at threshold t: a masked token keeps the picture's own token where
  log p_class(token) - log p_uncond(token) >= t (`fit` in `run_edit`).
Measures, over the pictures:
- kept PSNR in the mask: the edited picture against the source inside the mask (dB, higher = more of
  the picture kept);
- target accuracy: the share of edited pictures (source pasted back outside the mask) that a
  classifier reads as the target class; source accuracy: the share still read as the source class.
The classifier is a small CNN trained here on a separate set of the demo model's samples
(`--train-per-class` per class, another seed), so it judges "looks like what the model draws for
this class"; its accuracy on the unedited sources is printed as the ceiling. It shares the
generator's idea of each class (no real data to train on), but not its weights or likelihoods.

    python bench/class_edit_keep.py --per-class 16 --train-per-class 100 --thresholds 0 0.5 1
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from editing import Editor
from editing.masks import scale_masks
from editing.teacher_forcing import EncodedImage, TeacherForcing, encode_source
from var_core import VAR, VQVAE, SamplingOptions, sample_fhat


def centre_box(size: int, side: float) -> np.ndarray:
    """(size, size) float32, 1 over the centred square whose side is `side` of the picture's."""
    mask = np.zeros((size, size), np.float32)
    a = round(size * (1 - side) / 2)
    mask[a : size - a, a : size - a] = 1
    return mask


@torch.no_grad()
def samples(var: VAR, vqvae: VQVAE, labels: torch.Tensor, options: SamplingOptions, seed: int) -> torch.Tensor:
    """Class-conditional samples of `labels` (N,) -> images (N, 3, R, R) in [-1, 1], 64 rows at a time."""
    out = []
    for i, part in enumerate(labels.split(64)):
        f_hat, _ = sample_fhat(var, vqvae, part, options, torch.Generator().manual_seed(seed + i))
        out.append(vqvae.decode_fhat(f_hat))
    return torch.cat(out)


@torch.no_grad()
def edit(
    var: VAR,
    vqvae: VQVAE,
    sources: list[EncodedImage],
    targets: torch.Tensor,
    regenerate: list[list[torch.Tensor]],
    options: SamplingOptions,
    fit: float | None,
    seed: int,
) -> torch.Tensor:
    """Class edit of every source to its target (N,), 64 rows at a time, row i drawing from seed + i; fit: the
    keep-what-fits threshold (None = off) -> images (N, 3, R, R) in [-1, 1]."""
    out = []
    for start in range(0, len(sources), 64):
        rows = range(start, min(start + 64, len(sources)))
        keep = TeacherForcing.for_rows(
            vqvae,
            [sources[i] for i in rows],
            [regenerate[i] for i in rows],
            [False] * len(rows),
            "cpu",
            [fit] * len(rows),
        )
        generators = [torch.Generator().manual_seed(seed + i) for i in rows]
        f_hat, _ = sample_fhat(var, vqvae, targets[start : rows.stop], options, generators, keep)
        out.append(vqvae.decode_fhat(f_hat))
    return torch.cat(out)


class Judge(nn.Module):
    """A small CNN: images (N, 3, 64, 64) in [-1, 1] -> class logits (N, C)."""

    def __init__(self, num_classes: int, width: int = 32) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        c_in = 3
        for c_out in (width, 2 * width, 4 * width):
            layers += [nn.Conv2d(c_in, c_out, 3, padding=1), nn.BatchNorm2d(c_out), nn.ReLU(), nn.MaxPool2d(2)]
            c_in = c_out
        self.features = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.head = nn.Linear(c_in, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def train_judge(images: torch.Tensor, labels: torch.Tensor, num_classes: int, epochs: int, seed: int) -> Judge:
    """Train `Judge` on images (N, 3, 64, 64) in [-1, 1] with flips and shifts of up to 4 px (white fill)."""
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    judge = Judge(num_classes)
    optimizer = torch.optim.AdamW(judge.parameters(), lr=3e-3, weight_decay=0.05)
    steps = epochs * -(-len(images) // 32)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=3e-3, total_steps=steps)
    judge.train()
    for _ in range(epochs):
        for idx in torch.randperm(len(images), generator=g).split(32):
            x = images[idx]
            x = torch.where(torch.rand(len(x), 1, 1, 1, generator=g) < 0.5, x.flip(-1), x)
            dx, dy = torch.randint(0, 9, (2,), generator=g).tolist()
            x = F.pad(x, [4] * 4, value=1.0)[..., dy : dy + 64, dx : dx + 64]
            loss = F.cross_entropy(judge(x), labels[idx], label_smoothing=0.1)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
    return judge.eval()


@torch.no_grad()
def classify(judge: Judge, images: torch.Tensor) -> torch.Tensor:
    """Images (N, 3, 64, 64) in [-1, 1] -> predicted classes (N,)."""
    return torch.cat([judge(part).argmax(-1) for part in images.split(256)])


def psnr_inside(a: torch.Tensor, b: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Per-picture PSNR (N,) in dB of images (N, 3, H, W) in [-1, 1] over the pixels where mask (N, H, W) is set."""
    m = mask[:, None].expand_as(a)
    se = ((a - b) * 127.5).square() * m
    mse = se.flatten(1).sum(1) / m.flatten(1).sum(1)
    return 10 * torch.log10(255.0**2 / mse.clamp_min(1e-10))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="demo")
    p.add_argument("--per-class", type=int, default=16, help="source pictures per class")
    p.add_argument("--train-per-class", type=int, default=100, help="classifier training samples per class")
    p.add_argument("--epochs", type=int, default=15)
    p.add_argument("--thresholds", type=float, nargs="+", default=[0.0, 0.5, 1.0])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--json")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    start = time.perf_counter()
    editor = Editor.from_pretrained(args.model, device="cpu")
    vqvae, var, C, R = editor.vqvae, editor.var, editor.var.num_classes, editor.resolution
    d = editor.defaults
    options = SamplingOptions(d.cfg, d.top_k, d.top_p, d.more_smooth)

    train_labels = torch.arange(C).repeat_interleave(args.train_per_class)
    judge = train_judge(samples(var, vqvae, train_labels, options, 10_000 + args.seed), train_labels, C, args.epochs, 0)
    source_labels = torch.arange(C).repeat_interleave(args.per_class)
    sources = samples(var, vqvae, source_labels, options, args.seed)
    ceiling = (classify(judge, sources) == source_labels).float().mean().item()
    seconds = time.perf_counter() - start
    print(f"classifier on the unedited sources (their own class): {ceiling:.3f} ({seconds:.0f} s)", flush=True)

    rng = np.random.default_rng(args.seed)
    targets = (source_labels + torch.from_numpy(rng.integers(1, C, len(source_labels)))) % C
    encoded = [encode_source(vqvae, sources[i : i + 1]) for i in range(len(sources))]
    ways: dict[str, float | None] = {"today": None} | {f"keep what fits, t={t:g}": t for t in args.thresholds}
    results: dict[str, dict[str, float]] = {}
    for case, side in (("box 3/4", 0.75), ("box 7/8", 0.875)):
        masks = torch.from_numpy(np.stack([centre_box(R, side)] * len(sources)))
        regen = [scale_masks(m, var.patch_nums, d.policy) for m in masks]
        for way, fit in ways.items():
            out = edit(var, vqvae, encoded, targets, regen, options, fit, args.seed)
            pasted = torch.where(masks[:, None] > 0.5, out, sources)
            predicted = classify(judge, pasted)
            results[f"{case} | {way}"] = {
                "kept_psnr": psnr_inside(out, sources, masks).mean().item(),
                "target_accuracy": (predicted == targets).float().mean().item(),
                "source_accuracy": (predicted == source_labels).float().mean().item(),
            }
            r = results[f"{case} | {way}"]
            print(
                f"{case} | {way}: kept PSNR {r['kept_psnr']:.2f} dB, target {r['target_accuracy']:.3f}, "
                f"source {r['source_accuracy']:.3f} ({time.perf_counter() - start:.0f} s)",
                flush=True,
            )
    n = len(sources)
    print(f"\n| mask | way | kept PSNR in the mask (dB) | reads as the target | still reads as the source |  ({n})")
    print("|---|---|---|---|---|")
    for key, r in results.items():
        case, way = key.split(" | ")
        print(f"| {case} | {way} | {r['kept_psnr']:.2f} | {r['target_accuracy']:.1%} | {r['source_accuracy']:.1%} |")
    print(f"classifier on the unedited sources: {ceiling:.1%}")
    if args.json:
        Path(args.json).write_text(json.dumps({"ceiling": ceiling, "results": results}, indent=2))


if __name__ == "__main__":
    main()
