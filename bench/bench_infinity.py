"""Infinity on the CPU beside the upstream code: generation and a teacher-forced 10 % in-paint, paired ratios.

Both sides get the same random weights of the 125M architecture (depth 12, width 768, 8 heads, text width
2048, d32 BSQ VAE) at 256 px (1:1, class 0.06M: 7 scales), the same random text rows (the T5 encoder is the
same code on both sides and is left out), cfg 3, tau 0.5, top-k 900, top-p 0.97, seed 0; every timing includes
the decode. The upstream side is the unmodified repository with run-time stand-ins only: flash-attn's varlen
call by float32 SDPA on the bfloat16-rounded inputs (its output rounded to bfloat16, as flash-attn returns it),
the compiled fused AdaLN by an eager copy, and empty modules for what the inference path imports but never
calls (timm's registry and DropPath, torchvision, imageio). The in-paint keeps the encoded source bits outside a
centred box of 10 % of the picture through the keep hook (the upstream code has no in-paint: the ratio is to its
generation, as for VAR in docs/speed.md), timed three ways: with the prompt, encoding the source; with the prompt,
the source encoded before (the Editor keeps a picture's encoding for its next edits, and VAR's bench times its
in-paint so); with an empty prompt (the unconditional rows on both sides of guidance, run once), source encoded
before.

    python bench/bench_infinity.py --upstream /tmp/infinity_upstream --deps /tmp/infinity_bench_deps

--clock cpu times each task by the process's CPU time instead of the wall clock: on a shared machine (other work
taking the cores) that is the steadier measure; use it with --threads 1, where CPU time is the wall time of a
quiet machine.

--upstream: a checkout of FoundationVision/Infinity (the folder holding `infinity/`); --deps: a folder with
`einops` (pip install --target DIR einops), which the upstream VAE needs. Nothing from upstream is copied here.
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
import types

import torch
import torch.nn.functional as F

import infinity_core as ic

SCHEDULE = ic.schedule_for(1.0, "0.06M")
TEXT_TOKENS = 32


def _module(name: str, **attrs) -> types.ModuleType:
    mod = types.ModuleType(name)
    mod.__dict__.update(attrs)
    sys.modules[name] = mod
    return mod


def _flash_varlen(q, kv, cu_seqlens_q, cu_seqlens_k, max_seqlen_q, max_seqlen_k, dropout_p=0.0, softmax_scale=None):
    """flash-attn's packed varlen cross-attention on SDPA: q (Nq, H, c), kv (Nk, 2, H, c) -> (Nq, H, c)."""
    out = []
    for i in range(len(cu_seqlens_q) - 1):
        qi = q[cu_seqlens_q[i] : cu_seqlens_q[i + 1]].float().transpose(0, 1)
        k, v = kv[cu_seqlens_k[i] : cu_seqlens_k[i + 1]].float().unbind(1)
        o = F.scaled_dot_product_attention(qi, k.transpose(0, 1), v.transpose(0, 1), scale=softmax_scale)
        out.append(o.transpose(0, 1))
    return torch.cat(out).to(q.dtype)


def _flash_unused(q, k, v, dropout_p=0.0, softmax_scale=None):
    raise NotImplementedError("upstream's inference path does not call flash_attn_func")


def _eager_ada_layer_norm(C, eps, x, scale, shift):
    return F.layer_norm(x.float(), (C,), eps=eps).mul(scale.add(1)).add_(shift)


def _eager_ada_rms_norm(C, eps, x, scale, shift):
    x = x.float()
    return (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True).add_(eps))).mul(scale.add(1)).add_(shift)


def _install_stand_ins() -> None:
    _module("flash_attn", flash_attn_func=_flash_unused, flash_attn_varlen_kvpacked_func=_flash_varlen)
    timm = _module("timm")
    timm.models = _module("timm.models", register_model=lambda fn: fn)
    timm.models.layers = _module("timm.models.layers", DropPath=torch.nn.Identity, drop_path=None)
    timm.loss = _module("timm.loss", SoftTargetCrossEntropy=torch.nn.CrossEntropyLoss)
    _module("torchvision", transforms=_module("torchvision.transforms"))
    _module("imageio")
    _module(
        "infinity.models.fused_op",
        fused_ada_layer_norm=_eager_ada_layer_norm,
        fused_ada_rms_norm=_eager_ada_rms_norm,
        fused_rms_norm=None,
    )


def upstream_models(path: str, deps: str | None):
    """The upstream Infinity-125M-shaped transformer and d32 VAE, random weights (seeded)."""
    sys.path[:0] = [p for p in (path, deps) if p]
    _install_stand_ins()
    from infinity.models.bsq_vae.vae import vae_model
    from infinity.models.infinity import Infinity

    torch.manual_seed(0)
    vae = vae_model(None, "dynamic", 32, 2**32, patch_size=16, test_mode=True)
    model = Infinity(
        vae_local=vae, text_channels=2048, text_maxlen=512, shared_aln=True, raw_scale_schedule=None,
        checkpointing="full-block", customized_flash_attn=False, fused_norm=True, pad_to_multiplier=128,
        use_flex_attn=False, add_lvl_embeding_only_first_block=1, use_bit_label=1, rope2d_each_sa_layer=1,
        rope2d_normalized_by_hw=2, pn="0.06M", apply_spatial_patchify=0, inference_mode=True,
        train_h_div_w_list=[1.0], depth=12, embed_dim=768, num_heads=8, mlp_ratio=4, block_chunks=4,
    ).eval()  # fmt: skip
    with torch.no_grad():  # upstream's own init leaves the head near zero: every bit a near tie
        model.head.weight.normal_(0, 0.02)
    return model, vae


