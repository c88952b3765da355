"""GPU check: bf16-vs-fp32 agreement, then generation and a 10 % in-paint timed, in one short run (<= 8 min on an H100).

    bash bench/gpu_check.sh                          # CUDA, d16 and d30-shaped random weights built on the device
    bash bench/gpu_check.sh --original ~/VAR         # beside the original code (a FoundationVision/VAR checkout)
    bash bench/gpu_check.sh --models models/         # the published files where they are there
    python bench/gpu_check.py --device cpu --small   # the same steps on tiny models (tests/test_gpu_check.py)

Steps, printed as they finish; every number goes to one JSON (--json, default gpu_check.json), and a short table
comes last:
1. models: a VQVAE and d16- and d30-shaped VARs with random weights, built in memory on the device (nothing is
   written to disk), loaded through `var_core.load_pair` from their in-memory state dicts as the product loads files
   (on CUDA the bf16 model holds its block weights in bf16, cast once); or the published files from --models. The
   random transformers' head is scaled up (std 0.02) so their logits spread like a trained model's.
2. agreement: greedy generation (cfg 1.5, top-k 1) in bf16 against float32: the share of equal tokens per scale and
   the teacher-forced top-1 agreement on the float32 tokens.
3. speed, per model and batch (d16: 1, 16, 64; d30: 1, 16): class-conditional generation and an unconditional
   in-paint of a 10 % centre box (its encoding cached), eager float32, eager bf16 and compiled bf16
   (`var_core.compiled.compile_steps`: CUDA graphs on CUDA; not on the CPU unless --compile), each without the
   VQVAE decode and the decode alone (float32 / bf16), so "with decode" is their sum. Aims: a d16 10 % in-paint
   with decode <= 40 ms at batch 1; d16 batch-16 generation >= 2x the original's images per second.
4. original (with --original): its `autoregressive_infer_cfg` (decode included) on its own random d16, float32 and
   float16 autocast, at the same batches, in a subprocess (it patches torch.nn globally).
5. Infinity-2B (`gpu_check_infinity.py`; --no-infinity skips it): random weights made on the device through the
   product's loader (meta-device build, blocks in bf16), 1024², batch 1: generation and a 10 % in-paint, each
   without the VAE decode, and the decode alone, in the same table. Upstream's figure: 0.8 s per 1024² image on an
   H100 (with flash-attn; here PyTorch's SDPA).
"""

from __future__ import annotations

import argparse
import copy
import gc
import json
import math
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gpu_check_infinity
import torch
from common import machine_info, peak_mb, reset_peak

import var_core
from var_core.compiled import compile_steps

HEAD_STD = 0.02
BF16 = torch.bfloat16

# Model shapes: the published ones, or tiny stand-ins for --small (same code paths, seconds on a CPU).
FULL = {
    "patch_nums": var_core.PATCH_NUMS_256,
    "vqvae": {},
    "var": {"d16": {"depth": 16}, "d30": {"depth": 30}},
    "batches": {"d16": (1, 16, 64), "d30": (1, 16)},
    "classes": 1000,
    "top_k": 900,
}
SMALL = {
    "patch_nums": (1, 2, 3, 4),
    "vqvae": {"vocab_size": 512, "z_channels": 8, "ch": 32},
    "var": {
        "d16": {"depth": 2, "embed_dim": 128, "num_heads": 2},
        "d30": {"depth": 3, "embed_dim": 192, "num_heads": 3},
    },
    "batches": {"d16": (1, 4), "d30": (1,)},
    "classes": 10,
    "top_k": 100,
}
FILES = {"vae": "vae_ch160v4096z32.pth", "d16": "var_d16.pth", "d30": "var_d30.pth"}


def say(*parts: Any) -> None:
    print(*parts, flush=True)


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


# ---- 1. models -----------------------------------------------------------------------------------
def random_states(shapes: dict, key: str, device: str) -> tuple[dict, dict]:
    """In-memory float32 state dicts of a random VQVAE and VAR `key`, built on `device` (instant on a GPU)."""
    torch.manual_seed(0)
    with torch.device(device):
        vqvae = var_core.VQVAE(patch_nums=shapes["patch_nums"], **shapes["vqvae"])
        vocab, cvae = shapes["vqvae"].get("vocab_size", 4096), shapes["vqvae"].get("z_channels", 32)
        var = var_core.VAR(
            vocab_size=vocab,
            z_channels=cvae,
            num_classes=shapes["classes"],
            patch_nums=shapes["patch_nums"],
            **shapes["var"][key],
        )
        var.head.weight.data.normal_(0, HEAD_STD)
    return vqvae.state_dict(), var.state_dict()


