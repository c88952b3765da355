"""Next-scale sampling: the one loop over scales that generation and every edit share.

At each scale k the transformer predicts logits for the pn_k^2 tokens, guided by CFG, filtered
by top-k/top-p and sampled; an optional `keep` hook then replaces tokens with given ones (this is
how editing teacher-forces the image outside the mask), and f_hat grows by the scale's residual.

`sample_scales` yields after every scale, so a caller can show previews or stop early by
leaving the loop; `sample_fhat` runs it to the end. Rows of one batch may differ in class,
sampling options and random generator: each row's draws come from its own generator, so a row
gives the same tokens alone or beside others.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
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


@dataclass
class ScaleStep:
    """The state after scale k: f_hat (B, Cvae, P, P) float32 and the scale's tokens (B, pn_k^2)."""

    k: int
    f_hat: torch.Tensor
    tokens: torch.Tensor


Generators = torch.Generator | Sequence[torch.Generator] | None


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


def _groups(options: Sequence[SamplingOptions]) -> dict[SamplingOptions, list[int]]:
    """Rows that share sampling options, so their logits are filtered in one call."""
    groups: dict[SamplingOptions, list[int]] = {}
    for row, opt in enumerate(options):
        groups.setdefault(opt, []).append(row)
    return groups


def _draw(
    logits: torch.Tensor,
    opt: SamplingOptions,
    ratio: float,
    codebook: torch.Tensor,
    generators: Sequence[torch.Generator] | torch.Generator | None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Filtered logits (n, l, V) -> sampled tokens (n, l) and their code vectors (n, l, Cvae).

    One generator for all n rows draws them in one call (the original's way); a sequence draws
    each row from its own generator.
    """
    n, length, V = logits.shape
    probs = logits.softmax(-1)
    if isinstance(generators, Sequence):
        idx = torch.stack([torch.multinomial(probs[i], 1, generator=g).view(length) for i, g in enumerate(generators)])
    else:
        idx = torch.multinomial(probs.view(-1, V), 1, generator=generators).view(n, length)
    if not opt.more_smooth:
        return idx, codebook[idx]
    tau = max(0.27 * (1 - ratio * 0.95), 0.005)
    scaled = logits * (1 + ratio)
    if isinstance(generators, Sequence):
        soft = torch.stack([gumbel_soft(scaled[i], tau, g) for i, g in enumerate(generators)])
    else:
        soft = gumbel_soft(scaled, tau, generators)
    return idx, soft @ codebook


@torch.no_grad()
def sample_scales(
    var: VAR,
    vqvae: VQVAE,
    labels: torch.Tensor,
    options: SamplingOptions | Sequence[SamplingOptions] = SamplingOptions(),
    generator: Generators = None,
    keep: KeepHook | None = None,
) -> Iterator[ScaleStep]:
    """Sample one image per label, yielding after every scale.

    labels: (B,) class ids, `var.num_classes` for the unconditional class.
    options: one for all rows, or one per row. generator: one for all rows, or one per row.
    keep: called before each scale's update; tokens it marks kept replace the sampled ones.
    Rows that are unconditional or have cfg 0 run one CFG branch; the others two.
    """
    quant = vqvae.quantize
    B, K = labels.shape[0], var.num_scales
    per_row = [options] * B if isinstance(options, SamplingOptions) else list(options)
    if len(per_row) != B or (isinstance(generator, Sequence) and len(generator) != B):
        raise ValueError("Give one SamplingOptions and one generator per row, or one for all rows.")
    uncond = var.num_classes
    guided = [o.cfg != 0 and int(c) != uncond for o, c in zip(per_row, labels.tolist(), strict=True)]
    guided_rows = torch.tensor([i for i, g in enumerate(guided) if g], dtype=torch.long, device=labels.device)
    G = len(guided_rows)
    # The unconditional branch runs only for guided rows; for the others both branches are equal.
    cond = var.class_emb(torch.cat((labels, labels.new_full((G,), var.num_classes))))
    with var.autocast():
        block_cond = var.block_cond(cond)
    x = var.first_input(cond)
    caches = var.new_cache(B + G, labels.device, var.compute_dtype)
    P = var.patch_nums[-1]
    f_hat = torch.zeros(B, quant.Cvae, P, P, device=labels.device)
    codebook = quant.embedding.weight.float()
    groups = _groups(per_row)
    for k, pn in enumerate(var.patch_nums):
        ratio = k / (K - 1)
        with var.autocast():
            logits = var.step(x, cond, block_cond, caches)
        if G:
            guidance = torch.tensor([opt.cfg * ratio for opt in per_row], device=logits.device)[guided_rows]
            t = guidance.view(G, 1, 1)
            logits[guided_rows] = (1 + t) * logits[guided_rows] - t * logits[B:]
        logits = logits[:B]
        idx = torch.empty(B, pn * pn, dtype=torch.long, device=labels.device)
        h = torch.empty(B, pn * pn, quant.Cvae, device=labels.device)
        for opt, rows in groups.items():
            group = logits if len(rows) == B else logits[rows]
            filtered = filter_top_k_top_p(group, opt.top_k, opt.top_p)
            gens = [generator[i] for i in rows] if isinstance(generator, Sequence) else generator
            idx[rows], h[rows] = _draw(filtered, opt, ratio, codebook, gens)
        kept = keep(k, f_hat) if keep is not None else None
        if kept is not None:
            mask, kept_tokens = kept
            idx = torch.where(mask, kept_tokens, idx)
            h = torch.where(mask.unsqueeze(-1), codebook[kept_tokens], h)
        h = h.transpose(1, 2).reshape(B, quant.Cvae, pn, pn)
        f_hat = f_hat + quant.scale_contribution(h, k)
        yield ScaleStep(k, f_hat, idx)
        if k + 1 < K:
            x = var.next_input(quant.downsample(f_hat, k + 1), k + 1)
            if G:
                x = torch.cat((x, x[guided_rows]))


@torch.no_grad()
def sample_fhat(
    var: VAR,
    vqvae: VQVAE,
    labels: torch.Tensor,
    options: SamplingOptions | Sequence[SamplingOptions] = SamplingOptions(),
    generator: Generators = None,
    keep: KeepHook | None = None,
) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Run `sample_scales` to the end: f_hat (B, Cvae, P, P) float32 and the token maps [(B, pn_k^2)] used."""
    tokens, f_hat = [], None
    for step in sample_scales(var, vqvae, labels, options, generator, keep):
        tokens.append(step.tokens)
        f_hat = step.f_hat
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