def upstream_generate(model, vae, text: torch.Tensor, top_k: int, gt_leak: int = 0, gt=None) -> torch.Tensor:
    n = len(SCHEDULE.grids)
    lens = [text.shape[0]]
    cu = torch.tensor([0, text.shape[0]], dtype=torch.int32)
    _, _, img = model.autoregressive_infer_cfg(
        vae=vae, scale_schedule=[(1, h, w) for h, w in SCHEDULE.grids], label_B_or_BLT=(text, lens, cu, lens[0]),
        g_seed=0, B=1, cfg_list=[3.0] * n, tau_list=[0.5] * n, top_k=top_k, top_p=0.97 if top_k != 1 else 0.0,
        returns_vemb=1, cfg_insertion_layer=[0], vae_type=32, ret_img=True, gt_leak=gt_leak, gt_ls_Bl=gt,
        inference_mode=True,
    )  # fmt: skip
    return img


def ours_generate(model, vae, text: torch.Tensor | ic.TextBatch, top_k: int, keep=None) -> torch.Tensor:
    batch = text if isinstance(text, ic.TextBatch) else ic.TextBatch(text[None], torch.tensor([text.shape[0]]))
    opts = ic.SamplingOptions(cfg=3.0, tau=0.5, top_k=top_k, top_p=0.97 if top_k != 1 else 0.0)
    *_, last = ic.scales(model, vae, batch, SCHEDULE, ic.generators([0]), opts, keep=keep)
    return ic.to_uint8(ic.decode(vae, last.summed_codes))


def box_masks(fraction: float) -> list[torch.Tensor]:
    """Per scale (h, w) bool, True = resampled: a centred box of `fraction` of the picture, a cell taken when
    more than half of it is covered."""
    H, W = SCHEDULE.pixels
    side = math.sqrt(fraction)
    pixels = torch.zeros(1, 1, H, W)
    h0, w0 = round(H * (1 - side) / 2), round(W * (1 - side) / 2)
    pixels[..., h0 : H - h0, w0 : W - w0] = 1
    return [F.adaptive_avg_pool2d(pixels, grid)[0, 0] > 0.5 for grid in SCHEDULE.grids]


def ours_inpaint(model, vae, text, picture, masks, top_k: int, source: list[torch.Tensor] | None = None):
    """The in-paint of `picture` (encoded here unless its `source` bits are given); text: (L, Ct) or a TextBatch."""
    source = vae.encode_bits(picture, SCHEDULE) if source is None else source

    def keep(index: int, sampled: torch.Tensor) -> torch.Tensor:
        return torch.where(masks[index][None, :, :, None], sampled, source[index])

    return ours_generate(model, vae, text, top_k, keep)


def _timed(fn, clock) -> float:
    start = clock()
    with torch.no_grad():
        fn()
    return clock() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--upstream", required=True, help="folder holding upstream's infinity/ package")
    parser.add_argument("--deps", default=None, help="extra import folder (einops) for the upstream side")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--mask", type=float, default=0.10, help="in-paint box, share of the picture")
    parser.add_argument("--clock", choices=("wall", "cpu"), default="wall", help="wall clock or process CPU time")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    up_model, up_vae = upstream_models(args.upstream, args.deps)
    model = ic.load_transformer(up_model.state_dict())
    vae = ic.load_vae(up_vae.state_dict())
    text = torch.randn(TEXT_TOKENS, 2048, generator=torch.Generator().manual_seed(1))
    masks = box_masks(args.mask)

    # Exactness first, greedy: upstream's bits and picture are ours.
    with torch.no_grad():
        want = upstream_generate(up_model, up_vae, text.clone(), top_k=1)[0].flip(-1)  # BGR -> RGB
        got = ours_generate(model, vae, text, top_k=1)[0]
    print(f"greedy generation, largest pixel difference to upstream: {(got.int() - want.int()).abs().max().item()}")
    picture = got.permute(2, 0, 1)[None].float() / 127.5 - 1

    with torch.no_grad():
        source = vae.encode_bits(picture, SCHEDULE)
        empty = ic.sampling.unconditional(model, ic.TextBatch(text[None], torch.tensor([text.shape[0]])))
    box = f"in-paint {args.mask:.0%}"
    tasks = {
        "upstream: generate": lambda: upstream_generate(up_model, up_vae, text.clone(), top_k=900),
        "ours: generate": lambda: ours_generate(model, vae, text, top_k=900),
        f"ours: {box}, encoding the source": lambda: ours_inpaint(model, vae, text, picture, masks, 900),
        f"ours: {box}, source encoded before": lambda: ours_inpaint(model, vae, text, picture, masks, 900, source),
        f"ours: {box}, empty prompt, source encoded before": lambda: ours_inpaint(
            model, vae, empty, picture, masks, 900, source
        ),
    }
    clock = time.process_time if args.clock == "cpu" else time.perf_counter
    times: dict[str, list[float]] = {k: [] for k in tasks}
    for r in range(args.repeats):
        order = list(tasks) if r % 2 == 0 else list(reversed(tasks))
        for name in order:
            times[name].append(_timed(tasks[name], clock))
    base = times["upstream: generate"]
    print(
        f"\n{args.repeats} repeats, {args.threads} threads, {args.clock} clock, medians; "
        "ratio = median of per-repeat ratios to upstream"
    )
    print("| task | seconds | ratio to upstream generation |\n|---|---|---|")
    for name, ts in times.items():
        ratio = statistics.median(t / b for t, b in zip(ts, base, strict=True))
        print(f"| {name} | {statistics.median(ts):.2f} | {ratio:.2f}x |")


if __name__ == "__main__":
    main()
