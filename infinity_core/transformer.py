"""The Infinity transformer: text path, shared AdaLN, cosine self-attention with 2-D RoPE,
cross-attention to the text, level embedding and the bit-label head.

Shapes: R rows (prompts; with CFG the conditional rows then the unconditional ones), C width,
Ct text width (2048 for flan-T5-XL), d bits per token; a scale of grid (h, w) is h*w tokens.
Key names are upstream's, except that the blocks are `blocks.{i}` (files nest them in chunks:
`block_chunks.{c}.module.{j}`, see `loading.py`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .schedules import Schedule, rope_positions


@dataclass
class TextContext:
    """The text conditioning of R rows, computed once per run by `Infinity.text_context`.

    cond: (R, C) pooled text (start token and AdaLN condition); gss: (R, 1, 6, C) shared AdaLN output;
    tokens: (R, L, C) per-token text for cross-attention; key_mask: (R, L) bool, True on real tokens
    (None when every row has L tokens); kv: each block's cross-attention keys and values of the text,
    each (R, H, L, c) as `CrossAttention.text_kv` gives them, computed once per run (upstream recomputes
    the same values at every scale).
    """

    cond: torch.Tensor
    gss: torch.Tensor
    tokens: torch.Tensor
    key_mask: torch.Tensor | None
    kv: list[tuple[torch.Tensor, torch.Tensor]]


def _attend_text(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, key_mask: torch.Tensor | None, scale: float
) -> torch.Tensor:
    """q (R, H, Lq, c), k and v (R, H, L, c) from `text_kv` -> (R, Lq, H*c) attention over each row's real text
    tokens.

    Upstream hands float32 inputs to flash-attn as bfloat16 and reads its bfloat16 output back as
    float32: the same two roundings here (k and v were rounded by `text_kv`), so float32 runs give
    upstream's numbers.
    """
    low = q.dtype == torch.float32
    if low:
        q = q.to(torch.bfloat16).float()
    mask = None if key_mask is None else key_mask[:, None, None, :]
    out = F.scaled_dot_product_attention(q, k.to(q.dtype), v.to(q.dtype), attn_mask=mask, scale=scale)
    if low:
        out = out.to(torch.bfloat16).float()
    return out.transpose(1, 2).flatten(2)


class CrossAttention(nn.Module):
    """Queries from the image tokens (or one learned query per head when pooling), K/V from the text."""

    def __init__(self, width: int, kv_width: int, heads: int, pool: bool = False):
        super().__init__()
        self.heads, self.head_dim = heads, width // heads
        if pool:
            self.mat_q = nn.Parameter(torch.zeros(1, heads, self.head_dim))
        else:
            self.mat_q = nn.Linear(width, width)
        self.mat_kv = nn.Linear(kv_width, 2 * width, bias=False)
        self.v_bias = nn.Parameter(torch.zeros(width))
        self.register_buffer("zero_k_bias", torch.zeros(width))
        self.proj = nn.Linear(width, width)

    def text_kv(self, text: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(R, L, Ct) text -> keys and values, each (R, H, L, c); float32 ones rounded through bfloat16, as
        upstream's flash-attn call reads them."""
        R, L, _ = text.shape
        kv = F.linear(text, self.mat_kv.weight, torch.cat((self.zero_k_bias, self.v_bias)))
        if kv.dtype == torch.float32:
            kv = kv.to(torch.bfloat16).float()
        k, v = kv.view(R, L, 2, self.heads, self.head_dim).permute(2, 0, 3, 1, 4).unbind(0)
        return k.contiguous(), v.contiguous()

    def forward(
        self, x: torch.Tensor, kv: tuple[torch.Tensor, torch.Tensor], key_mask: torch.Tensor | None
    ) -> torch.Tensor:
        """x (R, Lq, C), kv: keys and values (R, H, L, c) from `text_kv` -> (R, Lq, C)."""
        R, Lq, _ = x.shape
        q = self.mat_q(x).view(R, Lq, self.heads, self.head_dim).transpose(1, 2)
        out = _attend_text(q, *kv, key_mask, 1 / math.sqrt(self.head_dim))
        return self.proj(out)

    def pool(self, text: torch.Tensor, key_mask: torch.Tensor | None) -> torch.Tensor:
        """text (R, L, Ct) -> (R, C): one learned query per head attends to the text."""
        R = text.shape[0]
        q = self.mat_q.expand(R, -1, -1).unsqueeze(2)
        out = _attend_text(q, *self.text_kv(text), key_mask, 1 / math.sqrt(self.head_dim))
        return self.proj(out).squeeze(1)


class TextAttentivePool(nn.Module):
    def __init__(self, width: int, text_width: int, heads: int):
        super().__init__()
        self.ca = CrossAttention(width, text_width, heads, pool=True)


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """x (..., L, c); cos, sin (L, c) from `rope_tables`: rotate each adjacent channel pair (2m, 2m+1), i.e.
    (cos x0 - sin x1, sin x0 + cos x1), as x * cos + (x1, x0) * (-sin, sin): the same products and sums."""
    swapped = x.float().unflatten(-1, (-1, 2)).flip(-1).flatten(-2).mul_(sin)
    return (x * cos).add_(swapped)


