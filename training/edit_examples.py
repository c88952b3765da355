"""A picture of what the demo model does to held-out images: in-paint and class-edit rows.

    python -m training.edit_examples --model assets/demo --data data/emoji/val --out assets/demo/edits.png

Each row: the original, the mask (centre box) over it, three in-paint candidates, then the masked
area regenerated as two other classes.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

from editing import EditOptions, Editor
from training.image_folder import load_image_folder


def centre_mask(size: int) -> np.ndarray:
    """uint8 (size, size), 255 over the centre box of half the side."""
    mask = np.zeros((size, size), np.uint8)
    mask[size // 4 : 3 * size // 4, size // 4 : 3 * size // 4] = 255
    return mask


def overlay(picture: Image.Image, mask: np.ndarray) -> Image.Image:
    """The picture with the masked area tinted."""
    a = np.asarray(picture).astype(np.float32)
    m = mask[..., None] > 0
    return Image.fromarray(np.where(m, a * 0.5 + np.array([255, 0, 128]) * 0.5, a).astype(np.uint8))


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="assets/demo")
    p.add_argument("--data", default="data/emoji/val")
    p.add_argument("--out", default="assets/demo/edits.png")
    p.add_argument("--rows", type=int, default=6)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    editor = Editor.from_pretrained(args.model, device="cpu")
    R = editor.resolution
    images, labels, _ = load_image_folder(args.data, R)
    rng = np.random.default_rng(args.seed)
    picks = rng.choice(len(images), args.rows, replace=False)
    mask = centre_mask(R)
    header = ["original", "mask", "in-paint 1", "in-paint 2", "in-paint 3", "class edit", "class edit"]
    pad, top = 4, 14
    sheet = Image.new("RGB", (len(header) * (R + pad) + pad, top + args.rows * (R + pad) + pad), "white")
    draw = ImageDraw.Draw(sheet)
    for c, name in enumerate(header):
        draw.text((pad + c * (R + pad), 1), name, fill="black")
    for r, i in enumerate(picks):
        picture = Image.fromarray(images[i].permute(1, 2, 0).numpy())
        options = EditOptions(seed=args.seed + r, num_samples=3, feather=2)
        inpainted = editor.inpaint(picture, Image.fromarray(mask), options).images
        others = [c for c in range(editor.model.var.num_classes) if c != int(labels[i])]
        targets = rng.choice(others, 2, replace=False)
        edited = [
            editor.edit_class(
                picture, Image.fromarray(mask), int(t), EditOptions(seed=args.seed + r, feather=2)
            ).images[0]
            for t in targets
        ]
        row = [picture, overlay(picture, mask), *inpainted, *edited]
        for c, tile in enumerate(row):
            sheet.paste(tile, (pad + c * (R + pad), top + pad + r * (R + pad)))
    sheet = sheet.resize((sheet.width * 2, sheet.height * 2), Image.NEAREST)
    sheet.save(Path(args.out))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    torch.set_num_threads(2)
    main()