def load(shapes: dict, key: str, device: str, models: Path | None) -> tuple[Any, Any, Any, dict]:
    """(vqvae, var in float32, var in bf16, stats) through `var_core.load_pair`, as the product loads its files
    (on CUDA the bf16 one holds its block weights in bf16), from --models' files where present, else random."""
    gc.collect()
    if device.startswith("cuda"):
        torch.cuda.empty_cache()
    start = time.perf_counter()
    real = [models / FILES["vae"], models / FILES[key]] if models is not None and shapes is FULL else []
    if real and all(p.is_file() for p in real):
        sources: tuple[Any, Any] = (real[0], real[1])
        origin = "published"
    else:
        sources, origin = random_states(shapes, key, device), "random"
    vqvae, var = var_core.load_pair(*sources, device=device)
    low = var_core.load_pair(*sources, device=device, dtype=BF16)[1]
    del sources
    sync(device)
    params = sum(p.numel() for p in var.parameters())
    return vqvae, var, low, {"origin": origin, "seconds": time.perf_counter() - start, "var_params": params}


# ---- 2. agreement --------------------------------------------------------------------------------
def agreement(vqvae: Any, var: Any, low: Any, device: str, batch: int = 8) -> dict[str, Any]:
    """bf16 `low` against float32 `var` (same weights): free-running greedy tokens and teacher-forced top-1."""
    labels = torch.arange(batch, device=device) % var.num_classes
    greedy = var_core.SamplingOptions(cfg=1.5, top_k=1, top_p=0.0)
    a, b = (var_core.sample_fhat(m, vqvae, labels, greedy)[1] for m in (var, low))
    per_scale = [(x == y).float().mean().item() for x, y in zip(a, b, strict=True)]
    total = sum(r * t.numel() for r, t in zip(per_scale, a, strict=True)) / sum(t.numel() for t in a)
    with torch.no_grad():
        x = vqvae.quantize.teacher_forcing_input(a)
        top1 = (var(labels, x).argmax(-1) == low(labels, x).argmax(-1)).float().mean().item()
    return {"greedy_tokens_equal": total, "greedy_per_scale": [round(r, 4) for r in per_scale], "top1_equal": top1}


# ---- 3. speed ------------------------------------------------------------------------------------
def timed(fn: Callable[[int], Any], device: str, warmup: int, repeats: int) -> dict[str, float]:
    """Median seconds of fn(i) over repeats (after warmup calls) and the peak device memory of those calls."""
    for i in range(warmup):
        fn(-1 - i)
    reset_peak(device)
    seconds = []
    for i in range(repeats):
        sync(device)
        start = time.perf_counter()
        fn(i)
        sync(device)
        seconds.append(time.perf_counter() - start)
    return {"seconds": statistics.median(seconds), "peak_gb": peak_mb(device) / 1024}


def inpaint_setup(vqvae: Any, var: Any, device: str, batch: int) -> tuple[Any, list[torch.Tensor]]:
    """A cached encoding of a smooth picture and the scale masks of a 10 % centre box."""
    from editing.masks import scale_masks
    from editing.teacher_forcing import encode_source

    R = vqvae.image_size
    low = torch.rand(1, 3, 8, 8, generator=torch.Generator().manual_seed(1234)) * 2 - 1
    picture = torch.nn.functional.interpolate(low, size=(R, R), mode="bicubic").clamp(-1, 1).to(device)
    box = torch.zeros(R, R)
    a, b = round(R * (1 - math.sqrt(0.1)) / 2), round(R * (1 + math.sqrt(0.1)) / 2)
    box[a:b, a:b] = 1
    return encode_source(vqvae, picture), scale_masks(box, var.patch_nums)


def speed_rows(vqvae: Any, var: Any, name: str, batch: int, args: argparse.Namespace) -> dict[str, float]:
    """Seconds of generation and of a 10 % in-paint without the decode, and of the decode alone, at one batch."""
    from editing.teacher_forcing import run_edit

    device = args.device
    options = var_core.SamplingOptions(cfg=1.5, top_k=args.top_k, top_p=0.96)
    labels = torch.arange(batch, device=device) % var.num_classes
    uncond = torch.full((batch,), var.num_classes, device=device)
    source, regenerate = inpaint_setup(vqvae, var, device, batch)
    fast = var.compute_dtype != torch.float32

    def generate(i: int) -> None:
        var_core.sample_fhat(var, vqvae, labels, options, torch.Generator(device).manual_seed(max(i, 0)))

    def inpaint(i: int) -> None:
        g = torch.Generator(device).manual_seed(max(i, 0))
        run_edit(var, vqvae, uncond, options, source, regenerate, generator=g)

    f_hat = var_core.sample_fhat(var, vqvae, labels, options, torch.Generator(device).manual_seed(0))[0]
    gen = timed(generate, device, args.warmup, args.repeats)
    edit = timed(inpaint, device, args.warmup, args.repeats)
    dec = timed(lambda i: vqvae.decode_fhat(f_hat, fast=fast), device, args.warmup, args.repeats)
    row = {"generate_s": gen["seconds"], "inpaint10_s": edit["seconds"], "decode_s": dec["seconds"]}
    row["peak_gb"] = max(gen["peak_gb"], edit["peak_gb"], dec["peak_gb"])
    say(f"  {name} batch {batch}: " + ", ".join(f"{k} {v:.4g}" for k, v in row.items()))
    return row


