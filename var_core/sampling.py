"""Next-scale sampling: the one loop over scales that generation and every edit share.

At each scale k the transformer predicts logits for the pn_k^2 tokens, guided by CFG, filtered
by top-k/top-p and sampled; an optional `keep` hook then replaces tokens with given ones (this is
how editing teacher-forces the image outside the mask), and f_hat grows by the scale's residual.

Only what the kept tokens need is computed for them: every position runs through the blocks
(its keys and values feed the cache and the attention of its own scale), but the last block's
attention output and MLP, the logits head, CFG, filtering and sampling run for the sampled tokens
alone. Which tokens those are is known before the run (`KeepHook.sampled`), so the loop gathers
them with index tensors built once and never waits on the device. The first scales of an edit where no row
samples anything are known outright (the kept tokens): they run through the transformer in one pass
(`VAR.prefill`), each weight read once for all of them instead of once per scale.

The fast mode (`SamplingOptions.fast`) trades exactness at the last two scales for speed: there the transformer
runs only the positions being sampled, so an edit's cost shrinks with its mask, and in bfloat16 where the
hardware has it fast.

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

from .quantizer import MultiScaleQuantizer
from .transformer import VAR, Selection
from .vqvae import VQVAE, fast_dtype

FAST_SCALES = 2  # the fast mode prunes (and, where it is fast, runs in bfloat16) the last this many scales


@dataclass(frozen=True)
class SamplingOptions:
    """cfg: guidance strength (ramped from 0 at scale 0 to cfg at the last); top_k 0 / top_p 0 disable.

    fast: at the last `FAST_SCALES` scales run the transformer only for the positions some row samples (their kept
    tokens are not attended to), and, where the hardware computes bfloat16 faster than float32 (`fast_dtype`:
    CUDA, CPUs with AVX512-BF16 or AMX), run those scales and the decoder in bfloat16. The coarser scales stay
    exact; the last two move some tokens (bench/fast_fidelity.py). A generation, having nothing kept to leave
    out, is only faster where bfloat16 is."""

    cfg: float = 1.5
    top_k: int = 900
    top_p: float = 0.96
    more_smooth: bool = False
    fast: bool = False


class KeepHook(Protocol):
    def __call__(self, k: int, f_hat: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor] | None:
        """Scale k, f_hat (B, Cvae, P, P) accumulated before k -> (keep, tokens), both (B, pn_k^2), or None."""

    def sampled(self, k: int) -> torch.Tensor | None:
        """Optional: which tokens of scale k are sampled, known before the run: bool (B, pn_k^2) on the CPU, the
        complement of the `keep` map `__call__` gives (None: all). A hook without it gets every token sampled."""

    def fits(
        self, k: int, f_hat: torch.Tensor, cond: torch.Tensor, uncond: torch.Tensor, places: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor] | None:
        """Optional: sampled tokens to keep after all, judged by the guided rows' two CFG branches: cond and uncond
        logits (n_g, V) of scale k's sampled tokens in guided rows, places (n_g,) their flat index into (B * pn_k^2)
        -> (keep, tokens), both (B, pn_k^2), like `__call__`, or None. Called before the draws, which it leaves as
        they are."""


@dataclass
class ScaleStep:
    """The state after scale k: f_hat (B, Cvae, P, P) float32 and the scale's tokens (B, pn_k^2)."""

    k: int
    f_hat: torch.Tensor
    tokens: torch.Tensor


Generators = torch.Generator | Sequence[torch.Generator] | None


def filter_top_k_top_p(logits: torch.Tensor, top_k: int, top_p: float) -> torch.Tensor:
    """Logits (..., V) -> logits with removed entries set to -inf (in place). The original's rule, over the
    whole vocabulary; `top_k_top_p` gives the same survivors from the top-k alone."""
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


