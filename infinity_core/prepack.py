"""The transformer's per-scale linear layers held in oneDNN's layout on the CPU (var_core's `PrepackedLinear`).

A float32 matrix product on the CPU repacks its weight on every call; Infinity calls each block's layers once per
scale, with few rows at the first scales, so packing once at load saves that work (and the MLP's GELU joins its
first layer's call). The products are summed in another order: within float rounding of nn.Linear's.
"""

from __future__ import annotations

import torch
from torch import nn

from var_core.cpu_linear import PrepackedLinear, available

from .transformer import Infinity


def _gives_linears_numbers(layer: nn.Linear) -> bool:
    probe = torch.randn(3, layer.in_features, generator=torch.Generator().manual_seed(0))
    try:
        return torch.allclose(PrepackedLinear(layer)(probe), layer(probe), rtol=1e-4, atol=1e-5)
    except RuntimeError:
        return False


def prepack(model: Infinity) -> bool:
    """Swap, in place, the per-scale linear layers of a float32 Infinity on the CPU (each block's self-attention
    q/k/v and projection, cross-attention query and projection, MLP; the input embedding and the head) for
    `PrepackedLinear`. Returns False, leaving the model as it was, where oneDNN is missing, the model is not a
    float32 CPU one, it is prepacked already, or a packed layer does not give nn.Linear's numbers on a probe."""
    head = model.head
    if not available() or model.compute_dtype != torch.float32 or not isinstance(head, nn.Linear):
        return False
    if head.weight.device.type != "cpu" or head.weight.dtype != torch.float32 or not _gives_linears_numbers(head):
        return False
    for block in model.blocks:
        sa, ca, ffn = block.sa, block.ca, block.ffn
        sa.mat_qkv, sa.proj = PrepackedLinear(sa.mat_qkv), PrepackedLinear(sa.proj)
        ca.mat_q, ca.proj = PrepackedLinear(ca.mat_q), PrepackedLinear(ca.proj)
        ffn.fc1, ffn.act, ffn.fc2 = PrepackedLinear(ffn.fc1, "gelu_tanh"), nn.Identity(), PrepackedLinear(ffn.fc2)
    model.word_embed, model.head = PrepackedLinear(model.word_embed), PrepackedLinear(head)
    return True
