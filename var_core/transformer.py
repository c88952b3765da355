"""The VAR transformer: next-scale prediction with AdaLN blocks and a pre-allocated KV cache.

One position per token of every scale, L = sum(pn_k^2). Teacher forcing runs all L positions
with a block-causal mask; sampling runs one scale at a time against the KV cache.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from .schedule import Schedule, as_schedule

MAX_SCALE_MUL = math.log(100)


class KVCache:
    """Keys and values of every position seen so far, written in place: (B, H, L, head_dim) each."""

    def __init__(self, batch: int, heads: int, length: int, head_dim: int, device, dtype):
        self.k = torch.empty(batch, heads, length, head_dim, device=device, dtype=dtype)
        self.v = torch.empty_like(self.k)
        self.end = 0

    def append(self, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        start, self.end = self.end, self.end + k.shape[2]
        self.k[:, :, start : self.end] = k
        self.v[:, :, start : self.end] = v
        return self.k[:, :, : self.end], self.v[:, :, : self.end]


class SelfAttention(nn.Module):
    """Multi-head attention on L2-normalised q and k with a learnt per-head temperature."""

    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.heads, self.head_dim = heads, dim // heads
        self.mat_qkv = nn.Linear(dim, 3 * dim, bias=False)
        self.q_bias = nn.Parameter(torch.zeros(dim))
        self.v_bias = nn.Parameter(torch.zeros(dim))
        self.register_buffer("zero_k_bias", torch.zeros(dim))
        self.scale_mul_1H11 = nn.Parameter(torch.full((1, heads, 1, 1), 4.0).log())
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, attn_bias: torch.Tensor | None, cache: KVCache | None) -> torch.Tensor:
        B, L, C = x.shape
        bias = torch.cat((self.q_bias, self.zero_k_bias, self.v_bias))
        qkv = F.linear(x, self.mat_qkv.weight, bias).view(B, L, 3, self.heads, self.head_dim)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)  # each (B, H, L, head_dim)
        scale = self.scale_mul_1H11.clamp_max(MAX_SCALE_MUL).exp()
        q = F.normalize(q, dim=-1).mul(scale).to(v.dtype)
        k = F.normalize(k, dim=-1).to(v.dtype)
        if cache is not None:
            k, v = cache.append(k, v)
        mask = None if attn_bias is None else attn_bias.to(q.dtype)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=1.0)
        return self.proj(out.transpose(1, 2).reshape(B, L, C))


class FFN(nn.Module):
    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.gelu(self.fc1(x), approximate="tanh"))


class AdaLNBlock(nn.Module):
    """x += g1 * attn(LN(x)(1+s1)+b1); x += g2 * ffn(LN(x)(1+s2)+b2), modulation from the class."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float, shared_aln: bool, eps: float = 1e-6):
        super().__init__()
        self.dim, self.eps = dim, eps
        self.attn = SelfAttention(dim, heads)
        self.ffn = FFN(dim, round(dim * mlp_ratio))
        if shared_aln:
            self.ada_gss = nn.Parameter(torch.randn(1, 1, 6, dim) / dim**0.5)
        else:
            self.ada_lin = nn.Sequential(nn.SiLU(), nn.Linear(dim, 6 * dim))

    def forward(self, x: torch.Tensor, cond: torch.Tensor, attn_bias: torch.Tensor | None, cache: KVCache | None):
        """x (B, L, C); cond: SiLU-projected (B, 1, 6, C) if shared AdaLN, else the class embedding (B, C)."""
        if hasattr(self, "ada_gss"):
            mod = self.ada_gss + cond
        else:
            mod = self.ada_lin(cond).view(-1, 1, 6, self.dim)
        gamma1, gamma2, scale1, scale2, shift1, shift2 = mod.unbind(2)
        ln = F.layer_norm(x, (self.dim,), eps=self.eps)
        x = x + self.attn(ln * (1 + scale1) + shift1, attn_bias, cache) * gamma1
        ln = F.layer_norm(x, (self.dim,), eps=self.eps)
        return x + self.ffn(ln * (1 + scale2) + shift2) * gamma2


class AdaLNHead(nn.Module):
    def __init__(self, dim: int, eps: float = 1e-6):
        super().__init__()
        self.dim, self.eps = dim, eps
        self.ada_lin = nn.Sequential(nn.SiLU(), nn.Linear(dim, 2 * dim))

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        scale, shift = self.ada_lin(cond).view(-1, 1, 2, self.dim).unbind(2)
        return F.layer_norm(x, (self.dim,), eps=self.eps) * (1 + scale) + shift


