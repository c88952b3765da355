"""Where and in what precision a model runs: the default device and precision names."""

from __future__ import annotations

import torch

from .errors import EditError

_DTYPES = {
    "float32": torch.float32,
    "fp32": torch.float32,
    "bfloat16": torch.bfloat16,
    "bf16": torch.bfloat16,
    "float16": torch.float16,
    "fp16": torch.float16,
}


def default_device() -> str:
    """cuda, then Apple's mps, then cpu."""
    if torch.cuda.is_available():
        return "cuda"
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return "mps"
    return "cpu"


def dtype_of(name: str | torch.dtype | None, device: str) -> torch.dtype:
    """A precision by name (float32, bfloat16, float16 or their short forms); None: bfloat16 on CUDA, else float32."""
    if isinstance(name, torch.dtype):
        return name
    if name is None:
        return torch.bfloat16 if device.startswith("cuda") else torch.float32
    if name not in _DTYPES:
        raise EditError(f"Unknown precision {name!r}; use float32, bfloat16 or float16.")
    return _DTYPES[name]
