"""Sampling, one scale at a time: a generator that yields after every scale.

`scales(...)` prepares the text conditioning, then for each scale of the schedule runs the
transformer on that scale's tokens (with a KV cache of the earlier ones), mixes the conditional and
unconditional logits (CFG on logits, the same value at every scale, as upstream's `gen_one_img`),
draws every bit, lets an optional keep hook replace them (teacher forcing) and accumulates the codes.
A caller can stop iterating between scales; `decode` turns the last step's codes into pictures.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch

from .schedules import Schedule
from .text import TextBatch
from .transformer import Infinity, KVCache, TextContext, rope_tables
from .vae import BSQVAE, resize_trilinear

KeepHook = Callable[[int, torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class SamplingOptions:
    """cfg: guidance on logits (1 = none); tau: temperature (> 0); top_k (0 = off, 1 = greedy bits) and
    top_p (0 = off) apply to each bit's two logits."""

    cfg: float = 3.0
    tau: float = 0.5
    top_k: int = 0
    top_p: float = 0.0


@dataclass
class ScaleStep:
    """One scale's outcome. bits: (B, h, w, d) int64 bits used (after the keep hook);
    raw_logits: (R, h*w, 2d) head output before tau and CFG (R = 2B with CFG: conditional rows first; R = B
    where guidance would mix each row with itself, see `prefill`);
    summed_codes: (B, d, H, W) float32 sum of the codes of scales 0..index on the last grid."""

    index: int
    grid: tuple[int, int]
    bits: torch.Tensor
    raw_logits: torch.Tensor
    summed_codes: torch.Tensor


def unconditional(model: Infinity, cond: TextBatch) -> TextBatch:
    """Each prompt's rows replaced by the first rows of the learned `cfg_uncond` (same lengths), as upstream."""
    L = cond.features.shape[1]
    rows = model.cfg_uncond[:L].to(cond.features).expand(cond.features.shape[0], -1, -1)
    keep = torch.arange(L, device=rows.device)[None, :, None] < cond.lengths.to(rows.device)[:, None, None]
    return TextBatch(torch.where(keep, rows, torch.zeros_like(rows)), cond.lengths)


def prefill(model: Infinity, cond: TextBatch, negative: TextBatch | None, cfg: float) -> TextContext:
    """The text conditioning of all rows: the prompts, then (when cfg != 1) the negative or unconditional rows.

    Where every row's other text is its prompt (an empty prompt in-paints with the unconditional rows on both
    sides), the rows are run once: guidance then mixes each row's logits with themselves (`mix_logits`), the
    numbers the doubled batch gives, for half the work."""
    if cfg == 1:
        return model.text_context(cond.features, cond.lengths)
    other = negative if negative is not None else unconditional(model, cond)
    if torch.equal(other.lengths.to(cond.lengths.device), cond.lengths) and torch.equal(
        other.features.to(cond.features), cond.features
    ):
        return model.text_context(cond.features, cond.lengths)
    L = max(cond.features.shape[1], other.features.shape[1])
    features = torch.cat((_pad(cond.features, L), _pad(other.features.to(cond.features), L)))
    return model.text_context(features, torch.cat((cond.lengths, other.lengths.to(cond.lengths.device))))


def _pad(x: torch.Tensor, L: int) -> torch.Tensor:
    return torch.nn.functional.pad(x, (0, 0, 0, L - x.shape[1]))


def mix_logits(raw: torch.Tensor, batch: int, cfg: float, tau: float) -> torch.Tensor:
    """(R, L, 2d) raw logits -> (B, L*d, 2): divided by tau, then cfg * cond + (1 - cfg) * uncond (R = 2B), or
    cfg * cond + (1 - cfg) * cond where the rows were run once (R = B, `prefill`)."""
    logits = raw.mul(1 / tau)
    if cfg != 1:
        other = logits[batch:] if logits.shape[0] > batch else logits
        logits = cfg * logits[:batch] + (1 - cfg) * other
    return logits.reshape(batch, -1, 2)


