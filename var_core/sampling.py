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

`sample_scales` reads as its stages: `_start` fixes the run (rows, plan of sampled tokens, conditioning, caches),
`_prefill` runs the kept prefix, and each scale then takes `_logits`, `_guide` (CFG), `_draw`, `_keep` and
`_vectors` before f_hat grows. It yields after every scale, so a caller can show previews or stop early by
leaving the loop; `sample_fhat` runs it to the end. Rows of one batch may differ in class,
sampling options and random generator: each row's draws come from its own generator, so a row
gives the same tokens alone or beside others.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Generator, Iterator, Sequence
from dataclasses import dataclass

import torch

from .quantizer import MultiScaleQuantizer
from .transformer import VAR, Conditioning, KVCache, Selection
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


class KeepHook(ABC):
    """What an edit keeps: the tokens it forces, and which tokens it leaves to the sampler, known before the run.

    A plain callable (k, f_hat) -> (keep, tokens) | None may stand in for a hook: every token is then sampled (the
    head, filtering and drawing run for all of them) and its kept tokens replace the drawn ones afterwards."""

    @abstractmethod
    def __call__(self, k: int, f_hat: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor] | None:
        """Scale k, f_hat (B, Cvae, P, P) accumulated before k -> (keep, tokens), both (B, pn_k^2), or None."""

    @abstractmethod
    def sampled(self, k: int) -> torch.Tensor:
        """Which tokens of scale k are sampled: bool (B, pn_k^2) on the host, the complement of `__call__`'s keep."""


Keep = KeepHook | Callable[[int, torch.Tensor], tuple[torch.Tensor, torch.Tensor] | None]


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


@dataclass
class _Rows:
    """What the plan knows of the rows: per_row options, which are guided (B,) bool, each row's unconditional twin
    (B,) (its row among the B + G of both branches), the rows grouped by options, and the generators."""

    per_row: list[SamplingOptions]
    is_guided: torch.Tensor
    twin: torch.Tensor
    groups: dict[SamplingOptions, list[int]]
    generator: Generators


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
    B, G = len(per_row), len(guided_rows)
    is_guided = torch.zeros(B, dtype=torch.bool)
    is_guided[guided_rows] = True
    twin = torch.zeros(B, dtype=torch.long)
    twin[guided_rows] = torch.arange(B, B + G)
    groups: dict[SamplingOptions, list[int]] = {}
    for row, opt in enumerate(per_row):
        groups.setdefault(opt, []).append(row)
    rows = _Rows(per_row, is_guided, twin, groups, generator)
    return [_plan_scale(var, k, where, rows, device, k >= pruned_from) for k, where in enumerate(sampled)]


