"""Measure a VQVAE + VAR pair on the held-out split and draw a per-class sample grid.

    python -m training.evaluate --model assets/demo --data data/emoji --classifier runs/classifier.pt --out assets/demo

Reads `<model>/vae.safetensors` and `<model>/var.safetensors`; writes `<out>/metrics.json` (VQVAE
reconstruction PSNR, classifier accuracy on real val images, classifier accuracy on class-conditional
samples for each tried sampling setting, the best setting) and `<out>/samples.png` (one row per class).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import torch
from PIL import Image

from training.classifier import accuracy, classify, load_classifier
from training.image_folder import load_image_folder
from training.train_vqvae import evaluate_psnr
from var_core import VAR, VQVAE, SamplingOptions, generate, load_var, load_vqvae


@torch.no_grad()
def sample_per_class(
    var: VAR, vqvae: VQVAE, per_class: int, options: SamplingOptions, seed: int, batch_size: int = 90
) -> tuple[torch.Tensor, torch.Tensor]:
    """`per_class` samples of every class -> (images (N, 3, H, W) float in [0, 1], labels (N,)), class-major."""
    labels = torch.arange(var.num_classes).repeat_interleave(per_class)
    gen = torch.Generator().manual_seed(seed)
    images = torch.cat([generate(var, vqvae, chunk, options, gen) for chunk in labels.split(batch_size)])
    return images, labels


def sample_grid(images: torch.Tensor, rows: int, cols: int, pad: int = 2) -> Image.Image:
    """Class-major images (rows * per_class, 3, H, W) in [0, 1] -> a grid of the first `cols` of every row."""
    per_class = images.shape[0] // rows
    _, _, h, w = images.shape
    grid = torch.ones(3, rows * (h + pad) + pad, cols * (w + pad) + pad)
    for r in range(rows):
        for c in range(cols):
            y, x = pad + r * (h + pad), pad + c * (w + pad)
            grid[:, y : y + h, x : x + w] = images[r * per_class + c]
    array = grid.mul(255).round().byte().permute(1, 2, 0).numpy()
    return Image.fromarray(array)


def evaluate(args: argparse.Namespace) -> dict[str, Any]:
    """Run all measurements; returns the metrics dict that is also written to `<out>/metrics.json`."""
    torch.set_num_threads(args.threads)
    model_dir, out = Path(args.model), Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    vqvae = load_vqvae(model_dir / "vae.safetensors")
    var = load_var(model_dir / "var.safetensors", vqvae)
    classifier, class_names = load_classifier(args.classifier)
    if len(class_names) != var.num_classes:
        raise ValueError(f"classifier has {len(class_names)} classes, VAR has {var.num_classes}")
    x_val, y_val, val_names = load_image_folder(Path(args.data) / "val", vqvae.image_size)
    if val_names != class_names:
        raise ValueError(f"val classes {val_names} differ from the classifier's {class_names}")

    psnr, used, recon = evaluate_psnr(vqvae, x_val)
    real_acc, real_bal = accuracy(classifier, x_val, y_val)
    recon_acc, _ = accuracy(classifier, recon, y_val)
    print(
        f"VQVAE val PSNR {psnr:.2f} dB (codebook used {used:.2f}); classifier on real val: "
        f"{real_acc:.3f} (class-balanced {real_bal:.3f}), on their VQVAE reconstructions: {recon_acc:.3f}"
    )

    settings, best, best_images = [], None, None
    for cfg in args.cfg:
        options = SamplingOptions(cfg=cfg, top_k=args.top_k, top_p=args.top_p, more_smooth=args.more_smooth)
        start = time.perf_counter()
        images, labels = sample_per_class(var, vqvae, args.per_class, options, args.seed)
        correct = (classify(classifier, images) == labels).float()
        per_class = [correct[labels == c].mean().item() for c in range(var.num_classes)]
        row = {
            "cfg": cfg,
            "top_k": args.top_k,
            "top_p": args.top_p,
            "more_smooth": args.more_smooth,
            "sample_accuracy": round(correct.mean().item(), 4),
            "per_class_accuracy": dict(zip(class_names, (round(a, 3) for a in per_class), strict=True)),
            "seconds": round(time.perf_counter() - start, 1),
        }
        settings.append(row)
        print(
            f"cfg {cfg}, top_k {args.top_k}, top_p {args.top_p}: sample accuracy {row['sample_accuracy']:.3f} "
            f"({row['seconds']} s)"
        )
        if best is None or row["sample_accuracy"] > best["sample_accuracy"]:
            best, best_images = row, images

    sample_grid(best_images, var.num_classes, min(args.grid_cols, args.per_class)).save(out / "samples.png")
    metrics = {
        "vqvae_val_psnr_db": round(psnr, 3),
        "vqvae_val_codebook_used_fraction": round(used, 4),
        "classifier_val_accuracy_real": round(real_acc, 4),
        "classifier_val_balanced_accuracy_real": round(real_bal, 4),
        "classifier_val_accuracy_reconstructed": round(recon_acc, 4),
        "sample_accuracy": best["sample_accuracy"],
        "best_sampling": {k: best[k] for k in ("cfg", "top_k", "top_p", "more_smooth")},
        "samples_per_class": args.per_class,
        "seed": args.seed,
        "sampling_settings_tried": settings,
        "class_names": class_names,
        "val_images": len(y_val),
    }
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    print(
        f"best: cfg {best['cfg']} -> sample accuracy {best['sample_accuracy']:.3f} vs real {real_acc:.3f}; "
        f"wrote {out / 'metrics.json'} and {out / 'samples.png'}"
    )
    return metrics


def main(argv: list[str] | None = None) -> None:
    """Command-line entry point."""
    p = argparse.ArgumentParser(description="Evaluate the demo VQVAE + VAR")
    p.add_argument("--model", default="assets/demo", help="folder with vae.safetensors and var.safetensors")
    p.add_argument("--data", default="data/emoji", help="dataset with a val/ split")
    p.add_argument("--classifier", default="runs/classifier.pt")
    p.add_argument("--out", default="assets/demo")
    p.add_argument("--per-class", type=int, default=50)
    p.add_argument("--cfg", type=float, nargs="+", default=[1.5, 3.0, 4.0], help="guidance strengths to try")
    p.add_argument("--top-k", type=int, default=100)
    p.add_argument("--top-p", type=float, default=0.95)
    p.add_argument("--more-smooth", action="store_true")
    p.add_argument("--grid-cols", type=int, default=12)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2)
    evaluate(p.parse_args(argv))


if __name__ == "__main__":
    main()
