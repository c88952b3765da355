"""The VAR transformer: next-scale prediction with AdaLN blocks and a pre-allocated KV cache.

One position per token of every scale, L = sum(pn_k^2). Teacher forcing runs all L positions
with a block-causal mask; sampling runs one scale at a time against the KV cache, with the class
conditioning (every block's AdaLN modulation) computed once per run (`VAR.condition`).
"""

from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from .schedule import Schedule, as_schedule

MAX_SCALE_MUL = math.log(100)
REMEMBERED_ROWS = 16  # rows of conditioning a VAR keeps for repeated label batches (`VAR.condition_labels`)


@dataclass
class Selection:
    """Positions of one scale's batch (R, l) whose outputs are wanted: `flat` (n,) into R * l, `rows` = flat // l."""

    flat: torch.Tensor
    rows: torch.Tensor

    def gather(self, x: torch.Tensor) -> torch.Tensor:
        """(R, l, ...) -> (n, 1, ...): each selected position as a row of length 1."""
        return x.flatten(0, 1)[self.flat].unsqueeze(1)


class KVCache:
    """Keys and values of every position seen so far, written in place: (B, H, L, head_dim) each."""

    def __init__(self, batch: int, heads: int, length: int, head_dim: int, device, dtype):
        self.k = torch.empty(batch, heads, length, head_dim, device=device, dtype=dtype)
        self.v = torch.empty_like(self.k)
        self.end = 0

    def next(self, length: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The next `length` positions' slots (B, H, length, head_dim) for keys and values, to be written in place."""
        start, self.end = self.end, self.end + length
        return self.k[:, :, start : self.end], self.v[:, :, start : self.end]

    def cast(self, dtype: torch.dtype) -> None:
        """Hold the keys and values in `dtype` from now on (those seen so far converted)."""
        self.k, self.v = self.k.to(dtype), self.v.to(dtype)

    def seen(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Keys and values of every position so far: (B, H, end, head_dim) each."""
        return self.k[:, :, : self.end], self.v[:, :, : self.end]


class Linear(nn.Linear):
    """nn.Linear whose bias may be given per call (the attention's q/k/v bias is built from three parameters)."""

    def forward(self, x: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
        return F.linear(x, self.weight, self.bias if bias is None else bias)


class SelfAttention(nn.Module):
    """Multi-head attention on L2-normalised q and k with a learnt per-head temperature."""

    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.heads, self.head_dim = heads, dim // heads
        self.mat_qkv = Linear(dim, 3 * dim, bias=False)
        self.q_bias = nn.Parameter(torch.zeros(dim))
        self.v_bias = nn.Parameter(torch.zeros(dim))
        self.register_buffer("zero_k_bias", torch.zeros(dim))
        self.scale_mul_1H11 = nn.Parameter(torch.full((1, heads, 1, 1), 4.0).log())
        self.proj = nn.Linear(dim, dim)

    def forward(
        self,
        x: torch.Tensor,
        attn_bias: torch.Tensor | None,
        cache: KVCache | None,
        select: Selection | None = None,
    ) -> torch.Tensor:
        """x (B, L, C) -> (B, L, C); with `select`, only those positions' outputs: (n, 1, C)."""
        B, L, C = x.shape
        bias = torch.cat((self.q_bias, self.zero_k_bias, self.v_bias))
        qkv = self.mat_qkv(x, bias).view(B, L, 3, self.heads, self.head_dim)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)  # each (B, H, L, head_dim)
        scale = self.scale_mul_1H11.clamp_max(MAX_SCALE_MUL).exp()
        q = F.normalize(q, dim=-1).mul_(scale).to(v.dtype)
        if cache is None:
            k = F.normalize(k, dim=-1).to(v.dtype)
        else:  # the normalised keys go straight into the cache
            k_slot, v_slot = cache.next(L)
            k_slot.copy_(F.normalize(k, dim=-1))
            v_slot.copy_(v)
            k, v = cache.seen()
        mask = None if attn_bias is None else attn_bias.to(q.dtype)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=1.0).transpose(1, 2)  # (B, L, H, hd)
        out = out.reshape(B, L, C) if select is None else select.gather(out).view(-1, 1, C)
        return self.proj(out)


class FFN(nn.Module):
    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU(approximate="tanh")
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


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

    def modulation(self, cond: torch.Tensor) -> torch.Tensor:
        """cond: SiLU-projected (B, 1, 6, C) if shared AdaLN, else the class embedding (B, C) -> (B, 1, 6, C)."""
        if hasattr(self, "ada_gss"):
            return self.ada_gss + cond
        return self.ada_lin(cond).view(-1, 1, 6, self.dim)

    def forward(
        self,
        x: torch.Tensor,
        mod: torch.Tensor,
        attn_bias: torch.Tensor | None,
        cache: KVCache | None,
        select: Selection | None = None,
    ) -> torch.Tensor:
        """x (B, L, C), mod (B, 1, 6, C) from `modulation` -> (B, L, C).

        With `select` only those positions go on past the attention (the keys and values of all of
        them still enter the cache): -> (n, 1, C). Sampling does this in the last block, whose
        outputs only the logits head reads."""
        gamma1, gamma2, scale1, scale2, shift1, shift2 = mod.unbind(2)  # each (B, 1, C)
        h = self.attn(_modulate(F.layer_norm(x, (self.dim,), eps=self.eps), scale1, shift1), attn_bias, cache, select)
        if select is not None:
            x = select.gather(x)
            gamma1, gamma2, scale2, shift2 = (t[select.rows] for t in (gamma1, gamma2, scale2, shift2))
        x = torch.addcmul(x, h, gamma1)
        h = self.ffn(_modulate(F.layer_norm(x, (self.dim,), eps=self.eps), scale2, shift2))
        return torch.addcmul(x, h, gamma2)


def _modulate(x: torch.Tensor, scale: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    """AdaLN: x * (1 + scale) + shift."""
    return torch.addcmul(shift, x, 1 + scale)


class AdaLNHead(nn.Module):
    def __init__(self, dim: int, eps: float = 1e-6):
        super().__init__()
        self.dim, self.eps = dim, eps
        self.ada_lin = nn.Sequential(nn.SiLU(), nn.Linear(dim, 2 * dim))

    def modulation(self, cond: torch.Tensor) -> torch.Tensor:
        """Class embedding (B, C) -> (B, 1, 2, C): scale, shift."""
        return self.ada_lin(cond).view(-1, 1, 2, self.dim)

    def forward(self, x: torch.Tensor, mod: torch.Tensor) -> torch.Tensor:
        scale, shift = mod.unbind(2)
        return _modulate(F.layer_norm(x, (self.dim,), eps=self.eps), scale, shift)


@dataclass
class Conditioning:
    """What the class labels give every scale: each block's AdaLN modulation (B, 1, 6, C), the head's (B, 1, 2, C)."""

    blocks: list[torch.Tensor]
    head: torch.Tensor


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

    def condition(self, cond: torch.Tensor) -> Conditioning:
        """Class embeddings (B, C) -> every block's and the head's AdaLN modulation (the same at every scale)."""
        shared = self.shared_ada_lin(cond).view(-1, 1, 6, self.C) if hasattr(self, "shared_ada_lin") else cond
        return Conditioning([b.modulation(shared) for b in self.blocks], self.head_nm.modulation(cond.float()))

    def condition_labels(self, labels: torch.Tensor) -> tuple[torch.Tensor, Conditioning]:
        """Class ids (B,) -> their embeddings (B, C) and `condition` of them under `autocast`.

        Without gradients the conditioning of the last few label batches is remembered (at most `REMEMBERED_ROWS`
        rows in all): computing it reads every block's AdaLN weights (0.4 GB for d16, ~45 ms of one core), which
        repeated edits with the same classes then skip. Made again when a conditioning weight changed in place."""
        cond = self.class_emb(labels)
        if torch.is_grad_enabled() or len(labels) > REMEMBERED_ROWS:
            with self.autocast():
                return cond, self.condition(cond)
        version = sum(0 if p.is_inference() else p._version for p in self._conditioning_weights())  # inference: none
        key = (tuple(labels.tolist()), labels.device, self.compute_dtype, version)
        remembered: OrderedDict = self.__dict__.setdefault("_conditioning", OrderedDict())  # not a submodule
        if key not in remembered:
            with self.autocast():
                remembered[key] = self.condition(cond)
            while sum(len(k[0]) for k in remembered) > REMEMBERED_ROWS:
                remembered.popitem(last=False)
        remembered.move_to_end(key)
        return cond, remembered[key]

    def _conditioning_weights(self) -> list[torch.Tensor]:
        """The parameters `condition_labels` reads: the class embedding, the blocks' and the head's AdaLN."""
        modules = [self.class_emb, self.head_nm, *([self.shared_ada_lin] if hasattr(self, "shared_ada_lin") else [])]
        weights = [p for m in modules for p in m.parameters()]
        for b in self.blocks:
            weights += [b.ada_gss] if hasattr(b, "ada_gss") else list(b.ada_lin.parameters())
        return weights

    def first_input(self, cond: torch.Tensor) -> torch.Tensor:
        """The start token of scale 0: (B, 1, C)."""
        return cond.unsqueeze(1) + self.pos_start + self.level_positions(0)

    def next_input(self, latent: torch.Tensor, k: int) -> torch.Tensor:
        """Area-downsampled f_hat (B, Cvae, pn_k, pn_k) -> input tokens of scale k (B, pn_k^2, C)."""
        return self.word_embed(latent.flatten(2).transpose(1, 2)) + self.level_positions(k)

    def logits(self, h: torch.Tensor, head_mod: torch.Tensor) -> torch.Tensor:
        """Last hidden states (B, L, C), head modulation (B, 1, 2, C) -> logits (B, L, V), float32."""
        return self.head(self.head_nm(h.float(), head_mod)).float()

    def forward(self, label: torch.Tensor, x_BLCv: torch.Tensor) -> torch.Tensor:
        """Teacher forcing: labels (B,), next-scale inputs (B, L - pn_0^2, Cvae) -> logits (B, L, V), float32."""
        cond = self.class_emb(label)
        with self.autocast():
            return self._teacher_forced(cond, x_BLCv)

    def _teacher_forced(self, cond: torch.Tensor, x_BLCv: torch.Tensor) -> torch.Tensor:
        first = self.begin_ends[0][1]
        rest = self.word_embed(x_BLCv.float()) + self.lvl_embed(self.lvl_1L[:, first:]) + self.pos_1LC[:, first:]
        x = torch.cat((self.first_input(cond), rest), dim=1)
        conditioning = self.condition(cond)
        for block, mod in zip(self.blocks, conditioning.blocks, strict=True):
            x = block(x, mod, self.attn_bias_for_masking, None)
        return self.logits(x, conditioning.head)

    def new_cache(self, batch: int, device, dtype) -> list[KVCache]:
        return [KVCache(batch, self.heads, self.L, self.C // self.heads, device, dtype) for _ in self.blocks]

    def prefill(self, x: torch.Tensor, cond: Conditioning, caches: list[KVCache]) -> None:
        """The first scales at once, when none of their tokens is sampled: their inputs (B, l_0 + ... + l_p, C), from
        an empty cache -> every block's keys and values of those positions written to the caches. The same sums
        as `step` scale by scale (block-causal mask), with every weight read once instead of once per scale."""
        bias = self.attn_bias_for_masking[:, :, : x.shape[1], : x.shape[1]]
        nothing = torch.zeros(0, dtype=torch.long, device=x.device)
        last = len(self.blocks) - 1
        for i, (block, mod, cache) in enumerate(zip(self.blocks, cond.blocks, caches, strict=True)):
            x = block(x, mod, bias, cache, Selection(nothing, nothing) if i == last else None)

    def step(
        self, x: torch.Tensor, cond: Conditioning, caches: list[KVCache], select: Selection | None = None
    ) -> torch.Tensor:
        """One scale of sampling: inputs (B, l, C) -> logits (B, l, V), attending to the caches.

        select: the positions whose logits are wanted -> logits (n, 1, V); every position still runs
        through all blocks but the attention output and MLP of the last one (their keys and values
        feed the caches and the attention of this very scale)."""
        x = self.body(x, cond.blocks[:-1], caches[:-1])
        x = self.blocks[-1](x, cond.blocks[-1], None, caches[-1], select)
        return self.logits(x, cond.head if select is None else cond.head[select.rows])

    def body(self, x: torch.Tensor, mods: list[torch.Tensor], caches: list[KVCache]) -> torch.Tensor:
        """Every block but the last for one scale: inputs (B, l, C) -> (B, l, C), the caches written. Its shapes are
        fixed by the scale and the batch, so it is the part `var_core.compiled.compile_steps` compiles."""
        for block, mod, cache in zip(self.blocks[:-1], mods, caches, strict=True):
            x = block(x, mod, None, cache)
        return x
