"""A fine-tuning data set: a folder with one sub-folder of pictures per class, read with every guard a user needs.

    data = load_class_folder("my_pictures", size=64)   # my_pictures/cat/*.png, my_pictures/dog/*.jpg, ...
    data.images (N, 3, 64, 64) uint8, data.labels (N,), data.class_names, data.counts, data.skipped

The sub-folder names are the classes (sorted); a `classes.json` beside them may give display names, either as
{"folder": "Name"} or as a list of {"slug": "folder", "name": "Name"}. Pictures that cannot be read are skipped
and counted; pictures of another size are centre-cropped to square and resized to the model's, and that is said
once. Every refusal is a `DataError` whose message is one sentence.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from training.image_folder import IMAGE_SUFFIXES, to_rgb_on_white


class DataError(ValueError):
    """A data folder that cannot be trained on; the message is one sentence saying what to do."""


@dataclass
class ClassFolder:
    """Pictures in memory: images uint8 (N, 3, S, S), labels int64 (N,) indexing class_names."""

    images: torch.Tensor
    labels: torch.Tensor
    class_names: list[str]  # display names, index order
    folders: list[str]  # the sub-folder names, index order
    skipped: list[str] = field(default_factory=list)  # unreadable files, relative to the data folder
    resized: int = 0  # pictures that had another size

    @property
    def counts(self) -> dict[str, int]:
        """Pictures per class, by display name."""
        per = torch.bincount(self.labels, minlength=len(self.class_names)).tolist()
        return dict(zip(self.class_names, per, strict=True))


def display_names(root: Path, folders: list[str]) -> list[str]:
    """The classes' display names from `root/classes.json` where it names a folder, else the folder names."""
    path = root / "classes.json"
    if not path.is_file():
        return list(folders)
    try:
        given = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise DataError(f"{path} is not valid JSON ({e}); fix it or remove it to use the folder names.") from e
    if isinstance(given, list):
        given = {c.get("slug"): c.get("name") for c in given if isinstance(c, dict)}
    if not isinstance(given, dict):
        raise DataError(f'{path} should map folder names to display names, e.g. {{"cat": "Cat"}}.')
    return [str(given.get(f) or f) for f in folders]


def _square(img: Image.Image, size: int) -> Image.Image:
    """Centre-crop to a square and resize to (size, size)."""
    w, h = img.size
    if w != h:
        s = min(w, h)
        img = img.crop(((w - s) // 2, (h - s) // 2, (w - s) // 2 + s, (h - s) // 2 + s))
    return img.resize((size, size), Image.Resampling.LANCZOS) if img.size != (size, size) else img


def load_class_folder(root: str | Path, size: int, say: Callable[[str], None] = print) -> ClassFolder:
    """Read every picture under `root/<class>/` at `size` x `size` (RGB, transparency on white).

    say: receives the one-line notes (pictures skipped, pictures resized)."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"There is no folder {root}: give a folder with one sub-folder of pictures per class.")
    folders = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not folders:
        raise DataError(
            f"{root} has no class sub-folders: put the pictures of each class in a folder of its own "
            f"({root}/cats/*.png, {root}/dogs/*.png, ...)."
        )
    arrays: list[np.ndarray] = []
    labels: list[int] = []
    skipped: list[str] = []
    resized = 0
    empty = []
    for index, name in enumerate(folders):
        found = 0
        for path in sorted((root / name).iterdir()):
            if path.suffix.lower() not in IMAGE_SUFFIXES:
                continue
            try:
                with Image.open(path) as img:
                    rgb = to_rgb_on_white(img)
            except (OSError, UnidentifiedImageError, ValueError, Image.DecompressionBombError):
                skipped.append(str(path.relative_to(root)))
                continue
            if rgb.size != (size, size):
                resized += 1
                rgb = _square(rgb, size)
            arrays.append(np.asarray(rgb, dtype=np.uint8))
            labels.append(index)
            found += 1
        if not found:
            empty.append(name)
    if skipped:
        say(f"Skipped {len(skipped)} picture(s) that could not be read, e.g. {skipped[0]}.")
    if not arrays:
        raise DataError(f"{root} holds no readable pictures (png, jpg, webp, ...) in its class sub-folders.")
    if empty:
        raise DataError(
            f"The class folder(s) {', '.join(empty)} of {root} hold no readable pictures: add some or remove them."
        )
    if len(folders) < 2:
        raise DataError(
            f"{root} has only one class ({folders[0]}): a class-conditional model needs two or more class "
            "sub-folders to tell them apart."
        )
    if resized:
        say(f"{resized} picture(s) were not {size}x{size}: they were centre-cropped to square and resized to it.")
    images = torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).contiguous()
    return ClassFolder(
        images, torch.tensor(labels, dtype=torch.int64), display_names(root, folders), folders, skipped, resized
    )