def sample_bits(logits: torch.Tensor, generators: list[torch.Generator], top_k: int, top_p: float) -> torch.Tensor:
    """(B, N, 2) logits -> (B, N) int64 draws, row b from generators[b] (one draw per bit, in order).

    top_k keeps the k largest logits of each pair (1 = greedy); top_p drops the values whose
    cumulated probability, from the least likely up, stays <= 1 - top_p (never the most likely).
    """
    logits = logits.clone()
    if 0 < top_k < logits.shape[-1]:
        kth = logits.topk(top_k, dim=-1).values.amin(dim=-1, keepdim=True)
        logits.masked_fill_(logits < kth, -torch.inf)
    if top_p > 0:
        ordered, order = logits.sort(dim=-1)
        drop = ordered.softmax(dim=-1).cumsum(dim=-1) <= 1 - top_p
        drop[..., -1] = False
        logits.masked_fill_(drop.scatter(-1, order, drop), -torch.inf)
    probs = logits.softmax(dim=-1)
    draws = [
        torch.multinomial(p, 1, replacement=True, generator=g)[:, 0] for p, g in zip(probs, generators, strict=True)
    ]
    return torch.stack(draws)


@dataclass
class _Run:
    """What carries from one scale to the next."""

    text: TextContext
    cache: KVCache
    cos: torch.Tensor
    sin: torch.Tensor
    offsets: list[int]
    tokens: torch.Tensor  # (R, h*w, C): the next scale's input
    summed: torch.Tensor | float


def start(model: Infinity, cond: TextBatch, negative: TextBatch | None, schedule: Schedule, cfg: float) -> _Run:
    """Prefill: the text conditioning, the RoPE tables of the schedule, and scale 0's input (the start tokens)."""
    text = prefill(model, cond, negative, cfg)
    cos, sin = rope_tables(schedule, model.head_dim, text.cond.device)
    return _Run(text, KVCache(len(model.blocks)), cos, sin, schedule.offsets(), model.start_tokens(text), 0.0)


def step(
    model: Infinity,
    vae: BSQVAE,
    run: _Run,
    schedule: Schedule,
    index: int,
    generators: list[torch.Generator],
    options: SamplingOptions,
    keep: KeepHook | None = None,
) -> ScaleStep:
    """Run scale `index`: transformer, CFG, bit draws, keep hook, accumulation; prepares the next input."""
    B = len(generators)
    h, w = schedule.grids[index]
    lo = run.offsets[index]
    rope = (run.cos[lo : lo + h * w], run.sin[lo : lo + h * w])
    hidden = model.hidden(run.tokens, index, run.text, rope, run.cache)
    raw = model.logits(hidden, run.text.cond)
    logits = mix_logits(raw, B, options.cfg, options.tau)
    bits = sample_bits(logits, generators, options.top_k, options.top_p).reshape(B, h, w, -1)
    if keep is not None:
        bits = keep(index, bits)
    run.summed = run.summed + resize_trilinear(vae.codes(bits), schedule.last)
    if index + 1 < len(schedule.grids):
        nxt = resize_trilinear(run.summed, schedule.grids[index + 1])
        tokens = model.embed(nxt.flatten(2).transpose(1, 2))
        run.tokens = tokens.repeat(run.text.cond.shape[0] // B, 1, 1)
    return ScaleStep(index, (h, w), bits, raw, run.summed)


@torch.no_grad()
def scales(
    model: Infinity,
    vae: BSQVAE,
    cond: TextBatch,
    schedule: Schedule,
    generators: list[torch.Generator],
    options: SamplingOptions = SamplingOptions(),
    negative: TextBatch | None = None,
    keep: KeepHook | None = None,
) -> Iterator[ScaleStep]:
    """Yield one `ScaleStep` per scale for B = len(generators) prompts (cond: B rows).

    keep(scale_index, sampled_bits (B, h, w, d)) -> bits to use instead (same shape); None = generation.
    Stopping the iteration early is free: nothing runs past the last step taken.
    """
    if cond.features.shape[0] != len(generators):
        raise ValueError(f"{cond.features.shape[0]} prompts need as many generators, not {len(generators)}.")
    device = cond.features.device
    low = model.compute_dtype != torch.float32
    with torch.autocast(device.type, dtype=model.compute_dtype, enabled=low):
        run = start(model, cond, negative, schedule, options.cfg)
    for index in range(len(schedule.grids)):
        with torch.autocast(device.type, dtype=model.compute_dtype, enabled=low):
            out = step(model, vae, run, schedule, index, generators, options, keep)
        yield out


def generators(seeds: list[int], device: torch.device | str = "cpu") -> list[torch.Generator]:
    """One seeded generator per row, so a row draws the same bits alone or in a batch."""
    out = []
    for seed in seeds:
        g = torch.Generator(device=device)
        g.manual_seed(int(seed))
        out.append(g)
    return out


@torch.no_grad()
def decode(vae: BSQVAE, summed_codes: torch.Tensor) -> torch.Tensor:
    """(B, d, h, w) summed codes -> (B, 3, 16h, 16w) float pictures in [-1, 1]."""
    return vae.decode(summed_codes)
