"""VAR (next-scale prediction) and its multi-scale VQVAE, number for number the original.

image -> `VQVAE.encode` -> token maps -> `sample_fhat` (teacher-forced where kept) -> `VQVAE.decode_fhat` -> image
"""

from .loading import CheckpointError, describe, load_pair, load_var, load_vqvae, read_checkpoint, save_checkpoint
from .sampling import KeepHook, SamplingOptions, ScaleStep, generate, sample_fhat, sample_scales
from .schedule import Schedule
from .transformer import VAR
from .vqvae import PATCH_NUMS_256, PATCH_NUMS_512, VQVAE

__all__ = [
    "CheckpointError",
    "KeepHook",
    "PATCH_NUMS_256",
    "PATCH_NUMS_512",
    "SamplingOptions",
    "ScaleStep",
    "Schedule",
    "VAR",
    "VQVAE",
    "describe",
    "generate",
    "load_pair",
    "load_var",
    "load_vqvae",
    "read_checkpoint",
    "sample_fhat",
    "sample_scales",
    "save_checkpoint",
]