def model_speed(vqvae: Any, var: Any, low: Any, key: str, shapes: dict, args: argparse.Namespace) -> dict[str, Any]:
    """Every variant at every batch of this model: eager float32, eager bf16, compiled bf16."""
    variants: list[tuple[str, Any]] = [("eager float32", var), ("eager bf16", low)]
    if args.compile:
        variants.append(("compiled bf16", compile_steps(copy.deepcopy(low))))
    rows: dict[str, Any] = {}
    for name, model in variants:
        for batch in shapes["batches"][key]:
            rows[f"{name} b{batch}"] = speed_rows(vqvae, model, f"{key} {name}", batch, args)
    return rows


# ---- 4. original ---------------------------------------------------------------------------------
def original_speed(shapes: dict, args: argparse.Namespace) -> dict[str, Any]:
    """The original code on its own random d16, in its own process."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--_original", str(args.original)]
    cmd += ["--device", args.device, "--warmup", str(args.warmup), "--repeats", str(args.repeats)]
    cmd += ["--small"] if args.small else []
    root = _original_checkout(Path(args.original))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (str(root), os.environ.get("PYTHONPATH")) if p)}
    out = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if out.returncode != 0:
        return {"error": (out.stderr or out.stdout).strip().splitlines()[-1:]}
    return json.loads(out.stdout.strip().splitlines()[-1])


def _original_checkout(path: Path) -> Path:
    for root in (path, path / "VAR"):
        if (root / "models" / "var.py").is_file() and (root / "dist.py").is_file():
            return root
    raise SystemExit(f"{path} is not a checkout of FoundationVision/VAR (no models/var.py and dist.py)")


def run_original(args: argparse.Namespace, shapes: dict) -> dict[str, Any]:
    """Inside the subprocess: the original's d16 pair with its own random weights, generation timed (decode in)."""
    from models import build_vae_var  # type: ignore[import-not-found]

    names = {"vocab_size": "V", "z_channels": "Cvae", "ch": "ch"}
    vq_cfg = {"V": 4096, "Cvae": 32, "ch": 160, **{names[k]: v for k, v in shapes["vqvae"].items()}}
    vae, var = build_vae_var(
        device=args.device,
        patch_nums=shapes["patch_nums"],
        num_classes=shapes["classes"],
        depth=shapes["var"]["d16"]["depth"],
        shared_aln=False,
        **vq_cfg,
    )
    vae.eval()
    var.eval()
    if args.device != "cpu":
        var.rng = torch.Generator(device=args.device)
    rows: dict[str, Any] = {}
    for name, autocast in (("float32", False), ("float16 autocast", True)):
        for batch in shapes["batches"]["d16"]:

            def generate(i: int, batch: int = batch, autocast: bool = autocast) -> None:
                labels = torch.arange(batch, device=args.device) % shapes["classes"]
                with torch.inference_mode(), torch.autocast(args.device, enabled=autocast, dtype=torch.float16):
                    var.autoregressive_infer_cfg(
                        B=batch, label_B=labels, g_seed=max(i, 0), cfg=1.5, top_k=args.top_k, top_p=0.96
                    )

            rows[f"original {name} b{batch}"] = {
                "generate_with_decode_s": timed(generate, args.device, 1, 3)["seconds"]
            }
    return rows


# ---- report --------------------------------------------------------------------------------------
def table(report: dict[str, Any]) -> str:
    """The short table printed last: per row seconds per call and images per second, with and without decode."""
    lines = [
        "| model | variant | batch | generate s (with decode) | img/s (with decode) | in-paint 10 % s (with decode) |",
        "|---|---|---|---|---|---|",
    ]
    for key, rows in report["speed"].items():
        for name, row in rows.items():
            variant, batch = name.rsplit(" b", 1)
            if "error" in row:
                lines.append(f"| {key} | {variant} | {batch} | error | - | - |")
                continue
            if "generate_with_decode_s" in row:
                g = row["generate_with_decode_s"]
                lines.append(f"| {key} | {variant} | {batch} | - ({g:.4f}) | - ({int(batch) / g:.1f}) | - |")
                continue
            g, e, d, n = row["generate_s"], row["inpaint10_s"], row["decode_s"], int(batch)
            cells = f"{g:.4f} ({g + d:.4f}) | {n / g:.1f} ({n / (g + d):.1f}) | {e:.4f} ({e + d:.4f})"
            lines.append(f"| {key} | {variant} | {batch} | {cells} |")
    return "\n".join(lines + [f"aims: {a}" for a in aims(report)])


