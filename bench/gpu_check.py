"""GPU check: loading, bf16-vs-fp32 agreement, edit latency and throughput, in one short run.

    bash bench/gpu_check.sh                          # CUDA, d16 and d30-shaped random weights, a few minutes
    bash bench/gpu_check.sh --original ~/VAR         # beside the original code (a FoundationVision/VAR checkout)
    bash bench/gpu_check.sh --models models/         # the published files where they are there
    python bench/gpu_check.py --device cpu --small   # the same steps on tiny models (tests/test_gpu_check.py)

Steps, printed as they finish (and as JSON with --json):
1. files: a VQVAE and d16- and d30-shaped VARs with random weights in the published format (plain
   float32 state dicts, `.pth`), or the real files from --models. The random transformers' head is
   scaled up (std 0.02) so their logits spread like a trained model's instead of being nearly flat,
   which would make greedy agreement meaningless.
2. load: `var_core.load_pair` per model: seconds, host peak RSS above the start, device memory.
3. agreement: greedy generation (cfg 1.5, top-k 1) in bfloat16 autocast against float32: the share of
   equal tokens per scale (free running, so one early flip changes what follows) and the teacher-forced
   top-1 agreement and largest logit difference on the float32 tokens.
4. speed (d16): in-paint latency at batch 1 through `Editor` (a new picture each time, so encoding
   included) and class-conditional generation at batch 16 (cfg 1.5, top-k 900, top-p 0.96) in images
   per second, bfloat16 and float32, each with its peak device memory; with --original the original
   code's `autoregressive_infer_cfg` on the same weights in float32 and in its demo's float16 autocast.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from common import machine_info, peak_mb, reset_peak

import var_core
from var_core.zoo import VQVAE_FILE

HEAD_STD = 0.02

# Model shapes: the published ones, or tiny stand-ins for --small (same code paths, seconds on a CPU).
FULL = {
    "patch_nums": var_core.PATCH_NUMS_256,
    "vqvae": {},
    "var": {"d16": {"depth": 16}, "d30": {"depth": 30}},
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
    "classes": 10,
    "top_k": 100,
}


def say(*parts: Any) -> None:
    print(*parts, flush=True)


# ---- 1. files ------------------------------------------------------------------------------------
def build_files(workdir: Path, shapes: dict, device: str, models: Path | None) -> dict[str, Path]:
    """{'vae', 'd16', 'd30'} -> .pth paths: real files from `models` where present, else random ones."""
    workdir.mkdir(parents=True, exist_ok=True)
    wanted = {"vae": VQVAE_FILE, "d16": "var_d16.pth", "d30": "var_d30.pth"}
    out: dict[str, Path] = {}
    for key, filename in wanted.items():
        real = models / filename if models is not None else None
        if real is not None and real.is_file() and shapes is FULL:
            out[key] = real
            say(f"  {key}: {real} (published weights)")
            continue
        path = workdir / filename
        if not path.is_file():
            torch.manual_seed(0)
            start = time.perf_counter()
            build_device = device if device.startswith("cuda") else "cpu"  # random init on the GPU is instant
            with torch.device(build_device):
                if key == "vae":
                    model: torch.nn.Module = var_core.VQVAE(patch_nums=shapes["patch_nums"], **shapes["vqvae"])
                else:
                    vocab = shapes["vqvae"].get("vocab_size", 4096)
                    cvae = shapes["vqvae"].get("z_channels", 32)
                    model = var_core.VAR(
                        vocab_size=vocab,
                        z_channels=cvae,
                        num_classes=shapes["classes"],
                        patch_nums=shapes["patch_nums"],
                        **shapes["var"][key],
                    )
                    model.head.weight.data.normal_(0, HEAD_STD)
            state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
            del model
            tmp = path.with_suffix(".tmp")
            torch.save(state, tmp)
            tmp.replace(path)
            del state
            gc.collect()
            seconds = time.perf_counter() - start
            say(f"  {key}: built {path.name} ({path.stat().st_size / 1e9:.2f} GB) in {seconds:.1f} s")
        out[key] = path
    return out


# ---- 2. load -------------------------------------------------------------------------------------
def _rss_gb(field: str = "VmRSS") -> float:
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith(field + ":"):
                    return float(line.split()[1]) / 1e6
    except OSError:
        pass
    return float("nan")


def load(files: dict[str, Path], key: str, device: str) -> tuple[var_core.VQVAE, var_core.VAR, dict[str, Any]]:
    gc.collect()
    if device.startswith("cuda"):
        torch.cuda.empty_cache()
    reset_peak(device)
    reset_peak("cpu")
    before = _rss_gb()
    start = time.perf_counter()
    vqvae, var = var_core.load_pair(files["vae"], files[key], device=device)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    stats = {
        "seconds": time.perf_counter() - start,
        "file_gb": files[key].stat().st_size / 1e9,
        "host_peak_gb": _rss_gb("VmHWM") - before,
        "device_gb": peak_mb(device) / 1024 if device.startswith("cuda") else None,
    }
    return vqvae, var, stats


# ---- 3. agreement --------------------------------------------------------------------------------
def agreement(vqvae: var_core.VQVAE, var: var_core.VAR, device: str, batch: int) -> dict[str, Any]:
    """bfloat16 autocast against float32, same weights: free-running greedy tokens and teacher-forced top-1."""
    labels = torch.arange(batch, device=device) % var.num_classes
    greedy = var_core.SamplingOptions(cfg=1.5, top_k=1, top_p=0.0)
    tokens = {}
    for dtype in (torch.float32, torch.bfloat16):
        var.compute_dtype = dtype
        tokens[dtype] = var_core.sample_fhat(var, vqvae, labels, greedy)[1]
    per_scale = [(a == b).float().mean().item() for a, b in zip(*tokens.values(), strict=True)]
    total = sum(r * t.numel() for r, t in zip(per_scale, tokens[torch.float32], strict=True)) / sum(
        t.numel() for t in tokens[torch.float32]
    )
    with torch.no_grad():
        x = vqvae.quantize.teacher_forcing_input(tokens[torch.float32])
        logits = {}
        for dtype in (torch.float32, torch.bfloat16):
            var.compute_dtype = dtype
            logits[dtype] = var(labels, x)
    var.compute_dtype = torch.float32
    a, b = logits[torch.float32], logits[torch.bfloat16]
    return {
        "greedy_tokens_equal": total,
        "greedy_per_scale": [round(r, 4) for r in per_scale],
        "teacher_forced_top1_equal": (a.argmax(-1) == b.argmax(-1)).float().mean().item(),
        "max_logit_diff": (a - b).abs().max().item(),
        "logit_std": a.std().item(),
    }


# ---- 4. speed ------------------------------------------------------------------------------------
def timed(fn: Callable[[int], Any], device: str, warmup: int, repeats: int) -> dict[str, float]:
    """Median seconds of fn(i) over repeats (after warmup calls) and the peak device memory of those calls."""
    for i in range(warmup):
        fn(-1 - i)
    reset_peak(device)
    seconds = []
    for i in range(repeats):
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        start = time.perf_counter()
        fn(i)
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        seconds.append(time.perf_counter() - start)
    return {"seconds": statistics.median(seconds), "peak_gb": peak_mb(device) / 1024}


def speed(vqvae: var_core.VQVAE, var: var_core.VAR, device: str, args: argparse.Namespace) -> dict[str, Any]:
    from editing import EditOptions, Editor, VarModel

    size = vqvae.image_size
    mask = np.zeros((size, size), dtype=bool)
    mask[size // 4 : 3 * size // 4, size // 4 : 3 * size // 4] = True
    sampling = var_core.SamplingOptions(cfg=1.5, top_k=args.top_k, top_p=0.96)
    rows: dict[str, Any] = {}
    for dtype in (torch.bfloat16, torch.float32):
        name = str(dtype).replace("torch.", "")
        var.compute_dtype = dtype
        editor = Editor(VarModel(vqvae, var), device=device, name="d16")
        options = EditOptions(seed=0, top_k=args.top_k)

        def edit(i: int, editor: Editor = editor, options: EditOptions = options) -> None:
            picture = np.random.default_rng(1000 + i).integers(0, 256, (size, size, 3), dtype=np.uint8)
            editor.inpaint(picture, mask, options)

        def generate(i: int) -> None:
            g = torch.Generator(device=device).manual_seed(max(i, 0))
            labels = torch.arange(args.batch, device=device) % var.num_classes
            var_core.generate(var, vqvae, labels, sampling, g)

        lat = timed(edit, device, args.warmup, args.repeats)
        gen = timed(generate, device, args.warmup, args.repeats)
        rows[f"ours {name}"] = {
            "edit_latency_s": lat["seconds"],
            "edit_peak_gb": lat["peak_gb"],
            "images_per_s": args.batch / gen["seconds"],
            "generate_peak_gb": gen["peak_gb"],
        }
    var.compute_dtype = torch.float32
    return rows


def original_speed(files: dict[str, Path], shapes: dict, args: argparse.Namespace) -> dict[str, Any]:
    """The original code on the same d16 weights, in its own process (it patches torch.nn globally)."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--_original", str(args.original)]
    cmd += ["--device", args.device, "--batch", str(args.batch), "--warmup", str(args.warmup)]
    cmd += ["--repeats", str(args.repeats), "--workdir", str(args.workdir)] + (["--small"] if args.small else [])
    cmd += ["--_files", json.dumps({k: str(v) for k, v in files.items()})]
    # The original is a folder of scripts, not a package: its process finds it through PYTHONPATH.
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
    """Inside the subprocess: build the original's d16 pair, load our files strictly, time its generation."""
    from models import build_vae_var  # type: ignore[import-not-found]

    files = {k: Path(v) for k, v in json.loads(args._files).items()}
    vq_cfg = {"V": 4096, "Cvae": 32, "ch": 160, **_original_vq(shapes)}
    cfg = shapes["var"]["d16"]
    vae, var = build_vae_var(
        device=args.device,
        patch_nums=shapes["patch_nums"],
        num_classes=shapes["classes"],
        depth=cfg["depth"],
        shared_aln=False,
        **vq_cfg,
    )
    vae.load_state_dict(torch.load(files["vae"], map_location=args.device, weights_only=True), strict=True)
    var.load_state_dict(torch.load(files["d16"], map_location=args.device, weights_only=True), strict=True)
    vae.eval()
    var.eval()
    rows: dict[str, Any] = {}
    for name, autocast in (("float32", False), ("float16 autocast", True)):

        def generate(i: int, batch: int = args.batch, autocast: bool = autocast) -> None:
            labels = torch.arange(batch, device=args.device) % shapes["classes"]
            with torch.inference_mode(), torch.autocast(args.device, enabled=autocast, dtype=torch.float16):
                var.autoregressive_infer_cfg(
                    B=batch, label_B=labels, g_seed=max(i, 0), cfg=1.5, top_k=args.top_k, top_p=0.96
                )

        one = timed(lambda i: generate(i, 1), args.device, args.warmup, args.repeats)
        many = timed(generate, args.device, args.warmup, args.repeats)
        rows[f"original {name}"] = {
            "generate_b1_s": one["seconds"],
            "images_per_s": args.batch / many["seconds"],
            "generate_peak_gb": many["peak_gb"],
        }
    return rows


