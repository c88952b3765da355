"""Every model a studio or script can load by name: the bundled demo, the published ones and model folders.

list_models(models_dir)  -> demo, d16 ... d36, then each folder of models_dir with a checkpoint pair,
                            with resolution, bytes on disk (or to download) and whether it is here
load_listed("d16", models_dir, download=True)  -> Editor, for a listed name only
fetch_listed("d16")      -> download what a published model lacks (before the old model is dropped)
free_memory()            -> give back what dropped models held (host and device caches)
"""

from __future__ import annotations

import gc
from dataclasses import dataclass
from pathlib import Path

import torch

import var_core
from var_core import CheckpointError
from var_core.zoo import ZOO, Progress, catalog, fetch, format_size
from var_core.zoo import models_dir as default_models_dir

from .editor import Editor, _find_pair
from .resources import demo_dir

__all__ = ["ModelEntry", "fetch_listed", "format_size", "free_memory", "list_models", "load_listed", "model_folders"]


@dataclass(frozen=True)
class ModelEntry:
    """A loadable model: `name` is what to load it by; `size` is bytes on disk when `present`, else to download."""

    name: str
    kind: str  # "demo", "published" or "folder"
    resolution: int | None  # None: the files could not be read
    size: int
    present: bool


_resolutions: dict[tuple[str, float, float], int | None] = {}


def folder_resolution(folder: Path) -> int | None:
    """A model folder's picture size read off its checkpoints (memory-mapped, nothing built); None if unreadable."""
    try:
        vae_path, var_path = _find_pair(folder)
        key = (str(folder.resolve()), vae_path.stat().st_mtime, var_path.stat().st_mtime)
    except (OSError, ValueError):
        return None
    if key not in _resolutions:
        try:
            vae = var_core.describe(var_core.read_checkpoint(vae_path)[0])
            var = var_core.describe(var_core.read_checkpoint(var_path)[0])
            _resolutions[key] = var["patch_nums"][-1] * vae["downsample"]
        except (ValueError, KeyError, OSError):
            _resolutions[key] = None
    return _resolutions[key]


def _folder_bytes(folder: Path) -> int:
    try:
        return sum(p.stat().st_size for p in _find_pair(folder))
    except (OSError, ValueError):
        return 0


def model_folders(models_dir: str | Path | None = None) -> list[Path]:
    """The folders of models_dir (default: the models folder) holding a vae*/var* checkpoint pair, by name;
    names taken by the demo or a published model are skipped."""
    root = Path(models_dir) if models_dir is not None else default_models_dir()
    if not root.is_dir():
        return []
    found = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        if folder.name == "demo" or folder.name in ZOO:
            continue
        try:
            _find_pair(folder)
        except (OSError, ValueError):
            continue
        found.append(folder)
    return found


def list_models(models_dir: str | Path | None = None) -> list[ModelEntry]:
    """demo, the published models, then the model folders of models_dir; reads no weights and asks no network."""
    demo = demo_dir()
    entries = [ModelEntry("demo", "demo", folder_resolution(demo), _folder_bytes(demo), True)]
    for card in catalog():
        size = sum(f.size for f in card.files) if card.present else card.download_bytes
        entries.append(ModelEntry(card.name, "published", card.resolution, size, card.present))
    for folder in model_folders(models_dir):
        entries.append(ModelEntry(folder.name, "folder", folder_resolution(folder), _folder_bytes(folder), True))
    return entries


def load_listed(
    name: str,
    models_dir: str | Path | None = None,
    device: str | None = None,
    dtype: str | torch.dtype | None = None,
    download: bool = True,
    offline: bool | None = None,
    progress: Progress | None = None,
) -> Editor:
    """The Editor of a model `list_models(models_dir)` lists, by its name; any other name is refused in one
    sentence that names no server path. A published model's missing files are fetched when download=True."""
    if name == "demo" or name in ZOO:
        return Editor.from_pretrained(name, device, dtype, download=download, offline=offline, progress=progress)
    folders = {folder.name: folder for folder in model_folders(models_dir)}
    if name not in folders:
        raise CheckpointError(f"No model named {name!r} is listed; pick one of {', '.join(['demo', *ZOO, *folders])}.")
    return Editor.from_pretrained(folders[name], device, dtype)


def fetch_listed(name: str, offline: bool | None = None, progress: Progress | None = None) -> None:
    """Download what a listed published model lacks (nothing for the demo and model folders), so that
    loading it needs no network; offline (or HF_HUB_OFFLINE=1) never touches the network."""
    if name in ZOO:
        fetch(name, offline, progress)


def free_memory() -> None:
    """Collect dropped models now and return cached device memory, so the next load has the room."""
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
