"""The transformer's linear layers prepacked for inference on the CPU.

A float32 matrix product on the CPU repacks the weight into its kernel's blocked layout on every call; with the few
rows of a run's first scales (1 to 72 tokens) that is a large part of the work. `prepack` does it once, at load:
each block's q/k/v, projection and MLP layers and the logits head then call oneDNN with the weight already in its
layout, and the MLP's first layer applies its GELU in the same call. The products are the same, summed in another
order (a layer within about 1e-6 of nn.Linear, logits within 1e-4; greedy tokens unchanged,
tests/test_cpu_linear.py). Measured with bench/bench_speed.py (docs/speed.md).
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from .transformer import VAR

# oneDNN's names for what follows the product
_ACTIVATIONS = {None: ("none", ""), "gelu_tanh": ("gelu", "tanh")}


class PrepackedLinear(nn.Module):
    """nn.Linear for float32 inference on the CPU, its weight (out, in) held in oneDNN's layout.

    activation: None, or "gelu_tanh" for GELU (tanh approximation) applied to the output in the same call.
    Under bfloat16 autocast (the fast mode) it computes what nn.Linear would there, from a bfloat16 copy of
    the weight made on first use and held in oneDNN's layout too (2.5x F.linear under autocast at 512 rows). The
    state dict holds the plain weight, as nn.Linear's."""

    def __init__(self, linear: nn.Linear, activation: str | None = None):
        super().__init__()
        self.in_features, self.out_features = linear.in_features, linear.out_features
        packed = torch.ops.mkldnn._reorder_linear_weight(linear.weight.detach().contiguous(), 64)
        self.weight = nn.Parameter(packed, requires_grad=False)
        self.bias = linear.bias
        self.activation = activation
        self._attr, self._algorithm = _ACTIVATIONS[activation]
        self._low: torch.Tensor | None = None

    def forward(self, x: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
        """x (..., in) -> (..., out); bias: used instead of the layer's own when given."""
        bias = self.bias if bias is None else bias
        if torch.is_autocast_enabled("cpu"):
            return self._autocast(x, bias)
        rows = x.reshape(-1, self.in_features)
        out = torch.ops.mkldnn._linear_pointwise(rows, self.weight, bias, self._attr, [], self._algorithm)
        return out.view(*x.shape[:-1], self.out_features)

    def _autocast(self, x: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        dtype = torch.get_autocast_dtype("cpu")
        if dtype != torch.bfloat16:
            out = F.linear(x, self.weight.to_dense().to(dtype), bias)
            return out if self.activation is None else F.gelu(out, approximate="tanh")
        if self._low is None:  # bfloat16 prepacked too: AMX / AVX512-BF16 kernels, the GELU in the same call
            self._low = torch.ops.mkldnn._reorder_linear_weight(self.weight.to_dense().to(dtype), 64)
        rows = x.reshape(-1, self.in_features).to(dtype)
        bias = None if bias is None else bias.to(dtype)
        out = torch.ops.mkldnn._linear_pointwise(rows, self._low, bias, self._attr, [], self._algorithm)
        return out.view(*x.shape[:-1], self.out_features)

    def _save_to_state_dict(self, destination: dict, prefix: str, keep_vars: bool) -> None:
        destination[prefix + "weight"] = self.weight.to_dense()
        if self.bias is not None:
            destination[prefix + "bias"] = self.bias if keep_vars else self.bias.detach()


def available() -> bool:
    """Whether this PyTorch has oneDNN's prepacked linear (x86 builds do)."""
    return torch.backends.mkldnn.is_available() and hasattr(torch.ops.mkldnn, "_linear_pointwise")


def prepack(var: VAR) -> bool:
    """Swap, in place, the linear layers of every block and the logits head of a float32 VAR on the CPU for
    `PrepackedLinear` (the MLP's GELU joins its first layer). Returns False, leaving the model as it was, where
    oneDNN is missing or the packed layer does not give nn.Linear's numbers on a probe."""
    head, fc1 = var.head, var.blocks[0].ffn.fc1
    weights = (head.weight, fc1.weight)
    if not available() or var.compute_dtype != torch.float32 or any(w.device.type != "cpu" for w in weights):
        return False
    if any(w.dtype != torch.float32 for w in weights) or isinstance(head, PrepackedLinear):
        return False
    try:
        probe = torch.randn(3, var.C, generator=torch.Generator().manual_seed(0))
        ok = torch.allclose(PrepackedLinear(head)(probe), head(probe), rtol=1e-4, atol=1e-5)
    except RuntimeError:
        ok = False
    if not ok:
        return False
    for block in var.blocks:
        attn, ffn = block.attn, block.ffn
        attn.mat_qkv, attn.proj = PrepackedLinear(attn.mat_qkv), PrepackedLinear(attn.proj)
        ffn.fc1, ffn.act, ffn.fc2 = PrepackedLinear(ffn.fc1, "gelu_tanh"), nn.Identity(), PrepackedLinear(ffn.fc2)
    var.head = PrepackedLinear(head)
    return True