def _original_vq(shapes: dict) -> dict[str, Any]:
    names = {"vocab_size": "V", "z_channels": "Cvae", "ch": "ch"}
    return {names[k]: v for k, v in shapes["vqvae"].items()}


# ---- main ----------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--small", action="store_true", help="tiny models and few scales (a CPU smoke run)")
    p.add_argument("--original", type=Path, help="a checkout of FoundationVision/VAR to time beside ours")
    p.add_argument("--models", type=Path, help="folder with the published .pth files to use where present")
    p.add_argument("--workdir", type=Path, default=Path("/tmp/var_gpu_check"), help="where random files go")
    p.add_argument("--keep", action="store_true", help="keep the random files (default: delete them)")
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--json", type=Path, help="write every number here")
    p.add_argument("--_original", help=argparse.SUPPRESS)
    p.add_argument("--_files", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    shapes = SMALL if args.small else FULL
    args.top_k = shapes["top_k"]
    if args.small:  # a smoke run: every step once
        args.warmup, args.repeats = 0, 1
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        raise SystemExit("No CUDA device here: run with --device cpu --small for a smoke run.")
    if args._original:
        print(json.dumps(run_original(args, shapes)))
        return 0

    report: dict[str, Any] = {"machine": machine_info(args.device, torch.get_num_threads()), "small": args.small}
    say(f"# VAR GPU check on {report['machine'].get('gpu', args.device)}, torch {torch.__version__}")
    say("## 1. files")
    files = build_files(args.workdir, shapes, args.device, args.models)
    try:
        report["load"], report["agreement"] = {}, {}
        for key in ("d30", "d16"):  # d16 last: it stays loaded for the speed rows
            say(f"## 2-3. {key}: load, bf16 vs fp32")
            vqvae, var, stats = load(files, key, args.device)
            report["load"][key] = stats
            device_gb = f"{stats['device_gb']:.2f} GB on the device" if stats["device_gb"] is not None else ""
            say(
                f"  load {stats['file_gb']:.2f} GB file: {stats['seconds']:.1f} s, "
                f"host peak +{stats['host_peak_gb']:.2f} GB {device_gb}"
            )
            agree = agreement(vqvae, var, args.device, batch=8)
            report["agreement"][key] = agree
            say(
                f"  bf16 vs fp32: greedy tokens equal {agree['greedy_tokens_equal']:.1%} (per scale "
                f"{agree['greedy_per_scale']}), teacher-forced top-1 equal {agree['teacher_forced_top1_equal']:.2%}, "
                f"max logit diff {agree['max_logit_diff']:.3g} (logit std {agree['logit_std']:.3g})"
            )
            if key == "d30":
                del vqvae, var
                gc.collect()
        say(f"## 4. d16 speed: edit at batch 1, generation at batch {args.batch}")
        rows = speed(vqvae, var, args.device, args)
        if args.original:
            rows.update(original_speed(files, shapes, args))
        report["speed"] = rows
        for name, row in rows.items():
            shown = (f"{k} {v:.3g}" if isinstance(v, float) else f"{k} {v}" for k, v in row.items())
            say(f"  {name:26s} " + ", ".join(shown))
    finally:
        if not args.keep:
            for path in files.values():
                if path.parent == args.workdir:
                    path.unlink(missing_ok=True)
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    say("# done")
    return 0


if __name__ == "__main__":
    sys.exit(main())
