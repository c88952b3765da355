"""Next-scale sampling: the one loop over scales that generation and every edit share.

At each scale k the transformer predicts logits for the pn_k^2 tokens, guided by CFG, filtered
by top-k/top-p and sampled; an optional `keep` hook then replaces tokens with given ones (this is
how editing teacher-forces the image outside the mask), and f_hat grows by the scale's residual.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import torch

from .transformer import VAR
from .vqvae import VQVAE


@dataclass(frozen=True)
class SamplingOptions:
    """cfg: guidance strength (ramped from 0 at scale 0 to cfg at the last); top_k 0 / top_p 0 disable."""

    cfg: float = 1.5
    top_k: int = 900
    top_p: float = 0.96
    more_smooth: bool = False


class KeepHook(Protocol):
    def __call__(self, k: int, f_hat: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor] | None:
        """Scale k, f_hat (B, Cvae, P, P) accumulated before k -> (keep, tokens), both (B, pn_k^2), or None."""


ScaleCallback = Callable[[int, torch.Tensor, torch.Tensor], None]


def filter_top_k_top_p(logits: torch.Tensor, top_k: int, top_p: float) -> torch.Tensor:
    """Logits (..., V) -> logits with removed entries set to -inf (in place)."""
    V = logits.shape[-1]
    if 0 < top_k < V:
        kth = logits.topk(top_k, dim=-1, sorted=False).values.amin(dim=-1, keepdim=True)
        logits.masked_fill_(logits < kth, -torch.inf)
    if top_p > 0:
        sorted_logits, sorted_idx = logits.sort(dim=-1, descending=False)
        remove = sorted_logits.softmax(dim=-1).cumsum_(dim=-1) <= (1 - top_p)
        remove[..., -1:] = False
        logits.masked_fill_(remove.scatter(-1, sorted_idx, remove), -torch.inf)
    return logits


def gumbel_soft(logits: torch.Tensor, tau: float, generator: torch.Generator | None) -> torch.Tensor:
    """Soft Gumbel-softmax sample over the last dim, drawing noise from `generator`."""
    noise = -torch.empty_like(logits).exponential_(generator=generator).log()
    return ((logits + noise) / tau).softmax(dim=-1)


@torch.no_grad()
def sample_fhat(
    var: VAR,
    vqvae: VQVAE,
    labels: torch.Tensor,
    options: SamplingOptions = SamplingOptions(),
    generator: torch.Generator | None = None,
    keep: KeepHook | None = None,
    on_scale: ScaleCallback | None = None,
) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Sample one image per label.

    labels: (B,) class ids, `var.num_classes` for the unconditional class.
    keep: called before each scale's update; tokens it marks kept replace the sampled ones.
    on_scale: called after each scale with (k, f_hat (B, Cvae, P, P), tokens of scale k (B, pn_k^2)).
    Returns f_hat (B, Cvae, P, P) float32 and the token maps [(B, pn_k^2)] actually used.
    """
    quant = vqvae.quantize
    B, K = labels.shape[0], var.num_scales
    uncond = labels.new_full((B,), var.num_classes)
    # When every row is unconditional both CFG halves are equal and guidance is a no-op.
    two_branch = options.cfg != 0 and not bool((labels == var.num_classes).all())
    cond = var.class_emb(torch.cat((labels, uncond)) if two_branch else labels)
    rows = cond.shape[0]
    with var.autocast():
        block_cond = var.block_cond(cond)
    x = var.first_input(cond)
    caches = var.new_cache(rows, labels.device, var.compute_dtype)
    P = var.patch_nums[-1]
    f_hat = torch.zeros(B, quant.Cvae, P, P, device=labels.device)
    codebook = quant.embedding.weight.float()
    tokens = []
    for k, pn in enumerate(var.patch_nums):
        ratio = k / (K - 1)
        with var.autocast():
            logits = var.step(x, cond, block_cond, caches)
        if two_branch:
            t = options.cfg * ratio
            logits = (1 + t) * logits[:B] - t * logits[B:]
        logits = filter_top_k_top_p(logits, options.top_k, options.top_p)
        idx = torch.multinomial(logits.softmax(-1).view(-1, logits.shape[-1]), 1, generator=generator).view(B, -1)
        if options.more_smooth:
            tau = max(0.27 * (1 - ratio * 0.95), 0.005)
            h = gumbel_soft(logits * (1 + ratio), tau, generator) @ codebook
        else:
            h = codebook[idx]
        kept = keep(k, f_hat) if keep is not None else None
        if kept is not None:
            mask, kept_tokens = kept
            idx = torch.where(mask, kept_tokens, idx)
            h = torch.where(mask.unsqueeze(-1), codebook[kept_tokens], h)
        h = h.transpose(1, 2).reshape(B, quant.Cvae, pn, pn)
        f_hat = f_hat + quant.scale_contribution(h, k)
        tokens.append(idx)
        if on_scale is not None:
            on_scale(k, f_hat, idx)
        if k + 1 < K:
            x = var.next_input(quant.downsample(f_hat, k + 1), k + 1)
            if two_branch:
                x = x.repeat(2, 1, 1)
    return f_hat, tokens


@torch.no_grad()
def generate(
    var: VAR,
    vqvae: VQVAE,
    labels: torch.Tensor,
    options: SamplingOptions = SamplingOptions(),
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Class-conditional generation: labels (B,) -> images (B, 3, H, W) in [0, 1]."""
    f_hat, _ = sample_fhat(var, vqvae, labels, options, generator)
    return vqvae.decode_fhat(f_hat).add(1).mul(0.5)