def rope_tables(schedule: Schedule, head_dim: int, device: torch.device | str) -> tuple[torch.Tensor, torch.Tensor]:
    """(tokens, head_dim) cos and sin tables: pair m's angle at columns 2m and 2m+1, the sine negated at 2m. The
    first half of the pairs turn with the row, the second with the column.

    Frequencies 1/10000^(i/(head_dim/2)), i = 0, 2, ...; computed in float32 as upstream.
    """
    half = head_dim // 2
    inv_freq = 1.0 / (10000.0 ** (torch.arange(0, half, 2, dtype=torch.int64).float() / half))
    pos = rope_positions(schedule).float()
    angles = torch.cat((pos[:, :1] * inv_freq, pos[:, 1:] * inv_freq), dim=-1)
    cos, sin = angles.cos(), angles.sin()
    return cos.repeat_interleave(2, -1).to(device), torch.stack((-sin, sin), -1).flatten(-2).to(device)


def linear_with_bias(layer: nn.Module, x: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """The layer's product with another bias (..., in) -> (..., out): an nn.Linear, or a prepacked one (`prepack`)."""
    if isinstance(layer, nn.Linear):
        return F.linear(x, layer.weight, bias)
    return layer(x, bias)


class KVCache:
    """Keys and values of the scales run so far, one pair per block."""

    def __init__(self, depth: int):
        self.k: list[torch.Tensor | None] = [None] * depth
        self.v: list[torch.Tensor | None] = [None] * depth

    def extend(self, i: int, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.k[i] is not None:
            k, v = torch.cat((self.k[i], k), dim=2), torch.cat((self.v[i], v), dim=2)
        self.k[i], self.v[i] = k, v
        return k, v


class SelfAttention(nn.Module):
    """Cosine attention: q, k L2-normalised per head, q scaled by exp(min(scale_mul, ln 100)); softmax scale 1."""

    def __init__(self, width: int, heads: int):
        super().__init__()
        self.heads, self.head_dim = heads, width // heads
        self.scale_mul_1H11 = nn.Parameter(torch.full((1, heads, 1, 1), 4.0).log())
        self.mat_qkv = nn.Linear(width, 3 * width, bias=False)
        self.q_bias, self.v_bias = nn.Parameter(torch.zeros(width)), nn.Parameter(torch.zeros(width))
        self.register_buffer("zero_k_bias", torch.zeros(width))
        self.proj = nn.Linear(width, width)
        self.max_scale_mul = math.log(100)

    def forward(self, x: torch.Tensor, rope: tuple[torch.Tensor, torch.Tensor], cache: KVCache, i: int) -> torch.Tensor:
        """x (R, L, C) of one scale; rope (L, c/2) cos and sin; attends to this and all earlier scales."""
        R, L, C = x.shape
        bias = torch.cat((self.q_bias, self.zero_k_bias, self.v_bias))
        qkv = linear_with_bias(self.mat_qkv, x, bias).view(R, L, 3, self.heads, self.head_dim).permute(2, 0, 3, 1, 4)
        qk = F.normalize(qkv[:2], dim=-1)  # q and k at once, (2, R, H, L, c)
        qk[0].mul_(self.scale_mul_1H11.clamp_max(self.max_scale_mul).exp())
        q, k = apply_rope(qk, *rope).unbind(0)
        k, v = cache.extend(i, k, qkv[2])
        out = F.scaled_dot_product_attention(q, k.to(q.dtype), v.to(q.dtype), scale=1.0)
        return self.proj(out.to(x.dtype).transpose(1, 2).reshape(R, L, C))


class FFN(nn.Module):
    def __init__(self, width: int, hidden: int):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(width, hidden), nn.Linear(hidden, width)
        self.act = nn.GELU(approximate="tanh")  # a module, so that a prepacked fc1 can take it over (`prepack`)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


def _ada_norm(x: torch.Tensor, scale: torch.Tensor, shift: torch.Tensor, eps: float) -> torch.Tensor:
    return F.layer_norm(x.float(), (x.shape[-1],), eps=eps).mul(scale.add(1)).add_(shift)


class Block(nn.Module):
    """Pre-norm block: AdaLN self-attention, cross-attention to the text, AdaLN MLP."""

    def __init__(self, width: int, heads: int, hidden: int, eps: float = 1e-6):
        super().__init__()
        self.eps = eps
        self.ada_gss = nn.Parameter(torch.zeros(1, 1, 6, width))
        self.sa = SelfAttention(width, heads)
        self.ca = CrossAttention(width, width, heads)
        self.ffn = FFN(width, hidden)
        self.ca_norm = nn.LayerNorm(width, eps=eps)

    def forward(self, x: torch.Tensor, text: TextContext, rope, cache: KVCache, i: int) -> torch.Tensor:
        gamma1, gamma2, scale1, scale2, shift1, shift2 = (self.ada_gss + text.gss).unbind(2)
        x = x + self.sa(_ada_norm(x, scale1, shift1, self.eps), rope, cache, i).mul_(gamma1)
        norm = self.ca_norm  # in float32 whatever its weights' precision, as autocast does on CUDA
        normed = F.layer_norm(x.float(), norm.normalized_shape, norm.weight.float(), norm.bias.float(), norm.eps)
        x = x + self.ca(normed, text.kv[i], text.key_mask).float()
        return x + self.ffn(_ada_norm(x, scale2, shift2, self.eps)).mul(gamma2)


class RMSNorm(nn.Module):
    def __init__(self, width: int, eps: float = 1e-6):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(width))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.float()
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True).add_(self.eps)) * self.weight