def top_k_top_p(logits: torch.Tensor, top_k: int, top_p: float) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Logits (n, V) -> probabilities (n, k) of the top-k in descending order, zero where top-p removes a token,
    and their token ids (n, k); (softmax (n, V), None) when neither filter is on.

    Top-p as the original: remove, in ascending order of probability, the tokens whose cumulative
    probability is <= 1 - top_p, the most likely always staying; it only ever removes from the top-k
    survivors, so sorting those is enough."""
    V = logits.shape[-1]
    k = top_k if 0 < top_k < V else V
    if k == V and top_p <= 0:
        return logits.softmax(-1), None
    values, ids = logits.topk(k, dim=-1)  # descending
    probs = values.softmax(-1)
    if top_p > 0:
        below = probs.flip(-1).cumsum(-1).flip(-1)  # probability of this token and every less likely one
        remove = below <= 1 - top_p
        remove[:, 0] = False
        probs = probs.masked_fill(remove, 0.0)
    return probs, ids


def draw(probs: torch.Tensor, ids: torch.Tensor | None, noise: torch.Tensor) -> torch.Tensor:
    """One token per row: probabilities (n, k) of the token ids (n, k) (None: of every token), Exp(1) noise (n, V)
    drawn for every token id -> (n,).

    The exponential race argmax(p / E) picks a token with its probability (what `torch.multinomial` does inside);
    removed tokens (p = 0) never win. Each token's noise belongs to its id, not to its rank, so a last-bit change
    of the logits (another batch size, amplified by CFG) moves the pick only when two candidates tie in the race,
    not when two logits swap ranks: a row keeps its tokens in any batch (demo model, cfg 10, logits changed by
    1e-6: 1 pick in 614,400 moved, against 30 with inverse-CDF sampling over the sorted survivors)."""
    keyed = noise if ids is None else noise.gather(-1, ids)
    j = (probs / keyed).argmax(-1, keepdim=True)
    return j.squeeze(-1) if ids is None else ids.gather(-1, j).squeeze(-1)


def gumbel_soft(logits: torch.Tensor, tau: float, generator: torch.Generator | None) -> torch.Tensor:
    """Soft Gumbel-softmax sample over the last dim, drawing noise from `generator`."""
    noise = -torch.empty_like(logits).exponential_(generator=generator).log()
    return ((logits + noise) / tau).softmax(dim=-1)


@dataclass
class _Group:
    """Sampled tokens that share sampling options: which of a scale's n sampled tokens they are (None: all),
    their places in the flattened (B * l) token map, and, in their order, the generators drawing them with
    how many tokens each draws (one entry per row, or one for all rows)."""

    options: SamplingOptions
    tokens: torch.Tensor | None
    places: torch.Tensor
    draws: list[tuple[torch.Generator | None, int]]


@dataclass
class _Scale:
    """One scale's n sampled tokens, in (row, position) order. `select`: the positions the head runs for among the
    B + G rows of both CFG branches (None: all, in that order), the n sampled tokens first, then the unconditional
    twins of those in guided rows; `guided` (n_g,): which of the n are guided (None: all n); `t` (n_g, 1): their
    guidance weight cfg * k / (K - 1); `places` (n_g,): the guided ones' flat index into (B * l). `columns`: the
    only positions the transformer runs (None: all); `select` then counts positions among those."""

    n: int
    select: Selection | None
    guided: torch.Tensor | None
    t: torch.Tensor
    groups: list[_Group]
    places: torch.Tensor
    columns: torch.Tensor | None = None


def _plan(
    var: VAR,
    sampled: list[torch.Tensor],
    guided_rows: list[int],
    per_row: list[SamplingOptions],
    generator: Generators,
    device: torch.device,
    pruned_from: int,
) -> list[_Scale]:
    """Per scale: index tensors of the sampled tokens, built on the host from bool maps (B, l) and moved once.
    From scale `pruned_from` on the transformer runs only the positions sampled in some row."""
    B, K, G = len(per_row), var.num_scales, len(guided_rows)
    is_guided = torch.zeros(B, dtype=torch.bool)
    is_guided[guided_rows] = True
    twin = torch.zeros(B, dtype=torch.long)  # row -> its row in the unconditional branch
    twin[guided_rows] = torch.arange(B, B + G)
    groups: dict[SamplingOptions, list[int]] = {}
    for row, opt in enumerate(per_row):
        groups.setdefault(opt, []).append(row)
    plan = []
    for k, (pn, where) in enumerate(zip(var.patch_nums, sampled, strict=True)):
        l = pn * pn  # noqa: E741
        rows, pos = where.nonzero(as_tuple=True)
        flat, n = rows * l + pos, len(rows)
        in_guided = is_guided[rows]
        guided = in_guided.nonzero().view(-1)
        columns, width, column = None, l, pos  # the positions run (None: all), how many, each token's among them
        used = where.any(0)
        if k >= pruned_from and bool(used.any()) and not bool(used.all()):
            columns = used.nonzero().view(-1)
            width, column = len(columns), used.cumsum(0)[pos] - 1
            columns = columns.to(device)
        head = torch.cat((rows * width + column, twin[rows[guided]] * width + column[guided]))
        if len(head) == (B + G) * width:
            select = None
        else:
            select = Selection(head.to(device), (head // width).to(device))
        t = torch.tensor([opt.cfg * (k / (K - 1)) for opt in per_row])[rows[guided]].view(-1, 1)  # cfg * ratio
        counts = torch.bincount(rows, minlength=B).tolist()
        parts = []
        for opt, members in groups.items():
            tokens = torch.isin(rows, torch.tensor(members)).nonzero().view(-1)
            if len(tokens) == 0:
                continue
            if isinstance(generator, Sequence):
                draws = [(generator[r], counts[r]) for r in members if counts[r]]
            else:
                draws = [(generator, len(tokens))]
            every = len(tokens) == n
            parts.append(_Group(opt, None if every else tokens.to(device), flat[tokens].to(device), draws))
        all_guided = len(guided) == n
        places = flat[guided].to(device)
        plan.append(_Scale(n, select, None if all_guided else guided.to(device), t.to(device), parts, places, columns))
    return plan


def _exponential(draws: list[tuple[torch.Generator | None, int]], V: int, device: torch.device) -> torch.Tensor:
    """Exp(1) noise (n, V), one per token id: each generator draws its own tokens' rows, in order."""
    return torch.cat([torch.empty(n, V, device=device).exponential_(generator=g) for g, n in draws])


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
    keep: called before each scale's update; tokens it marks kept replace the sampled ones, and those it
    announces through `keep.sampled` are the only ones the head, filtering and sampling run for; a hook with
    `fits` may keep some of those too, judged by the guided rows' two CFG branches.
    Rows that are unconditional or have cfg 0 run one CFG branch; the others two. The rows must agree on `fast`.
    """
    quant = vqvae.quantize
    B, K, device = labels.shape[0], var.num_scales, labels.device
    per_row = [options] * B if isinstance(options, SamplingOptions) else list(options)
    if len(per_row) != B or (isinstance(generator, Sequence) and len(generator) != B):
        raise ValueError("Give one SamplingOptions and one generator per row, or one for all rows.")
    if len({o.fast for o in per_row}) > 1:
        raise ValueError("Rows of one batch must agree on `fast`: sample fast and exact rows in separate passes.")
    low = fast_dtype(device) if per_row[0].fast else None  # the fast mode's bfloat16, where it is fast
    pruned_from = K - FAST_SCALES if per_row[0].fast else K  # the fast mode runs only sampled positions there
    uncond = var.num_classes
    guided = [i for i, (o, c) in enumerate(zip(per_row, labels.tolist(), strict=True)) if o.cfg != 0 and c != uncond]
    G = len(guided)
    guided_rows = torch.tensor(guided, dtype=torch.long, device=device)
    sampled = []
    for k, pn in enumerate(var.patch_nums):
        where = keep.sampled(k) if hasattr(keep, "sampled") else None
        sampled.append(torch.ones(B, pn * pn, dtype=torch.bool) if where is None else where.cpu())
    plan = _plan(var, sampled, guided, per_row, generator, device, pruned_from)
    # The unconditional branch runs only for guided rows; for the others both branches are equal.
    cond = var.class_emb(torch.cat((labels, labels.new_full((G,), uncond))))
    with var.autocast():
        conditioning = var.condition(cond)
    x = var.first_input(cond)
    caches = var.new_cache(B + G, device, var.compute_dtype)
    P = var.patch_nums[-1]
    f_hat = torch.zeros(B, quant.Cvae, P, P, device=device)
    codebook = quant.embedding.weight.float()

    def next_input(k: int) -> torch.Tensor:  # scale k's inputs from f_hat, the guided rows twice
        x = var.next_input(quant.downsample(f_hat, k), k)
        return torch.cat((x, x[guided_rows])) if G else x

    start = _kept_prefix(sampled, pruned_from)
    if start:  # nothing to sample before `start`: the kept tokens in order, then one transformer pass over them all
        inputs = [x]
        for k in range(start):
            idx = keep(k, f_hat)[1]
            f_hat = f_hat + _contribution(quant, codebook[idx], k)
            yield ScaleStep(k, f_hat, idx)
            if k + 1 < K:
                inputs.append(next_input(k + 1))
        if start < K:
            with var.autocast():
                var.prefill(torch.cat(inputs[:start], dim=1), conditioning, caches)
            x = inputs[start]
    for k in range(start, K):
        pn, scale = var.patch_nums[k], plan[k]
        n = scale.n
        late = low is not None and k >= pruned_from
        if scale.columns is not None:
            x = x[:, scale.columns]
        with torch.autocast(device.type, dtype=low) if late else var.autocast():
            logits = var.step(x, conditioning, caches, scale.select).view(-1, var.vocab_size)
        fitted = None
        if G and hasattr(keep, "fits"):
            cond_logits = logits[:n] if scale.guided is None else logits[scale.guided]
            fitted = keep.fits(k, f_hat, cond_logits, logits[n:], scale.places)
        if G:
            if scale.guided is None:
                logits = (1 + scale.t) * logits[:n] - scale.t * logits[n:]
            else:
                logits[scale.guided] = (1 + scale.t) * logits[scale.guided] - scale.t * logits[n:]
        logits = logits[:n]  # (n, V): the sampled tokens', guided
        idx = torch.zeros(B * pn * pn, dtype=torch.long, device=device)
        smooth = []
        for group in scale.groups:
            opt = group.options
            mine = logits if group.tokens is None else logits[group.tokens]
            probs, ids = top_k_top_p(mine, opt.top_k, opt.top_p)
            idx[group.places] = draw(probs, ids, _exponential(group.draws, var.vocab_size, device))
            if opt.more_smooth:
                smooth.append((group, _smooth(mine, opt, k / (K - 1), codebook, group.draws)))
        idx = idx.view(B, pn * pn)
        kept = keep(k, f_hat) if keep is not None else None
        if kept is not None:
            mask, kept_tokens = kept
            idx = torch.where(mask, kept_tokens, idx)
        if fitted is not None:
            idx = torch.where(fitted[0], fitted[1], idx)
        h = codebook[idx]  # (B, l, Cvae)
        for group, vectors in smooth:
            h.view(-1, quant.Cvae)[group.places] = vectors
        if fitted is not None and smooth:
            h = torch.where(fitted[0].unsqueeze(-1), codebook[idx], h)
        f_hat = f_hat + _contribution(quant, h, k)
        yield ScaleStep(k, f_hat, idx)
        if k + 1 < K:
            x = next_input(k + 1)


def _kept_prefix(sampled: list[torch.Tensor], limit: int) -> int:
    """How many leading scales sample no token in any row (bool maps (B, l) per scale), at most `limit`."""
    for k, where in enumerate(sampled[:limit]):
        if bool(where.any()):
            return k
    return min(len(sampled), limit)


def _contribution(quant: MultiScaleQuantizer, h: torch.Tensor, k: int) -> torch.Tensor:
    """Code vectors (B, pn_k^2, Cvae) of scale k -> what they add to f_hat (B, Cvae, P, P)."""
    pn = quant.patch_nums[k]
    return quant.scale_contribution(h.transpose(1, 2).reshape(h.shape[0], quant.Cvae, pn, pn), k)


def _smooth(
    logits: torch.Tensor,
    opt: SamplingOptions,
    ratio: float,
    codebook: torch.Tensor,
    draws: list[tuple[torch.Generator | None, int]],
) -> torch.Tensor:
    """'More smooth' code vectors (n, Cvae): Gumbel-softmax over the filtered logits (n, V), noise from each
    row's generator (after its race noise)."""
    filtered = filter_top_k_top_p(logits.clone(), opt.top_k, opt.top_p)
    tau = max(0.27 * (1 - ratio * 0.95), 0.005)
    scaled = filtered * (1 + ratio)
    parts, start = [], 0
    for g, n in draws:
        parts.append(gumbel_soft(scaled[start : start + n], tau, g))
        start += n
    return torch.cat(parts) @ codebook


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
    return vqvae.decode_fhat(f_hat, fast=options.fast).add(1).mul(0.5)
