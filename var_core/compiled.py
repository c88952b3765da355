"""An optional compiled per-scale step (`torch.compile`; CUDA graphs on CUDA), as gpt-fast compiles its decode step.

`compile_steps(var)` compiles `VAR.body`, the blocks of one scale but the last, whose shapes are fixed by the scale
and the batch: a graph per scale shape, the KV caches written in place, no host sync. The last block and the head
stay eager, since which positions they run (the sampled ones of an edit) changes from request to request. On CUDA
the mode is "reduce-overhead" (CUDA graphs: a batch-1 d16 scale is ~15 blocks x ~15 kernels, launch-bound
otherwise); elsewhere inductor's default. The first run of each scale shape pays the compilation (minutes on a
CPU); greedy tokens are those of the eager model (tests/test_gpu_ready.py). Off by default.
"""

from __future__ import annotations

import torch

from .cpu_linear import PrepackedLinear
from .transformer import VAR

RECOMPILE_LIMIT = 64  # one graph per scale shape (10-13 scales) and batch size, well under this


def compile_steps(var: VAR, backend: str = "inductor", mode: str | None = None) -> VAR:
    """Compile `var.body` in place (once; a second call changes nothing) and return `var`.

    backend/mode: those of `torch.compile`; mode None picks "reduce-overhead" on CUDA, inductor's default elsewhere.
    The CPU's prepacked linear layers hold oneDNN's opaque tensors, which the compiler cannot trace: load with
    `cpu_prepack=False` to compile on the CPU."""
    if "body" in var.__dict__:
        return var
    if any(isinstance(m, PrepackedLinear) for m in var.modules()):
        raise ValueError("compile_steps needs plain linear layers: load with cpu_prepack=False on the CPU.")
    if mode is None and backend == "inductor":
        mode = "reduce-overhead" if var.head.weight.device.type == "cuda" else "default"
    compiled = torch.compile(var.body, backend=backend, mode=mode, fullgraph=True)

    def body(x: torch.Tensor, mods: list[torch.Tensor], caches: list) -> torch.Tensor:
        with torch._dynamo.config.patch(recompile_limit=RECOMPILE_LIMIT):
            return compiled(x, mods, caches)

    var.body = body  # an instance attribute: `VAR.step` calls it instead of the method
    return var