class AdaLNBeforeHead(nn.Module):
    def __init__(self, width: int, eps: float = 1e-6):
        super().__init__()
        self.eps = eps
        self.ada_lin = nn.Sequential(nn.SiLU(), nn.Linear(width, 2 * width))

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        scale, shift = self.ada_lin(cond).view(-1, 1, 2, x.shape[-1]).unbind(2)
        return _ada_norm(x, scale, shift, self.eps)


class Infinity(nn.Module):
    """The text-to-image transformer; `config` holds what its constructor was given (read off a file's shapes)."""

    def __init__(
        self,
        depth: int,
        embed_dim: int,
        num_heads: int,
        mlp_hidden: int,
        text_channels: int,
        bits: int,
        pool_heads: int,
        text_maxlen: int = 512,
        levels: int = 15,
        block_chunks: int = 1,
    ):
        super().__init__()
        C = embed_dim
        self.config = dict(
            depth=depth, embed_dim=C, num_heads=num_heads, mlp_hidden=mlp_hidden, text_channels=text_channels,
            bits=bits, pool_heads=pool_heads, text_maxlen=text_maxlen, levels=levels, block_chunks=block_chunks,
        )  # fmt: skip
        self.bits, self.head_dim = bits, C // num_heads
        self.compute_dtype = torch.float32  # the blocks' weights; lower ones run under autocast
        self.cfg_uncond = nn.Parameter(torch.zeros(text_maxlen, text_channels))
        self.pos_start = nn.Parameter(torch.zeros(1, 1, C))
        self.text_norm = RMSNorm(text_channels)
        self.text_proj_for_sos = TextAttentivePool(C, text_channels, pool_heads)
        self.text_proj_for_ca = nn.Sequential(nn.Linear(text_channels, C), nn.GELU(approximate="tanh"), nn.Linear(C, C))
        self.lvl_embed = nn.Embedding(levels, C)
        self.word_embed = nn.Linear(bits, C)
        self.shared_ada_lin = nn.Sequential(nn.SiLU(), nn.Linear(C, 6 * C))
        self.blocks = nn.ModuleList(Block(C, num_heads, mlp_hidden) for _ in range(depth))
        self.head_nm = AdaLNBeforeHead(C)
        self.head = nn.Linear(C, 2 * bits)

    def text_context(self, features: torch.Tensor, lengths: torch.Tensor) -> TextContext:
        """features (R, L, Ct) T5 rows (zero past each row's length), lengths (R,) -> the rows' conditioning."""
        L = features.shape[1]
        key_mask = None
        if bool((lengths < L).any()):
            key_mask = torch.arange(L, device=features.device)[None, :] < lengths.to(features.device)[:, None]
        text = self.text_norm(features)
        cond = self.text_proj_for_sos.ca.pool(text, key_mask)
        tokens = self.text_proj_for_ca(text)
        gss = self.shared_ada_lin(cond.float()).float().view(-1, 1, 6, cond.shape[-1])
        kv = [block.ca.text_kv(tokens) for block in self.blocks]
        return TextContext(cond, gss, tokens, key_mask, kv)

    def start_tokens(self, text: TextContext) -> torch.Tensor:
        """(R, 1, C): the input of scale 0, the pooled text plus the learned start position."""
        return text.cond.unsqueeze(1) + self.pos_start

    def embed(self, codes: torch.Tensor) -> torch.Tensor:
        """(R, h*w, d) accumulated codes resampled to a scale -> (R, h*w, C) input tokens."""
        return self.word_embed(codes)

    def hidden(self, x: torch.Tensor, scale: int, text: TextContext, rope, cache: KVCache) -> torch.Tensor:
        """Run every block on one scale's tokens x (R, h*w, C); `rope` is that scale's (cos, sin)."""
        x = x + self.lvl_embed.weight[scale]
        for i, block in enumerate(self.blocks):
            x = block(x, text, rope, cache, i)
        return x

    def logits(self, hidden: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """(R, L, C) hidden, (R, C) pooled text -> (R, L, 2d) float32; columns (2j, 2j+1) are bit j's 0 and 1."""
        with torch.autocast(hidden.device.type, enabled=False):
            return self.head(self.head_nm(hidden.float(), cond.float()))
