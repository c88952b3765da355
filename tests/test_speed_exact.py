"""The speed work leaves the exact path exact: what the sampler skips for kept tokens (the last block's attention
output and MLP, the head, CFG, filtering and sampling), top-p among the top-k survivors and the exponential race
keyed by token id change no greedy token, keep every row independent of its batch, and really run fewer positions.
No timings here (bench/bench_speed.py measures those)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

import var_core
from editing.masks import scale_masks
from editing.teacher_forcing import TeacherForcing, encode_source
from var_core.sampling import FAST_SCALES, draw, filter_top_k_top_p, top_k_top_p

FIXTURES = Path(__file__).parent / "fixtures"
DEMO = Path(__file__).parent.parent / "assets" / "demo"
GREEDY = var_core.SamplingOptions(cfg=2.0, top_k=1, top_p=0.0)


@pytest.fixture(scope="module")
def demo() -> tuple[var_core.VQVAE, var_core.VAR]:
    return var_core.load_pair(DEMO / "vae.safetensors", DEMO / "var.safetensors")


class EveryToken:
    """The keep hook without `sampled`: the sampler then runs the head and samples every token, as before."""

    def __init__(self, hook: TeacherForcing):
        self.hook = hook

    def __call__(self, k: int, f_hat: torch.Tensor):
        return self.hook(k, f_hat)


def _picture(seed: int, size: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    low = torch.rand(1, 3, 4, 4, generator=g) * 2 - 1
    return torch.nn.functional.interpolate(low, size=(size, size), mode="bicubic").clamp(-1, 1)


def _box(size: int, x0: float, y0: float, x1: float, y1: float) -> torch.Tensor:
    m = torch.zeros(size, size)
    m[round(y0 * size) : round(y1 * size), round(x0 * size) : round(x1 * size)] = 1
    return m


def _batch(vqvae: var_core.VQVAE, var: var_core.VAR, device: str = "cpu"):
    """A mixed batch: in-paint, class edit, generation, class edit with another mask, unconditional generation."""
    R, u = vqvae.image_size, var.num_classes
    sources = [encode_source(vqvae, _picture(s, R).to(device)) for s in range(3)]
    masks = [scale_masks(_box(R, *b), var.patch_nums) for b in ((0.1, 0.1, 0.5, 0.4), (0.3, 0.2, 0.9, 0.9))]
    rows = [  # (label, source, regenerate)
        (u, sources[0], masks[0]),
        (1, sources[1], masks[1]),
        (2, None, None),
        (3, sources[2], masks[0]),
        (u, None, None),
    ]
    labels = torch.tensor([r[0] for r in rows], device=device)
    hook = TeacherForcing.for_rows(vqvae, [r[1] for r in rows], [r[2] for r in rows], [False] * len(rows), device)
    return rows, labels, hook


def _same(a: list[torch.Tensor], b: list[torch.Tensor]) -> bool:
    return all(torch.equal(x, y) for x, y in zip(a, b, strict=True))


@pytest.mark.parametrize("name", ["tiny", "demo"])
def test_greedy_tokens_are_the_same_with_and_without_the_skips(name, demo):
    if name == "tiny":
        vqvae, var = var_core.load_pair(FIXTURES / "tiny" / "vae.safetensors", FIXTURES / "tiny" / "var.safetensors")
    else:
        vqvae, var = demo
    rows, labels, hook = _batch(vqvae, var)
    f_skip, skipped = var_core.sample_fhat(var, vqvae, labels, GREEDY, keep=hook)
    f_all, every = var_core.sample_fhat(var, vqvae, labels, GREEDY, keep=EveryToken(hook))
    assert _same(skipped, every)
    torch.testing.assert_close(vqvae.decode_fhat(f_skip), vqvae.decode_fhat(f_all), atol=1e-4, rtol=0)
    # and each row alone (in-paint, class edit, generation) gives its tokens in the batch
    for i, (label, source, regen) in enumerate(rows):
        alone = TeacherForcing.for_rows(vqvae, [source], [regen], [False], "cpu")
        _, tokens = var_core.sample_fhat(var, vqvae, torch.tensor([label]), GREEDY, keep=alone)
        assert _same(tokens, [t[i : i + 1] for t in skipped]), f"row {i}"


def test_scales_with_nothing_sampled(demo):
    """'strength' keeps the coarse scales whole: those scales sample no token in any row."""
    vqvae, var = demo
    R = vqvae.image_size
    masks = scale_masks(_box(R, 0.2, 0.2, 0.7, 0.6), var.patch_nums, policy="strength", strength=3)
    sources = [encode_source(vqvae, _picture(s, R)) for s in range(2)]
    hook = TeacherForcing.for_rows(vqvae, sources, [masks, masks], [False, True], "cpu")
    labels = torch.tensor([var.num_classes, 2])
    assert not hook.sampled(0).any() and not hook.sampled(2).any()
    _, skipped = var_core.sample_fhat(var, vqvae, labels, GREEDY, keep=hook)
    _, every = var_core.sample_fhat(var, vqvae, labels, GREEDY, keep=EveryToken(hook))
    assert _same(skipped, every)


def _tokens_and_rows(var: var_core.VAR, vqvae: var_core.VQVAE, labels, options, keep) -> tuple[list, list[int]]:
    """A run's token maps, and the rows of each call of the first block's MLP during it."""
    seen: list[int] = []
    spy = var.blocks[0].ffn.register_forward_hook(lambda m, i, o: seen.append(i[0].shape[:-1].numel()))
    try:
        tokens = var_core.sample_fhat(var, vqvae, labels, options, keep=keep)[1]
    finally:
        spy.remove()
    return tokens, seen


def test_the_kept_first_scales_run_as_one_pass(demo):
    """Scales where no row samples a token go through the transformer together (each weight read once), with the
    tokens of a scale-by-scale run; an edit that samples nothing runs no transformer at all."""
    vqvae, var = demo
    R = vqvae.image_size
    masks = scale_masks(_box(R, 0.4, 0.4, 0.6, 0.6), var.patch_nums)
    first = next(k for k, m in enumerate(masks) if m.any())
    assert first >= 2
    source = encode_source(vqvae, _picture(3, R))
    hook = TeacherForcing.for_rows(vqvae, [source, source], [masks, masks], [False, False], "cpu")
    labels = torch.tensor([var.num_classes, 2])
    tokens, rows = _tokens_and_rows(var, vqvae, labels, GREEDY, hook)
    sizes = [pn * pn for pn in var.patch_nums]
    assert rows == [3 * sum(sizes[:first]), *(3 * size for size in sizes[first:])]  # rows: both + the guided twin
    _, every = var_core.sample_fhat(var, vqvae, labels, GREEDY, keep=EveryToken(hook))
    assert _same(tokens, every)
    nothing = [torch.zeros_like(m) for m in masks]
    empty = TeacherForcing.for_rows(vqvae, [source], [nothing], [False], "cpu")
    kept, rows = _tokens_and_rows(var, vqvae, torch.tensor([2]), GREEDY, empty)
    assert rows == [] and _same(kept, source.tokens)


def test_greedy_tokens_are_the_argmax_of_the_teacher_forced_logits(demo):
    """An independent route to the same numbers: the full block-causal pass over the sampled tokens (no cache, no
    skips, no sampler) with CFG applied by hand picks every token the sampler picked."""
    vqvae, var = demo
    _, labels, hook = _batch(vqvae, var)
    _, tokens = var_core.sample_fhat(var, vqvae, labels, GREEDY, keep=hook)
    x = vqvae.quantize.teacher_forcing_input(tokens)
    with torch.no_grad():
        cond = var(labels, x)
        uncond = var(torch.full_like(labels, var.num_classes), x)
    K = var.num_scales
    for k, (b, e) in enumerate(var.begin_ends):
        t = GREEDY.cfg * k / (K - 1)
        guided = torch.where((labels != var.num_classes).view(-1, 1, 1), (1 + t) * cond - t * uncond, cond)
        want = guided[:, b:e].argmax(-1)
        sampled = hook.sampled(k)
        assert torch.equal(tokens[k][sampled], want[sampled]), f"scale {k}"


def test_kept_tokens_skip_the_last_block_mlp_and_the_head(demo):
    vqvae, var = demo
    _, labels, hook = _batch(vqvae, var)
    guided = int((labels != var.num_classes).sum())
    seen: dict[str, list[int]] = {"first": [], "last": [], "head": []}
    spies = [
        var.blocks[0].ffn.register_forward_hook(lambda m, i, o: seen["first"].append(i[0].shape[:-1].numel())),
        var.blocks[-1].ffn.register_forward_hook(lambda m, i, o: seen["last"].append(i[0].shape[:-1].numel())),
        var.head.register_forward_hook(lambda m, i, o: seen["head"].append(i[0].shape[:-1].numel())),
    ]
    try:
        var_core.sample_fhat(var, vqvae, labels, GREEDY, keep=hook)
    finally:
        for spy in spies:
            spy.remove()
    B = len(labels)
    is_guided = labels != var.num_classes
    for k, pn in enumerate(var.patch_nums):
        sampled = hook.sampled(k)
        wanted = int(sampled.sum()) + int(sampled[is_guided].sum())  # both CFG branches of guided rows
        assert seen["first"][k] == (B + guided) * pn * pn  # every position still fills the caches
        assert seen["last"][k] == seen["head"][k] == wanted
    last = hook.sampled(var.num_scales - 1)
    assert not last.all() and seen["head"][-1] < (B + guided) * last.shape[1]


def test_top_p_among_the_top_k_keeps_what_the_original_rule_keeps():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(64, 4096, generator=g) * 3
    for top_k, top_p in ((900, 0.96), (50, 0.5), (1, 0.0), (0, 0.9), (4096, 0.3), (900, 0.0)):
        want = filter_top_k_top_p(logits.clone(), top_k, top_p).isfinite()
        probs, ids = top_k_top_p(logits, top_k, top_p)
        got = probs > 0 if ids is None else torch.zeros_like(want).scatter_(-1, ids, probs > 0)
        assert torch.equal(got, want), (top_k, top_p)
        if ids is not None:  # the same distribution over the survivors
            kept = logits.masked_fill(~want, -torch.inf).softmax(-1)
            ours = torch.zeros_like(kept).scatter_(-1, ids, probs / probs.sum(-1, keepdim=True))
            torch.testing.assert_close(ours, kept)


def test_draws_follow_the_probabilities_and_never_pick_a_removed_token():
    n = 200_000
    probs = torch.tensor([[0.5, 0.3, 0.2, 0.0]]).expand(n, -1)
    ids = torch.tensor([[7, 3, 9, 1]]).expand(n, -1)
    noise = torch.empty(n, 10).exponential_(generator=torch.Generator().manual_seed(0))
    tokens = draw(probs, ids, noise)
    freq = torch.stack([(tokens == t).float().mean() for t in (7, 3, 9, 1)])
    torch.testing.assert_close(freq, torch.tensor([0.5, 0.3, 0.2, 0.0]), atol=5e-3, rtol=0)


def test_draws_shrug_off_last_bit_changes_of_the_logits(demo):
    """What keeps a row's tokens in any batch: products differ in the last bits with the batch size and CFG
    multiplies that (cfg 10: by 21); the draws must almost never care (inverse-CDF sampling over the sorted
    survivors, or a race whose noise follows the rank, flips ~5 here)."""
    vqvae, var = demo
    logits = []
    step = var.step
    var.step = lambda *args: logits.append(step(*args)) or logits[-1]
    try:
        options = var_core.SamplingOptions(cfg=10.0, top_k=100, top_p=0.95)
        var_core.sample_fhat(var, vqvae, torch.tensor([0, 1, 2, 3]), options, torch.Generator().manual_seed(0))
    finally:
        var.step = step
    cond, uncond = logits[-1].view(2, -1, var.vocab_size)  # the last scale, both CFG branches
    guided = 11 * cond - 10 * uncond
    flips = 0
    for seed in range(100):
        g = torch.Generator().manual_seed(seed)
        changed = guided * (1 + 1e-6 * torch.randn(guided.shape, generator=g))
        noise = torch.empty(guided.shape).exponential_(generator=g)
        a, b = (draw(*top_k_top_p(x, 100, 0.95), noise) for x in (guided, changed))
        flips += int((a != b).sum())
    assert flips <= 1, flips


def test_random_rows_are_independent_of_their_batch():
    """Sampled (not greedy) rows with their own generators give the same tokens alone and in a mixed batch (on the
    tiny model: the greedy test above keeps the demo-size case)."""
    vqvae, var = var_core.load_pair(FIXTURES / "tiny" / "vae.safetensors", FIXTURES / "tiny" / "var.safetensors")
    rows, labels, hook = _batch(vqvae, var)
    options = [var_core.SamplingOptions(cfg=3.0, top_k=20 + 10 * i, top_p=0.9) for i in range(len(rows))]
    gens = [torch.Generator().manual_seed(100 + i) for i in range(len(rows))]
    _, batch = var_core.sample_fhat(var, vqvae, labels, options, gens, keep=hook)
    for i, (label, source, regen) in enumerate(rows):
        alone = TeacherForcing.for_rows(vqvae, [source], [regen], [False], "cpu")
        g = torch.Generator().manual_seed(100 + i)
        _, tokens = var_core.sample_fhat(var, vqvae, torch.tensor([label]), [options[i]], [g], keep=alone)
        assert _same(tokens, [t[i : i + 1] for t in batch]), f"row {i}"


def test_fast_mode_keeps_the_coarse_scales_and_most_fine_tokens(demo):
    """Greedy, the fast mode changes no token below its last FAST_SCALES scales and few on them; the picture stays
    close. (On hardware without fast bfloat16 a generation is unchanged.)"""
    vqvae, var = demo
    labels = torch.tensor([0, 1, 2, var.num_classes])
    fast = var_core.SamplingOptions(cfg=GREEDY.cfg, top_k=1, top_p=0.0, fast=True)
    f_exact, exact = var_core.sample_fhat(var, vqvae, labels, GREEDY)
    f_fast, tokens = var_core.sample_fhat(var, vqvae, labels, fast)
    K = var.num_scales
    assert _same(exact[: K - FAST_SCALES], tokens[: K - FAST_SCALES])
    for k in range(K - FAST_SCALES, K):
        assert (exact[k] == tokens[k]).float().mean() >= 0.9, f"scale {k}"
    for a, b in zip(vqvae.decode_fhat(f_exact), vqvae.decode_fhat(f_fast, fast=True), strict=True):
        assert 10 * math.log10(4 / max((a - b).square().mean().item(), 1e-12)) > 25  # images in [-1, 1]


def test_fast_mode_edits_keep_the_coarse_scales_and_the_kept_tokens(demo):
    """In-paints and class edits with different masks in one batch: at the last two scales the fast mode runs only the
    positions some row samples; the coarser scales match the exact run and every kept token is the hook's."""
    vqvae, var = demo
    rows, labels, _ = _batch(vqvae, var)
    edits = [0, 1, 3]
    sub = TeacherForcing.for_rows(vqvae, [rows[i][1] for i in edits], [rows[i][2] for i in edits], [False] * 3, "cpu")
    fast = var_core.SamplingOptions(cfg=GREEDY.cfg, top_k=1, top_p=0.0, fast=True)
    _, exact = var_core.sample_fhat(var, vqvae, labels[edits], GREEDY, keep=sub)
    steps = list(var_core.sample_scales(var, vqvae, labels[edits], fast, keep=sub))
    tokens = [step.tokens for step in steps]
    K = var.num_scales
    assert _same(exact[: K - FAST_SCALES], tokens[: K - FAST_SCALES])
    kept = ~sub.sampled(K - 1)
    _, forced = sub(K - 1, steps[-2].f_hat)
    assert torch.equal(tokens[-1][kept], forced[kept])
    agree = [(exact[k] == tokens[k])[sub.sampled(k)].float().mean().item() for k in range(K - FAST_SCALES, K)]
    assert min(agree) >= 0.4, agree  # greedy, demo model: 0.85 and 0.65 with AMX