class VAR(nn.Module):
    """Class-conditional next-scale transformer. Defaults are those of VAR-d16."""

    def __init__(
        self,
        vocab_size: int = 4096,
        z_channels: int = 32,
        depth: int = 16,
        embed_dim: int | None = None,
        num_heads: int | None = None,
        num_classes: int = 1000,
        patch_nums: Schedule | tuple[int, ...] = (1, 2, 3, 4, 5, 6, 8, 10, 13, 16),
        shared_aln: bool = False,
        mlp_ratio: float = 4.0,
        norm_eps: float = 1e-6,
    ):
        super().__init__()
        C = embed_dim or 64 * depth
        heads = num_heads or depth
        self.schedule = as_schedule(patch_nums)
        self.config = dict(
            vocab_size=vocab_size,
            z_channels=z_channels,
            depth=depth,
            embed_dim=C,
            num_heads=heads,
            num_classes=num_classes,
            patch_nums=self.schedule.patch_nums,
            shared_aln=shared_aln,
            mlp_ratio=mlp_ratio,
            norm_eps=norm_eps,
        )
        self.C, self.heads, self.num_classes, self.vocab_size = C, heads, num_classes, vocab_size
        self.compute_dtype = torch.float32

        self.word_embed = nn.Linear(z_channels, C)
        self.class_emb = nn.Embedding(num_classes + 1, C)
        self.pos_start = nn.Parameter(torch.zeros(1, self.patch_nums[0] ** 2, C))
        self.pos_1LC = nn.Parameter(torch.zeros(1, self.L, C))
        self.lvl_embed = nn.Embedding(len(self.patch_nums), C)
        if shared_aln:
            self.shared_ada_lin = nn.Sequential(nn.SiLU(), nn.Linear(C, 6 * C))
        self.blocks = nn.ModuleList(AdaLNBlock(C, heads, mlp_ratio, shared_aln, norm_eps) for _ in range(depth))
        self.head_nm = AdaLNHead(C, norm_eps)
        self.head = nn.Linear(C, vocab_size)

        lvl = torch.cat([torch.full((pn * pn,), k) for k, pn in enumerate(self.patch_nums)]).view(1, self.L)
        self.register_buffer("lvl_1L", lvl)
        bias = torch.where(lvl.view(1, self.L, 1) >= lvl.view(1, 1, self.L), 0.0, -torch.inf)
        self.register_buffer("attn_bias_for_masking", bias.view(1, 1, self.L, self.L))
        self.init_weights()

    def init_weights(self, std: float = 0.02) -> None:
        """Random initialisation for training from scratch (truncated normal, zero biases)."""
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=std)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Embedding):
                nn.init.trunc_normal_(m.weight, std=std)
        for p in (self.pos_start, self.pos_1LC):
            nn.init.trunc_normal_(p, std=std)
        depth = len(self.blocks)
        for block in self.blocks:
            block.attn.proj.weight.data.div_(math.sqrt(2 * depth))
            block.ffn.fc2.weight.data.div_(math.sqrt(2 * depth))
        self.head.weight.data.mul_(0.02)

    @property
    def patch_nums(self) -> tuple[int, ...]:
        return self.schedule.patch_nums

    @property
    def L(self) -> int:
        return self.schedule.length

    @property
    def begin_ends(self) -> tuple[tuple[int, int], ...]:
        return self.schedule.begin_ends

    @property
    def num_scales(self) -> int:
        return self.schedule.num_scales

    def autocast(self) -> torch.autocast:
        """Mixed precision in `compute_dtype` (bf16/fp16 on CUDA); a no-op in float32."""
        device = self.head.weight.device.type
        return torch.autocast(device, dtype=self.compute_dtype, enabled=self.compute_dtype != torch.float32)

    def level_positions(self, k: int) -> torch.Tensor:
        """Level + absolute position embeddings of scale k: (1, pn_k^2, C)."""
        b, e = self.begin_ends[k]
        return self.lvl_embed(self.lvl_1L[:, b:e]) + self.pos_1LC[:, b:e]

    def block_cond(self, cond: torch.Tensor) -> torch.Tensor:
        """Class embedding (B, C) -> what every block's AdaLN takes (shared projection for d36-style)."""
        if hasattr(self, "shared_ada_lin"):
            return self.shared_ada_lin(cond).view(-1, 1, 6, self.C)
        return cond

    def first_input(self, cond: torch.Tensor) -> torch.Tensor:
        """The start token of scale 0: (B, 1, C)."""
        return cond.unsqueeze(1) + self.pos_start + self.level_positions(0)

    def next_input(self, latent: torch.Tensor, k: int) -> torch.Tensor:
        """Area-downsampled f_hat (B, Cvae, pn_k, pn_k) -> input tokens of scale k (B, pn_k^2, C)."""
        return self.word_embed(latent.flatten(2).transpose(1, 2)) + self.level_positions(k)

    def logits(self, h: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        return self.head(self.head_nm(h.float(), cond.float())).float()

    def forward(self, label: torch.Tensor, x_BLCv: torch.Tensor) -> torch.Tensor:
        """Teacher forcing: labels (B,), next-scale inputs (B, L - pn_0^2, Cvae) -> logits (B, L, V), float32."""
        cond = self.class_emb(label)
        with self.autocast():
            return self._teacher_forced(cond, x_BLCv)

    def _teacher_forced(self, cond: torch.Tensor, x_BLCv: torch.Tensor) -> torch.Tensor:
        first = self.begin_ends[0][1]
        rest = self.word_embed(x_BLCv.float()) + self.lvl_embed(self.lvl_1L[:, first:]) + self.pos_1LC[:, first:]
        x = torch.cat((self.first_input(cond), rest), dim=1)
        block_cond = self.block_cond(cond)
        for block in self.blocks:
            x = block(x, block_cond, self.attn_bias_for_masking, None)
        return self.logits(x, cond)

    def new_cache(self, batch: int, device, dtype) -> list[KVCache]:
        return [KVCache(batch, self.heads, self.L, self.C // self.heads, device, dtype) for _ in self.blocks]

    def step(self, x: torch.Tensor, cond: torch.Tensor, block_cond: torch.Tensor, caches: list[KVCache]):
        """One scale of sampling: inputs (B, l, C) -> logits (B, l, V), attending to the caches."""
        for block, cache in zip(self.blocks, caches, strict=True):
            x = block(x, block_cond, None, cache)
        return self.logits(x, cond)
