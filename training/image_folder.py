"""Load a class-per-sub-folder image dataset fully into memory."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"})


def to_rgb_on_white(img: Image.Image) -> Image.Image:
    """Convert any PIL image to RGB, alpha-compositing transparent pixels onto white."""
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return img.convert("RGB")


def load_rgb(path: str | Path, size: int) -> Image.Image:
    """Read an image as RGB on white, resized to (size, size) with LANCZOS if needed."""
    with Image.open(path) as img:
        rgb = to_rgb_on_white(img)
    if rgb.size != (size, size):
        rgb = rgb.resize((size, size), Image.Resampling.LANCZOS)
    return rgb


def load_image_folder(root: str | Path, size: int) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
    """Load every image under ``root/<class>/``.

    Classes are the sorted sub-folder names; files are read in sorted order.

    Returns:
        images: uint8 tensor (N, 3, size, size), values 0..255.
        labels: int64 tensor (N,), index into ``class_names``.
        class_names: sorted sub-folder names.
    """
    root = Path(root)
    class_names = sorted(p.name for p in root.iterdir() if p.is_dir())
    if not class_names:
        raise FileNotFoundError(f"no class sub-folders in {root}")
    arrays: list[np.ndarray] = []
    labels: list[int] = []
    for index, name in enumerate(class_names):
        for path in sorted((root / name).iterdir()):
            if path.suffix.lower() in IMAGE_SUFFIXES:
                arrays.append(np.asarray(load_rgb(path, size), dtype=np.uint8))
                labels.append(index)
    if not arrays:
        raise FileNotFoundError(f"no images under {root}")
    images = torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).contiguous()
    return images, torch.tensor(labels, dtype=torch.int64), class_names
