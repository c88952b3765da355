"""Peak memory of loading a published-format VAR checkpoint: ours against the original's way.

    python bench/bench_loading.py --depth 30   # builds /tmp/var_d30_random.pth (~8 GB), measures, deletes it
    python bench/bench_loading.py --depth 16 --keep --methods ours,original,ours-bf16

The file is `var_core.VAR(depth=D).state_dict()` saved with `torch.save` (random weights, the
original's key names and shapes, float32). Every load runs in a fresh Python process and reports
its RSS high-water mark (VmHWM, Linux), which includes the interpreter and torch (`baseline`).

Methods:
- ours: `var_core.load_var(file, vqvae, device)` (mmap, meta-device model, one tensor at a time).
- ours-bf16: the same with weight_dtype=bfloat16 (the transformer blocks stored in bfloat16).
- original: what the original code does: build the model on the CPU (random init), then
  `torch.load(file, map_location="cpu")` and `load_state_dict(strict=True)`, then `.to(device)`.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

GB = 1e9


def _status_kb(field: str) -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return float(line.split()[1]) * 1024
    return float("nan")


def _available_ram() -> float:
    with open("/proc/meminfo") as fh:
        for line in fh:
            if line.startswith("MemAvailable:"):
                return float(line.split()[1]) * 1024
    return float("nan")


def make(depth: int, out: Path) -> None:
    """Write a random-weight VAR-d{depth} in the published format (plain float32 state dict)."""
    import torch

    import var_core

    torch.manual_seed(0)
    model = var_core.VAR(depth=depth)
    tmp = out.with_suffix(".tmp")
    torch.save(model.state_dict(), tmp)
    tmp.replace(out)


def measure(method: str, path: Path, device: str, depth: int) -> dict:
    """Load `path` once with `method` in this (fresh) process; RSS numbers in bytes."""
    import torch

    import var_core

    with torch.device("meta"):  # (the first use of `meta` in a process costs ~75 MB once: torch's meta kernels)
        vqvae = var_core.VQVAE()  # load_var only reads its vocabulary, width and schedule
    baseline = _status_kb("VmRSS")
    start = time.perf_counter()
    if method.startswith("ours"):
        dtype = torch.bfloat16 if method == "ours-bf16" else torch.float32
        model = var_core.load_var(path, vqvae, device=device, dtype=dtype, weight_dtype=dtype)
    elif method == "original":
        model = var_core.VAR(depth=depth)
        state = torch.load(path, map_location="cpu", weights_only=True)
        model.load_state_dict(state, strict=True)
        del state
        model = model.to(device)
    else:
        raise SystemExit(f"unknown method {method!r}")
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    peak = _status_kb("VmHWM")
    weights = sum(t.numel() * t.element_size() for t in model.state_dict().values())
    check = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    same = all(
        torch.equal(check[k].to(v.dtype), v.cpu()) if not k.startswith("blocks.") or method != "ours-bf16" else True
        for k, v in model.state_dict().items()
        if k in ("head.weight", "class_emb.weight", "blocks.0.ffn.fc1.weight", "lvl_1L", "attn_bias_for_masking")
    )
    return {
        "method": method,
        "device": device,
        "baseline": baseline,
        "peak": peak,
        "seconds": seconds,
        "weights": weights,
        "values_ok": same,
        "cuda_peak": torch.cuda.max_memory_allocated() if device.startswith("cuda") else None,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--depth", type=int, default=30)
    p.add_argument("--file", type=Path, help="checkpoint to measure (default: /tmp/var_d{depth}_random.pth, built)")
    p.add_argument("--methods", default="ours,original")
    p.add_argument("--device", default="cpu")
    p.add_argument("--keep", action="store_true", help="keep the built file")
    p.add_argument("--json", type=Path, help="write the results here")
    p.add_argument("--_make", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--_measure", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    path = args.file or Path(f"/tmp/var_d{args.depth}_random.pth")
    if args._make:
        make(args.depth, path)
        return 0
    if args._measure:
        print(json.dumps(measure(args._measure, path, args.device, args.depth)))
        return 0

    here = [sys.executable, str(Path(__file__).resolve()), "--depth", str(args.depth), "--file", str(path)]
    built = False
    if not path.is_file():
        expected = 4 * 18 * (64 * args.depth) ** 2 * args.depth + 0.1 * GB  # float32, 18 C^2 weights per block
        free_disk = shutil.disk_usage(path.parent).free
        if free_disk < expected * 1.2:
            raise SystemExit(f"{free_disk / GB:.1f} GB free in {path.parent}, the file needs ~{expected / GB:.1f} GB.")
        if _available_ram() < expected * 1.3:
            raise SystemExit(f"{_available_ram() / GB:.1f} GB RAM available, building needs ~{expected / GB:.1f} GB.")
        print(f"building {path} ...", file=sys.stderr, flush=True)
        start = time.perf_counter()
        subprocess.run([*here, "--_make"], check=True)
        print(f"built in {time.perf_counter() - start:.0f} s", file=sys.stderr, flush=True)
        built = True
    size = path.stat().st_size
    results = []
    try:
        for method in args.methods.split(","):
            if method == "original" and _available_ram() < 2.2 * size:
                print(f"skipping original: it needs ~{2.1 * size / GB:.1f} GB RAM", file=sys.stderr)
                continue
            out = subprocess.run(
                [*here, "--device", args.device, "--_measure", method], check=True, capture_output=True, text=True
            )
            r = json.loads(out.stdout.strip().splitlines()[-1])
            r["file"] = size
            results.append(r)
            print(
                f"{method:10s} {args.device}: file {size / GB:.2f} GB | peak RSS {r['peak'] / GB:.2f} GB = "
                f"{r['peak'] / size:.2f}x the file (above the {r['baseline'] / GB:.2f} GB baseline: "
                f"{(r['peak'] - r['baseline']) / size:.2f}x) | {r['seconds']:.1f} s | values ok: {r['values_ok']}"
                + (f" | CUDA peak {r['cuda_peak'] / GB:.2f} GB" if r["cuda_peak"] else ""),
                flush=True,
            )
    finally:
        if built and not args.keep:
            os.unlink(path)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
