"""Edit quality on held-out images: does the kept area survive, and is there a seam?

For centre boxes, random brush strokes and out-painting bands, on the demo model's held-out split:
- kept PSNR: the edited picture before paste-back against the plain VQVAE reconstruction of the
  same input, over the pixels outside the mask (dB, higher = the kept area came back as encoded);
- seam: the mean absolute colour step between 4-neighbour pixel pairs straddling the mask border,
  after a hard paste-back of the original outside the mask (0..255, lower = smoother), next to the
  same number on the untouched original (the natural step);
for the original authors' way (`compat` masks, replayed tokens) and this project's default
(`touch` masks, consistent teacher forcing), and two mixtures that separate the mask rule from
the teacher forcing.

    python bench/edit_quality.py --model assets/demo --data data/emoji/val --images 100
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from common import ROOT, module_from_file
from PIL import Image

from editing import Editor
from editing.canvas import outpaint_canvas
from editing.masks import scale_masks
from editing.teacher_forcing import encode_source, run_edit
from var_core import SamplingOptions

# training/ is the checkout's training code, not part of the installed package: loaded from its file.
load_image_folder = module_from_file("image_folder", ROOT / "training" / "image_folder.py").load_image_folder

WAYS = {
    "compat (replay)": ("compat", True),
    "compat masks, consistent": ("compat", False),
    "touch-all masks, consistent": ("touch-all", False),
    "default (touch, consistent)": ("touch", False),
}


def touch_all(mask: np.ndarray, patch_nums: tuple[int, ...]) -> list[torch.Tensor]:
    """The literal rule, for comparison (not a product option): every cell the mask (>= 0.5) touches, at every
    scale, redrawn -> per-scale regenerate maps [(pn_k^2,) bool]."""
    binary = torch.from_numpy(mask >= 0.5).float()[None, None]
    return [(F.adaptive_max_pool2d(binary, pn)[0, 0] > 0).flatten() for pn in patch_nums]


def regenerate_maps(mask: np.ndarray, patch_nums: tuple[int, ...], policy: str) -> list[torch.Tensor]:
    """A (R, R) float mask's per-scale maps under `policy` ('touch-all' here, the others from editing.masks)."""
    if policy == "touch-all":
        return touch_all(mask, patch_nums)
    return scale_masks(torch.from_numpy(mask), patch_nums, policy)


def centre_box(size: int, rng: np.random.Generator) -> np.ndarray:
    mask = np.zeros((size, size), np.float32)
    a, b = size // 4, 3 * size // 4
    mask[a:b, a:b] = 1
    return mask


def brush_strokes(size: int, rng: np.random.Generator) -> np.ndarray:
    """Two or three random thick strokes, as a person would paint them."""
    mask = np.zeros((size, size), np.float32)
    yy, xx = np.mgrid[0:size, 0:size]
    for _ in range(rng.integers(2, 4)):
        p, q = rng.uniform(0.15, 0.85, 2) * size, rng.uniform(0.15, 0.85, 2) * size
        radius = rng.uniform(0.05, 0.1) * size
        for t in np.linspace(0, 1, 40):
            c = p + t * (q - p)
            mask[(xx - c[0]) ** 2 + (yy - c[1]) ** 2 <= radius**2] = 1
    return mask


def seam_step(image: np.ndarray, mask: np.ndarray) -> float:
    """Mean |colour difference| over 4-neighbour pairs with one pixel inside the mask and one outside."""
    img = image.astype(np.float32)
    m = mask >= 0.5
    steps = []
    for axis in (0, 1):
        a, b = np.swapaxes(img, 0, axis), np.swapaxes(m, 0, axis)
        cross = b[1:] != b[:-1]
        steps.append(np.abs(a[1:] - a[:-1]).mean(-1)[cross])
    return float(np.concatenate(steps).mean())


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float32) - b.astype(np.float32)) ** 2))
    return 10 * np.log10(255.0**2 / max(mse, 1e-10))


def to_uint8(x: torch.Tensor) -> np.ndarray:
    return x.add(1).mul(127.5).round().clamp(0, 255).byte().permute(0, 2, 3, 1).numpy()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="assets/demo")
    p.add_argument("--data", default="data/emoji/val")
    p.add_argument("--images", type=int, default=100)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json")
    args = p.parse_args()
    torch.set_num_threads(2)
    editor = Editor.from_pretrained(args.model, device="cpu")
    vqvae, var = editor.model.vqvae, editor.model.var
    R = editor.resolution
    images, _, _ = load_image_folder(args.data, R)
    rng = np.random.default_rng(args.seed)
    chosen = images[torch.from_numpy(rng.permutation(len(images))[: args.images])]
    options = SamplingOptions(cfg=1.0, top_k=editor.defaults.top_k, top_p=editor.defaults.top_p)
    labels = torch.tensor([var.num_classes])
    rows: dict[str, dict[str, list[float]]] = {}
    for n, picture in enumerate(chosen):
        original = picture.permute(1, 2, 0).numpy()
        cases = {
            "centre box": (original, centre_box(R, rng)),
            "brush strokes": (original, brush_strokes(R, rng)),
        }
        kept = Image.fromarray(original[:, : 3 * R // 4])
        canvas, band = outpaint_canvas(kept, right=R - 3 * R // 4)
        cases["out-paint right 25%"] = (np.asarray(canvas), np.asarray(band, np.float32) / 255)
        for case, (pixels, mask) in cases.items():
            x = torch.from_numpy(pixels.copy()).permute(2, 0, 1)[None].float() / 127.5 - 1
            source = encode_source(vqvae, x)
            recon = to_uint8(vqvae.decode(source.tokens))[0]
            outside = mask < 0.5
            for way, (policy, replay) in WAYS.items():
                regen = regenerate_maps(mask, var.patch_nums, policy)
                g = torch.Generator().manual_seed(args.seed + n)
                f_hat, _ = run_edit(var, vqvae, labels, options, source, regen, replay, g)
                edited = to_uint8(vqvae.decode_fhat(f_hat))[0]
                pasted = np.where(outside[..., None], pixels, edited)
                row = rows.setdefault(f"{case} | {way}", {"kept_psnr": [], "seam": [], "natural": []})
                row["kept_psnr"].append(psnr(edited[outside], recon[outside]))
                row["seam"].append(seam_step(pasted, mask))
                row["natural"].append(seam_step(pixels, mask))
    summary = {k: {m: float(np.mean(v)) for m, v in row.items()} for k, row in rows.items()}
    print(f"| case | way | kept PSNR vs VQ recon (dB) | seam step | natural step |  ({len(chosen)} images)")
    print("|---|---|---|---|---|")
    for key, s in summary.items():
        case, way = key.split(" | ")
        print(f"| {case} | {way} | {s['kept_psnr']:.2f} | {s['seam']:.2f} | {s['natural']:.2f} |")
    if args.json:
        Path(args.json).write_text(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
