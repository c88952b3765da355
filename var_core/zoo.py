"""The published checkpoints: names, settings, and where their files are found.

Files are looked up in a models folder ($VAR_MODELS_DIR, default ./models), then in the Hugging
Face cache, and downloaded from `FoundationVision/var` only when asked (download=True).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from .loading import CheckpointError

HF_REPO = "FoundationVision/var"
VQVAE_FILE = "vae_ch160v4096z32.pth"


@dataclass(frozen=True)
class ZooEntry:
    name: str
    var_file: str
    depth: int
    image_size: int


ZOO = {
    e.name: e
    for e in (
        ZooEntry("d16", "var_d16.pth", 16, 256),
        ZooEntry("d20", "var_d20.pth", 20, 256),
        ZooEntry("d24", "var_d24.pth", 24, 256),
        ZooEntry("d30", "var_d30.pth", 30, 256),
        ZooEntry("d36", "var_d36.pth", 36, 512),
    )
}


def models_dir() -> Path:
    return Path(os.environ.get("VAR_MODELS_DIR", "models"))


def find_file(filename: str, download: bool = False) -> Path:
    """Local path of a published file; raises CheckpointError saying where to put it when absent."""
    local = models_dir() / filename
    if local.is_file():
        return local
    try:
        from huggingface_hub import try_to_load_from_cache

        cached = try_to_load_from_cache(HF_REPO, filename)
        if isinstance(cached, str) and Path(cached).is_file():
            return Path(cached)
        if download:
            from huggingface_hub import hf_hub_download

            return Path(hf_hub_download(HF_REPO, filename))
    except ImportError:
        pass
    except OSError as e:
        raise CheckpointError(
            f"Could not download {filename} from {HF_REPO} ({e}); put the file in {local.parent}/."
        ) from e
    raise CheckpointError(
        f"{filename} is not on this machine: put it in {local.parent.resolve()}/ "
        f"(from https://huggingface.co/{HF_REPO}) or allow downloading."
    )


def zoo_files(name: str, download: bool = False) -> tuple[Path, Path]:
    """(VQVAE path, VAR path) of a zoo model such as 'd16'."""
    if name not in ZOO:
        raise CheckpointError(f"Unknown model {name!r}; the published ones are {', '.join(ZOO)}.")
    return find_file(VQVAE_FILE, download), find_file(ZOO[name].var_file, download)


def available(name: str) -> bool:
    """Whether both files of a zoo model are present locally (no download)."""
    try:
        zoo_files(name)
    except CheckpointError:
        return False
    return True