def test_without_fast_bfloat16_the_fast_mode_still_prunes(demo, monkeypatch):
    """On hardware without fast bfloat16 the fast mode keeps float32 but still runs, at its last scales, only the
    positions being sampled: an edit gets cheaper, a generation (nothing to leave out) stays bit for bit exact."""
    import var_core.sampling as sampling

    monkeypatch.setattr(sampling, "fast_dtype", lambda device: None)
    vqvae, var = demo
    fast = var_core.SamplingOptions(cfg=GREEDY.cfg, top_k=1, top_p=0.0, fast=True)
    labels = torch.tensor([0, var.num_classes])
    assert _same(var_core.sample_fhat(var, vqvae, labels, GREEDY)[1], var_core.sample_fhat(var, vqvae, labels, fast)[1])
    R, K = vqvae.image_size, var.num_scales
    masks = scale_masks(_box(R, 0.3, 0.3, 0.6, 0.6), var.patch_nums)
    hook = TeacherForcing.for_rows(vqvae, [encode_source(vqvae, _picture(4, R))], [masks], [False], "cpu")
    label = torch.tensor([var.num_classes])
    exact, rows_exact = _tokens_and_rows(var, vqvae, label, GREEDY, hook)
    tokens, rows_fast = _tokens_and_rows(var, vqvae, label, fast, hook)
    assert rows_fast[:-FAST_SCALES] == rows_exact[:-FAST_SCALES]
    assert rows_fast[-FAST_SCALES:] == [int(hook.sampled(k).sum()) for k in range(K - FAST_SCALES, K)]
    assert _same(exact[: K - FAST_SCALES], tokens[: K - FAST_SCALES])
    kept = ~hook.sampled(K - 1)
    assert torch.equal(tokens[-1][kept], exact[-1][kept])


def test_fast_and_exact_rows_do_not_share_a_batch(demo):
    vqvae, var = demo
    options = [var_core.SamplingOptions(), var_core.SamplingOptions(fast=True)]
    with pytest.raises(ValueError, match="fast"):
        var_core.sample_fhat(var, vqvae, torch.tensor([0, 1]), options)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_no_host_device_sync_inside_the_loop():
    vqvae, var = var_core.load_pair(DEMO / "vae.safetensors", DEMO / "var.safetensors", device="cuda")
    _, labels, hook = _batch(vqvae, var, "cuda")
    gens = [torch.Generator("cuda").manual_seed(i) for i in range(len(labels))]
    steps = var_core.sample_scales(var, vqvae, labels, var_core.SamplingOptions(), gens, hook)
    next(steps)  # the setup (the plan of sampled tokens) and scale 0
    torch.cuda.set_sync_debug_mode("error")
    try:
        for _ in steps:
            pass
    finally:
        torch.cuda.set_sync_debug_mode("default")