def aims(report: dict[str, Any]) -> list[str]:
    """The two aims, read off the d16 rows: edit latency at batch 1, batch-16 throughput against the original."""
    d16 = report["speed"].get("d16", {})
    best = [r for n, r in d16.items() if n.endswith(" b1") and "inpaint10_s" in r]
    out = []
    infinity = report["speed"].get("infinity-2b", {}).get("eager bf16 b1")
    if infinity:
        side = infinity["pixels"][0]
        seconds = infinity["generate_s"] + infinity["decode_s"]
        out.append(f"Infinity-2B {side}² generation, batch 1, with decode: {seconds:.2f} s (upstream: 0.8 s, H100)")
    if best:
        latency = min(r["inpaint10_s"] + r["decode_s"] for r in best)
        out.append(f"d16 10 % in-paint, batch 1, with decode: {1e3 * latency:.1f} ms (aim <= 40 ms)")
    ours16 = [16 / (r["generate_s"] + r["decode_s"]) for n, r in d16.items() if n.endswith(" b16") and "decode_s" in r]
    orig16 = [16 / r["generate_with_decode_s"] for n, r in report["speed"].get("original", {}).items() if "b16" in n]
    if ours16 and orig16:
        out.append(f"d16 batch 16: {max(ours16):.1f} img/s against the original's {max(orig16):.1f} (aim >= 2x)")
    return out


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--small", action="store_true", help="tiny models and few scales (a CPU smoke run)")
    p.add_argument("--original", type=Path, help="a checkout of FoundationVision/VAR to time beside ours")
    p.add_argument("--models", type=Path, help="folder with the published .pth files to use where present")
    p.add_argument("--compile", action=argparse.BooleanOptionalAction, default=None, help="default: on CUDA only")
    p.add_argument("--infinity", action=argparse.BooleanOptionalAction, default=True, help="the Infinity-2B part")
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--json", type=Path, default=Path("gpu_check.json"), help="where every number goes")
    p.add_argument("--_original", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    args.compile = args.device.startswith("cuda") if args.compile is None else args.compile
    if args.small:  # a smoke run: every step once
        args.warmup, args.repeats = 0, 1
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    shapes = SMALL if args.small else FULL
    args.top_k = shapes["top_k"]
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        raise SystemExit("No CUDA device here: run with --device cpu --small for a smoke run.")
    if args._original:
        print(json.dumps(run_original(args, shapes)))
        return 0
    start = time.perf_counter()
    report: dict[str, Any] = {"machine": machine_info(args.device, torch.get_num_threads()), "small": args.small}
    report.update(load={}, agreement={}, speed={})
    say(f"# VAR GPU check on {report['machine'].get('gpu', args.device)}, torch {torch.__version__}")
    for key in ("d16", "d30"):
        say(f"## {key}: models, bf16 vs fp32, speed")
        vqvae, var, low, stats = load(shapes, key, args.device, args.models)
        report["load"][key] = stats
        say(f"  {stats['origin']} weights, {stats['var_params'] / 1e6:.0f} M parameters, {stats['seconds']:.1f} s")
        report["agreement"][key] = agree = agreement(vqvae, var, low, args.device)
        say(f"  bf16 vs fp32: greedy tokens equal {agree['greedy_tokens_equal']:.1%} {agree['greedy_per_scale']}")
        report["speed"][key] = model_speed(vqvae, var, low, key, shapes, args)
        del vqvae, var, low
    if args.original:
        say("## original d16")
        report["speed"]["original"] = original_speed(shapes, args)
    if args.infinity:
        say("## Infinity-2B: random weights, bf16, speed")
        gc.collect()
        stats, rows = gpu_check_infinity.check(
            args.small, args.device, lambda fn: timed(fn, args.device, args.warmup, args.repeats), say
        )
        report["load"]["infinity-2b"], report["speed"]["infinity-2b"] = stats, rows
    report["seconds"] = time.perf_counter() - start
    args.json.write_text(json.dumps(report, indent=2))
    say(f"# done in {report['seconds']:.0f} s, every number in {args.json}\n")
    say(table(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
