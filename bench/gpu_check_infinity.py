"""The Infinity-2B part of the GPU check (bench/gpu_check.py): random weights made on the device, 1024², batch 1.

The transformer is built on the `meta` device and given random float32 tensors made on the device, through the
product's loader (`infinity_core.load_transformer`: blocks held in bf16, the rest float32, as upstream loads it);
the d32 VAE likewise in float32. No file is read or written. The text is random T5-shaped features of 32 tokens:
the flan-T5-XL encoder is not part of this timing (about 1.2 TFLOP per prompt, against the transformer's 116 per
1024² picture with CFG). Timed: generation (cfg 3, tau 0.5, top-p 0.97, the upstream scripts' settings) without the
VAE decode, a 10 % centre in-paint (its source picture's bits encoded once, outside the timing; the keep hook puts
them back outside the box at every scale) without the decode, and the decode alone. `--small`: the same steps on a
tiny model at 256 px (tests/test_gpu_check.py).
"""

from __future__ import annotations

import gc
import math
import time
from collections.abc import Callable
from typing import Any

import torch

import infinity_core as ic

FULL = {
    "transformer": dict(depth=32, embed_dim=2048, num_heads=16, mlp_hidden=8192, text_channels=2048, bits=32,
                        pool_heads=16, block_chunks=8),
    "vae": dict(bits=32, ch=128, ch_mult=(1, 2, 4, 4, 4), num_res_blocks=2),
    "area": "1M",
}  # fmt: skip
SMALL = {
    "transformer": dict(depth=2, embed_dim=64, num_heads=2, mlp_hidden=256, text_channels=32, bits=16, pool_heads=1),
    "vae": dict(bits=16, ch=32, ch_mult=(1, 1, 1, 1, 1), num_res_blocks=1),
    "area": "0.06M",
}
TEXT_TOKENS = 32
OPTIONS = ic.SamplingOptions(cfg=3.0, tau=0.5, top_k=0, top_p=0.97)
STD = 0.02


def random_state(module: torch.nn.Module, device: str) -> dict[str, torch.Tensor]:
    """Random float32 tensors on `device` for every entry of a meta-built module's state dict (buffers zero)."""
    g = torch.Generator(device).manual_seed(0)
    params = {name for name, _ in module.named_parameters()}
    out = {}
    for key, meta in module.state_dict().items():
        t = torch.zeros(meta.shape, dtype=meta.dtype, device=device)
        if key in params:
            t.normal_(0, STD, generator=g)
        out[key] = t
    return out


def load(shapes: dict, device: str) -> tuple[ic.Infinity, ic.BSQVAE, dict[str, Any]]:
    """The transformer (bf16 blocks) and VAE from random tensors made on the device, through the product's loaders."""
    start = time.perf_counter()
    with torch.device("meta"):
        model = ic.Infinity(**shapes["transformer"])
        vae = ic.BSQVAE(**shapes["vae"])
    state = random_state(model, device)
    transformer = ic.load_transformer(state, device, torch.bfloat16)
    del state
    vae = ic.load_vae(random_state(vae, device), device)
    gc.collect()
    if device.startswith("cuda"):
        torch.cuda.synchronize()
        torch.cuda.empty_cache()
    params = sum(p.numel() for p in transformer.parameters())
    return transformer, vae, {"origin": "random", "seconds": time.perf_counter() - start, "var_params": params}


def keep_box(schedule: ic.Schedule, source: list[torch.Tensor], share: float = 0.1) -> ic.KeepHook:
    """A keep hook that puts the source bits back outside a centre box of `share` of the picture, at every scale."""
    side = math.sqrt(share)
    outside = []
    for h, w in schedule.grids:
        rows = (torch.arange(h) + 0.5) / h
        cols = (torch.arange(w) + 0.5) / w
        inside = ((rows - 0.5).abs() < side / 2)[:, None] & ((cols - 0.5).abs() < side / 2)[None, :]
        outside.append(~inside)

    def keep(k: int, sampled: torch.Tensor) -> torch.Tensor:
        mask = outside[k].to(sampled.device)
        return torch.where(mask[None, :, :, None], source[k], sampled)

    return keep


def check(
    small: bool, device: str, timed: Callable[[Callable[[int], Any]], dict[str, float]], say: Callable[..., None]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(load stats, speed rows) of the Infinity-2B part; timed(fn) -> {"seconds", "peak_gb"} as gpu_check times."""
    shapes = SMALL if small else FULL
    transformer, vae, stats = load(shapes, device)
    say(f"  random weights, {stats['var_params'] / 1e9:.2f} B parameters, {stats['seconds']:.1f} s")
    schedule = ic.schedule_for(1.0, shapes["area"])
    g = torch.Generator(device).manual_seed(1)
    width = shapes["transformer"]["text_channels"]
    text = ic.TextBatch(torch.randn(1, TEXT_TOKENS, width, device=device, generator=g), torch.tensor([TEXT_TOKENS]))
    text = text.to(device)

    def run(i: int, keep: ic.KeepHook | None = None) -> torch.Tensor:
        steps = ic.scales(transformer, vae, text, schedule, ic.generators([max(i, 0)], device), OPTIONS, keep=keep)
        *_, last = steps
        return last.summed_codes

    codes = run(0)
    with torch.no_grad():
        picture = ic.decode(vae, codes)
        keep = keep_box(schedule, vae.encode_bits(picture, schedule))
    gen = timed(run)
    edit = timed(lambda i: run(i, keep))
    dec = timed(lambda i: ic.decode(vae, codes))
    row = {"generate_s": gen["seconds"], "inpaint10_s": edit["seconds"], "decode_s": dec["seconds"]}
    row["peak_gb"] = max(gen["peak_gb"], edit["peak_gb"], dec["peak_gb"])
    row["pixels"] = list(schedule.pixels)
    say(f"  {schedule.pixels[0]}² bf16 batch 1: " + ", ".join(f"{k} {v:.4g}" for k, v in row.items() if k != "pixels"))
    return stats, {"eager bf16 b1": row}
