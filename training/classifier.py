"""Small CNN that classifies 64x64 emoji images; used to score class-conditional samples.

Train::

    python -m training.classifier train --data data/emoji --out runs/classifier.pt \
        [--epochs 10] [--seed 0] [--threads 1]

Use from other code::

    model, class_names = load_classifier("runs/classifier.pt")
    labels = classify(model, images)  # images: (N, 3, H, W) uint8 0..255 or float 0..1
"""

from __future__ import annotations

import argparse
import itertools
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from training.image_folder import load_image_folder

IMAGE_SIZE = 64


class EmojiClassifier(nn.Module):
    """Four conv-BN-ReLU stages (32x downsampling overall) + global pooling + linear head."""

    def __init__(self, num_classes: int, width: int = 32) -> None:
        super().__init__()
        chans = [3, width, 2 * width, 4 * width, 4 * width]
        layers: list[nn.Module] = []
        for i, (c_in, c_out) in enumerate(itertools.pairwise(chans)):
            layers += [
                nn.Conv2d(c_in, c_out, 3, padding=1, bias=False),
                nn.BatchNorm2d(c_out),
                nn.ReLU(inplace=True),
                nn.MaxPool2d(2) if i < len(chans) - 2 else nn.AdaptiveAvgPool2d(1),
            ]
        self.features = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.Flatten(), nn.Dropout(0.2), nn.Linear(chans[-1], num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map images (N, 3, 64, 64) float in [0, 1] to logits (N, num_classes)."""
        return self.head(self.features(x * 2 - 1))


def to_float01(images: torch.Tensor) -> torch.Tensor:
    """Convert (N, 3, H, W) uint8 0..255 or float 0..1 images to float 0..1 at 64x64."""
    x = images.float() / 255 if images.dtype == torch.uint8 else images.float()
    if x.shape[-2:] != (IMAGE_SIZE, IMAGE_SIZE):
        x = F.interpolate(x, size=(IMAGE_SIZE, IMAGE_SIZE), mode="bilinear", antialias=True)
    return x.clamp(0, 1)


def augment(x: torch.Tensor, generator: torch.Generator, max_shift: int = 4) -> torch.Tensor:
    """Random horizontal flips and translations up to ``max_shift`` px (white fill).

    ``x``: float (N, 3, H, W) in [0, 1]; returns the same shape.
    """
    n, _, h, w = x.shape
    flip = torch.rand(n, generator=generator) < 0.5
    x = torch.where(flip[:, None, None, None], x.flip(-1), x)
    padded = F.pad(x, [max_shift] * 4, value=1.0)
    dx, dy = torch.randint(0, 2 * max_shift + 1, (2, n), generator=generator).tolist()
    return torch.stack([padded[i, :, dy[i] : dy[i] + h, dx[i] : dx[i] + w] for i in range(n)])


@torch.no_grad()
def classify(model: nn.Module, images: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
    """Predict class indices (N,) int64 for images (N, 3, H, W), uint8 0..255 or float 0..1."""
    model.eval()
    device = next(model.parameters()).device
    preds = [model(to_float01(chunk).to(device)).argmax(1).cpu() for chunk in images.split(batch_size)]
    return torch.cat(preds) if preds else torch.empty(0, dtype=torch.int64)


def load_classifier(path: str | Path) -> tuple[EmojiClassifier, list[str]]:
    """Load a checkpoint written by ``train``; returns (model in eval mode, class names)."""
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    model = EmojiClassifier(len(ckpt["class_names"]), width=ckpt["width"])
    model.load_state_dict(ckpt["state_dict"])
    return model.eval(), list(ckpt["class_names"])


def accuracy(model: nn.Module, images: torch.Tensor, labels: torch.Tensor) -> tuple[float, float]:
    """Return (accuracy, class-balanced accuracy) of ``model`` on uint8 ``images``."""
    correct = (classify(model, images) == labels).float()
    per_class = [correct[labels == c].mean() for c in labels.unique()]
    return correct.mean().item(), torch.stack(per_class).mean().item()


def train(args: argparse.Namespace) -> None:
    """Train on ``<data>/train``, report accuracy on ``<data>/val``, save to ``args.out``."""
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    generator = torch.Generator().manual_seed(args.seed)
    data = Path(args.data)
    x_train, y_train, class_names = load_image_folder(data / "train", IMAGE_SIZE)
    x_val, y_val, val_names = load_image_folder(data / "val", IMAGE_SIZE)
    if val_names != class_names:
        raise ValueError(f"train/val classes differ: {class_names} vs {val_names}")
    model = EmojiClassifier(len(class_names), width=args.width)
    n_params = sum(p.numel() for p in model.parameters())
    print(
        f"{len(x_train)} train / {len(x_val)} val images, {len(class_names)} classes, "
        f"{n_params} parameters, {args.threads} thread(s)"
    )

    steps_per_epoch = -(-len(x_train) // args.batch_size)
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.05)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=args.lr, total_steps=args.epochs * steps_per_epoch
    )
    start = time.perf_counter()
    for epoch in range(1, args.epochs + 1):
        model.train()
        order = torch.randperm(len(x_train), generator=generator)
        bar = tqdm(order.split(args.batch_size), desc=f"epoch {epoch}/{args.epochs}")
        for idx in bar:
            x = augment(x_train[idx].float() / 255, generator)
            loss = F.cross_entropy(model(x), y_train[idx], label_smoothing=0.1)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            bar.set_postfix(loss=f"{loss.item():.3f}")
        acc, balanced = accuracy(model, x_val, y_val)
        print(f"epoch {epoch}: val accuracy {acc:.3f} (class-balanced {balanced:.3f})")
    elapsed = time.perf_counter() - start

    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.save(
        {
            "state_dict": model.state_dict(),
            "class_names": class_names,
            "width": args.width,
            "val_accuracy": acc,
            "val_balanced_accuracy": balanced,
        },
        out,
    )
    print(
        f"trained in {elapsed:.0f}s; val accuracy {acc:.3f} (class-balanced {balanced:.3f}), "
        f"chance {y_val.bincount().max().item() / len(y_val):.3f}; saved {out}"
    )


def main(argv: list[str] | None = None) -> None:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description="Emoji category classifier")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("train", help="train and save a classifier checkpoint")
    p.add_argument("--data", default="data/emoji", help="dataset with train/ and val/")
    p.add_argument("--out", default="runs/classifier.pt", help="checkpoint path")
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--width", type=int, default=32, help="channels of the first conv")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    args = parser.parse_args(argv)
    train(args)


if __name__ == "__main__":
    main()