def _plan_scale(var: VAR, k: int, where: torch.Tensor, rows: _Rows, device: torch.device, prune: bool) -> _Scale:
    """Scale k's plan from its sampled map (B, l); `prune`: run only the positions some row samples."""
    B, G, l = len(rows.per_row), int(rows.is_guided.sum()), where.shape[1]  # noqa: E741
    row, pos = where.nonzero(as_tuple=True)
    flat, n = row * l + pos, len(row)
    guided = rows.is_guided[row].nonzero().view(-1)
    columns, width, column = None, l, pos  # the positions run (None: all), how many, each token's among them
    used = where.any(0)
    if prune and bool(used.any()) and not bool(used.all()):
        columns = used.nonzero().view(-1)
        width, column = len(columns), used.cumsum(0)[pos] - 1
        columns = columns.to(device)
    head = torch.cat((row * width + column, rows.twin[row[guided]] * width + column[guided]))
    select = None if len(head) == (B + G) * width else Selection(head.to(device), (head // width).to(device))
    K = var.num_scales
    t = torch.tensor([opt.cfg * (k / (K - 1)) for opt in rows.per_row])[row[guided]].view(-1, 1)  # cfg * ratio
    parts = _groups(row, flat, rows, device)
    all_guided = len(guided) == n
    places = flat[guided].to(device)
    return _Scale(n, select, None if all_guided else guided.to(device), t.to(device), parts, places, columns)


def _groups(row: torch.Tensor, flat: torch.Tensor, rows: _Rows, device: torch.device) -> list[_Group]:
    """The scale's sampled tokens (their rows (n,), flat places (n,)) grouped by their rows' sampling options."""
    counts = torch.bincount(row, minlength=len(rows.per_row)).tolist()
    parts = []
    for opt, members in rows.groups.items():
        tokens = torch.isin(row, torch.tensor(members)).nonzero().view(-1)
        if len(tokens) == 0:
            continue
        if isinstance(rows.generator, Sequence):
            draws = [(rows.generator[r], counts[r]) for r in members if counts[r]]
        else:
            draws = [(rows.generator, len(tokens))]
        every = len(tokens) == len(row)
        parts.append(_Group(opt, None if every else tokens.to(device), flat[tokens].to(device), draws))
    return parts


def _exponential(draws: list[tuple[torch.Generator | None, int]], V: int, device: torch.device) -> torch.Tensor:
    """Exp(1) noise (n, V), one per token id: each generator draws its own tokens' rows, in order."""
    return torch.cat([torch.empty(n, V, device=device).exponential_(generator=g) for g, n in draws])


@dataclass
class _Run:
    """What a run fixes before its first scale: the model, the keep hook, the plan of sampled tokens per scale, the
    guided rows (G,) whose unconditional twins follow the B rows, the class conditioning and the caches; `low`: the
    fast mode's bfloat16 from scale `pruned_from` on (None: float32 throughout)."""

    var: VAR
    quant: MultiScaleQuantizer
    codebook: torch.Tensor
    keep: Keep | None
    sampled: list[torch.Tensor]
    plan: list[_Scale]
    guided_rows: torch.Tensor
    conditioning: Conditioning
    caches: list[KVCache]
    low: torch.dtype | None
    pruned_from: int


@torch.no_grad()
def sample_scales(
    var: VAR,
    vqvae: VQVAE,
    labels: torch.Tensor,
    options: SamplingOptions | Sequence[SamplingOptions] = SamplingOptions(),
    generator: Generators = None,
    keep: Keep | None = None,
) -> Iterator[ScaleStep]:
    """Sample one image per label, yielding after every scale.

    labels: (B,) class ids, `var.num_classes` for the unconditional class.
    options: one for all rows, or one per row. generator: one for all rows, or one per row.
    keep: called before each scale's update; tokens it marks kept replace the sampled ones, and a `KeepHook`'s
    `sampled` tokens are the only ones the head, filtering and sampling run for.
    Rows that are unconditional or have cfg 0 run one CFG branch; the others two. The rows must agree on `fast`.
    """
    run, x = _start(var, vqvae, labels, _per_row(options, generator, labels.shape[0]), generator, keep)
    P, K = var.patch_nums[-1], var.num_scales
    f_hat = torch.zeros(labels.shape[0], run.quant.Cvae, P, P, device=labels.device)
    start = _kept_prefix(run.sampled, run.pruned_from)
    if start:
        f_hat, x = yield from _prefill(run, start, f_hat, x)
    for k in range(start, K):
        logits = _guide(run.plan[k], _logits(run, k, x))
        tokens, smooth = _draw(run, k, logits)
        tokens = _keep(run, k, f_hat, tokens)
        f_hat = f_hat + _contribution(run.quant, _vectors(run, tokens, smooth), k)
        yield ScaleStep(k, f_hat, tokens)
        if k + 1 < K:
            x = _next_input(run, f_hat, k + 1)


def _per_row(options: SamplingOptions | Sequence[SamplingOptions], generator: Generators, B: int) -> list:
    """One SamplingOptions per row, checked: as many as rows (and generators), all agreeing on `fast`."""
    per_row = [options] * B if isinstance(options, SamplingOptions) else list(options)
    if len(per_row) != B or (isinstance(generator, Sequence) and len(generator) != B):
        raise ValueError("Give one SamplingOptions and one generator per row, or one for all rows.")
    if len({o.fast for o in per_row}) > 1:
        raise ValueError("Rows of one batch must agree on `fast`: sample fast and exact rows in separate passes.")
    return per_row


def _sampled_maps(keep: Keep | None, patch_nums: tuple[int, ...], B: int) -> list[torch.Tensor]:
    """Per scale, bool (B, pn_k^2) on the host: which tokens are sampled (all, unless a KeepHook says otherwise)."""
    if isinstance(keep, KeepHook):
        return [keep.sampled(k).cpu() for k in range(len(patch_nums))]
    return [torch.ones(B, pn * pn, dtype=torch.bool) for pn in patch_nums]


def _start(
    var: VAR,
    vqvae: VQVAE,
    labels: torch.Tensor,
    per_row: list[SamplingOptions],
    generator: Generators,
    keep: Keep | None,
) -> tuple[_Run, torch.Tensor]:
    """The run's fixed state and scale 0's inputs. The unconditional branch runs only for guided rows; for the
    others both branches are equal."""
    B, K, device, uncond = labels.shape[0], var.num_scales, labels.device, var.num_classes
    fast = per_row[0].fast
    guided = [i for i, (o, c) in enumerate(zip(per_row, labels.tolist(), strict=True)) if o.cfg != 0 and c != uncond]
    pruned_from = K - FAST_SCALES if fast else K  # the fast mode runs only sampled positions there
    sampled = _sampled_maps(keep, var.patch_nums, B)
    plan = _plan(var, sampled, guided, per_row, generator, device, pruned_from)
    cond, conditioning = var.condition_labels(torch.cat((labels, labels.new_full((len(guided),), uncond))))
    quant = vqvae.quantize
    run = _Run(
        var,
        quant,
        quant.embedding.weight.float(),
        keep,
        sampled,
        plan,
        torch.tensor(guided, dtype=torch.long, device=device),
        conditioning,
        var.new_cache(B + len(guided), device, var.compute_dtype),
        fast_dtype(device) if fast else None,  # the fast mode's bfloat16, where it is fast
        pruned_from,
    )
    return run, var.first_input(cond)


def _next_input(run: _Run, f_hat: torch.Tensor, k: int) -> torch.Tensor:
    """Scale k's transformer inputs from f_hat (B, Cvae, P, P), the guided rows twice."""
    x = run.var.next_input(run.quant.downsample(f_hat, k), k)
    return torch.cat((x, x[run.guided_rows])) if len(run.guided_rows) else x


def _prefill(
    run: _Run, start: int, f_hat: torch.Tensor, x: torch.Tensor
) -> Generator[ScaleStep, None, tuple[torch.Tensor, torch.Tensor]]:
    """The first `start` scales, where no row samples a token: the kept tokens in order, then one transformer pass
    over them all (each weight read once). Yields their steps; returns (f_hat, scale `start`'s inputs)."""
    assert run.keep is not None
    K, inputs = run.var.num_scales, [x]
    for k in range(start):
        kept = run.keep(k, f_hat)
        assert kept is not None
        f_hat = f_hat + _contribution(run.quant, run.codebook[kept[1]], k)
        yield ScaleStep(k, f_hat, kept[1])
        if k + 1 < K:
            inputs.append(_next_input(run, f_hat, k + 1))
    if start < K:
        with run.var.autocast():
            run.var.prefill(torch.cat(inputs[:start], dim=1), run.conditioning, run.caches)
        x = inputs[start]
    return f_hat, x


def _logits(run: _Run, k: int, x: torch.Tensor) -> torch.Tensor:
    """Scale k's logits (n + n_g, V) for its sampled tokens, then their unconditional twins in guided rows."""
    var, scale = run.var, run.plan[k]
    if scale.columns is not None:
        x = x[:, scale.columns]
    late = run.low is not None and k >= run.pruned_from
    if late and k == run.pruned_from:  # cast the caches once, not at each block's attention of the late scales
        for cache in run.caches:
            cache.cast(run.low)
    with torch.autocast(x.device.type, dtype=run.low) if late else var.autocast():
        return var.step(x, run.conditioning, run.caches, scale.select).view(-1, var.vocab_size)


def _guide(scale: _Scale, logits: torch.Tensor) -> torch.Tensor:
    """Classifier-free guidance: logits (n + n_g, V) of both branches -> the n sampled tokens' guided logits (n, V)."""
    n = scale.n
    if len(logits) == n:  # no guided token
        return logits
    if scale.guided is None:
        return (1 + scale.t) * logits[:n] - scale.t * logits[n:]
    logits[scale.guided] = (1 + scale.t) * logits[scale.guided] - scale.t * logits[n:]
    return logits[:n]


def _draw(run: _Run, k: int, logits: torch.Tensor) -> tuple[torch.Tensor, list[tuple[_Group, torch.Tensor]]]:
    """The scale's tokens (B, pn_k^2): each group's drawn from its filtered logits (kept places 0), and the 'more
    smooth' groups' code vectors (n_group, Cvae)."""
    var, scale = run.var, run.plan[k]
    pn, K, B = var.patch_nums[k], var.num_scales, run.sampled[k].shape[0]
    tokens = torch.zeros(B * pn * pn, dtype=torch.long, device=logits.device)
    smooth = []
    for group in scale.groups:
        opt = group.options
        mine = logits if group.tokens is None else logits[group.tokens]
        probs, ids = top_k_top_p(mine, opt.top_k, opt.top_p)
        tokens[group.places] = draw(probs, ids, _exponential(group.draws, var.vocab_size, logits.device))
        if opt.more_smooth:
            smooth.append((group, _smooth(mine, opt, k / (K - 1), run.codebook, group.draws)))
    return tokens.view(B, pn * pn), smooth


def _keep(run: _Run, k: int, f_hat: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
    """The drawn tokens (B, pn_k^2) with the keep hook's kept ones in their places."""
    kept = run.keep(k, f_hat) if run.keep is not None else None
    if kept is None:
        return tokens
    return torch.where(kept[0], kept[1], tokens)


def _vectors(run: _Run, tokens: torch.Tensor, smooth: list[tuple[_Group, torch.Tensor]]) -> torch.Tensor:
    """The scale's code vectors (B, pn_k^2, Cvae): the tokens' codes, the 'more smooth' groups' blends in place."""
    h = run.codebook[tokens]
    for group, vectors in smooth:
        h.view(-1, run.quant.Cvae)[group.places] = vectors
    return h


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
    keep: Keep | None = None,
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
