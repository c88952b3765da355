"""Infinity (FoundationVision, CVPR 2025): text-to-image next-scale prediction with a bitwise tokenizer.

prompt -> `TextEncoder` -> `sampling.scales` (one step per scale, optional keep hook) -> `sampling.decode`;
picture -> `BSQVAE.encode_bits` -> per-scale bits (the keep hook's source). Exact to the upstream code.
"""

from .loading import InfinityBundle, area_for_resolution, load_folder, load_text_encoder, load_transformer, load_vae
from .pictures import fit, from_uint8, to_uint8
from .sampling import KeepHook, SamplingOptions, ScaleStep, decode, generators, scales
from .schedules import AREA_CLASSES, TEMPLATES, Schedule, nearest_template, schedule_for, schedule_for_pixels
from .text import TextBatch, TextEncoder
from .transformer import Infinity
from .vae import BSQVAE

__all__ = [
    "AREA_CLASSES",
    "BSQVAE",
    "Infinity",
    "InfinityBundle",
    "KeepHook",
    "SamplingOptions",
    "ScaleStep",
    "Schedule",
    "TEMPLATES",
    "TextBatch",
    "TextEncoder",
    "area_for_resolution",
    "decode",
    "fit",
    "from_uint8",
    "generators",
    "load_folder",
    "load_text_encoder",
    "load_transformer",
    "load_vae",
    "nearest_template",
    "scales",
    "schedule_for",
    "schedule_for_pixels",
    "to_uint8",
]
