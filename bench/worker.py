"""Benchmark worker: builds one side's d16-shaped models (random weights) and times tasks sent on stdin.

Protocol: one JSON object per line in ({"task": ..., ...}); one line out per task, prefixed by
`common.MARK`, with seconds (synchronised wall clock), peak_mb and base_mb (memory just before).
Sides: "ours" (/work/main var_core + editing) and "original" (FoundationVision/VAR via
`<original>/tools/orig_bench.py`, imported only here and only for that side).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from common import MARK, original_helpers, peak_mb, reset_peak, rss_mb, sync

EDIT_CLASS = 207  # any class id works with random weights


def reply(obj: dict[str, Any]) -> None:
    sys.stdout.write(MARK + json.dumps(obj) + "\n")
    sys.stdout.flush()


def labels_for(batch: int, seed: int, uncond: bool, num_classes: int, device: str) -> torch.Tensor:
    """The class labels `orig_bench.time_original` would draw for run 0 (or all unconditional)."""
    if uncond:
        return torch.full((batch,), num_classes, dtype=torch.long, device=device)
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 1000, (1, batch), generator=g)[0].to(device)


def source_image(device: str, size: int = 256, seed: int = 1234) -> torch.Tensor:
    """A deterministic smooth picture (1, 3, size, size) in [-1, 1] to edit."""
    g = torch.Generator().manual_seed(seed)
    low = torch.rand(1, 3, 8, 8, generator=g) * 2 - 1
    return torch.nn.functional.interpolate(low, size=(size, size), mode="bicubic").clamp(-1, 1).to(device)


def centre_box(size: int = 256, frac: float = 0.5) -> torch.Tensor:
    """(size, size) float mask, 1 on the centre box covering `frac` of each side (1 = regenerate)."""
    m = torch.zeros(size, size)
    a, b = round(size * (1 - frac) / 2), round(size * (1 + frac) / 2)
    m[a:b, a:b] = 1
    return m


class Ours:
    """This project's VAR d16 + VQVAE (random weights)."""

    def __init__(self, device: str, dtype: str, seed: int):
        import var_core
        from var_core.cpu_linear import prepack

        torch.manual_seed(seed)
        self.device = device
        self.vqvae = var_core.VQVAE().to(device).eval().requires_grad_(False)
        self.var = var_core.VAR(depth=16).to(device).eval().requires_grad_(False)
        self.var.compute_dtype = getattr(torch, dtype)
        prepack(self.var)  # as loading does (CPU, float32 only)
        self.num_classes = self.var.num_classes
        self._source = None

    def source(self):
        from editing.teacher_forcing import encode_source

        if self._source is None:
            self._source = encode_source(self.vqvae, source_image(self.device))
        return self._source

    def generate(
        self, batch: int, seed: int, uncond: bool = False, cfg: float = 1.5, top_k: int = 900, top_p: float = 0.96
    ) -> Callable[[], Any]:
        import var_core

        labels = labels_for(batch, seed, uncond, self.num_classes, self.device)
        options = var_core.SamplingOptions(cfg=cfg, top_k=top_k, top_p=top_p)

        def go() -> torch.Tensor:
            g = torch.Generator(self.device).manual_seed(seed)
            return var_core.generate(self.var, self.vqvae, labels, options, g)

        return go

    def encode(self, **_: Any) -> Callable[[], Any]:
        from editing.teacher_forcing import encode_source

        x = source_image(self.device)
        return lambda: encode_source(self.vqvae, x)

    def edit(
        self,
        seed: int,
        uncond: bool,
        cfg: float = 1.5,
        top_k: int = 900,
        top_p: float = 0.96,
        frac: float = 0.5,
        **_: Any,
    ) -> Callable[[], Any]:
        """Class edit (uncond False) or unconditional in-paint of the centre box; encoding is cached."""
        import var_core
        from editing.masks import scale_masks
        from editing.teacher_forcing import run_edit

        source = self.source()
        regenerate = scale_masks(centre_box(self.vqvae.image_size, frac), self.var.patch_nums, policy="touch")
        label = self.num_classes if uncond else EDIT_CLASS
        labels = torch.tensor([label], device=self.device)
        options = var_core.SamplingOptions(cfg=cfg, top_k=top_k, top_p=top_p)

        def go() -> torch.Tensor:
            g = torch.Generator(self.device).manual_seed(seed)
            f_hat, _ = run_edit(
                self.var, self.vqvae, labels, options, source=source, regenerate=regenerate, replay=False, generator=g
            )
            return self.vqvae.decode_fhat(f_hat)

        return go

    def editor_inpaint(
        self, seed: int, cfg: float = 1.5, top_k: int = 900, top_p: float = 0.96, frac: float = 0.5, **_: Any
    ) -> Callable[[], Any]:
        """`Editor.inpaint` end to end on a fresh Editor (so it includes encoding its crop, paste-back)."""
        import numpy as np
        from PIL import Image

        from editing import Editor, VarModel
        from editing.editor import EditOptions

        x = source_image("cpu")[0].permute(1, 2, 0).add(1).mul(127.5).round().clamp(0, 255).byte().numpy()
        picture = Image.fromarray(np.ascontiguousarray(x))
        mask = Image.fromarray((centre_box(picture.size[0], frac).numpy() * 255).astype(np.uint8), "L")
        options = EditOptions(seed=seed, cfg=cfg, top_k=top_k, top_p=top_p)

        def go() -> Any:
            return Editor(VarModel(self.vqvae, self.var), device=self.device).inpaint(picture, mask, options)

        return go


class Original:
    """FoundationVision/VAR d16 + VQVAE built by `<original>/tools/orig_bench.py` (random weights)."""

    def __init__(self, device: str, original: str, seed: int):
        root = Path(original)
        os.environ.setdefault("VAR_ORIG_DIR", str(root / "VAR"))
        with contextlib.redirect_stdout(io.StringIO()):
            vae, var = original_helpers(original).build_original_d16(seed)
        self.device = device
        self.vae, self.var = vae.to(device), var.to(device)
        if device != "cpu":
            self.var.rng = torch.Generator(device=device)
        self.num_classes = self.var.num_classes

    def generate(
        self, batch: int, seed: int, uncond: bool = False, cfg: float = 1.5, top_k: int = 900, top_p: float = 0.96
    ) -> Callable[[], Any]:
        labels = labels_for(batch, seed, uncond, self.num_classes, self.device)

        def go() -> torch.Tensor:
            return self.var.autoregressive_infer_cfg(
                B=batch, label_B=labels.clone(), g_seed=seed, cfg=cfg, top_k=top_k, top_p=top_p, more_smooth=False
            )

        return go


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--side", choices=("ours", "original"), required=True)
    p.add_argument("--device", default="cpu")
    p.add_argument("--dtype", default="float32", help="ours: compute precision (float32, bfloat16, float16)")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--original", default=None, help="folder holding VAR/ and tools/orig_bench.py")
    p.add_argument("--seed", type=int, default=0, help="weight-init seed")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    try:
        side: Any = (
            Ours(args.device, args.dtype, args.seed)
            if args.side == "ours"
            else Original(args.device, args.original, args.seed)
        )
    except Exception as e:  # noqa: BLE001 -- report any failure to the driver, then exit
        reply({"error": f"{type(e).__name__}: {e}\n{traceback.format_exc()}"})
        return
    params = sum(q.numel() for q in side.var.parameters())
    reply(
        {
            "side": args.side,
            "build_s": time.perf_counter() - t0,
            "var_params": params,
            "threads": torch.get_num_threads(),
            "rss_mb": rss_mb(),
        }
    )
    for line in sys.stdin:
        if not line.strip():
            continue
        req = json.loads(line)
        try:
            task = req.pop("task")
            fn = getattr(side, task)(**req)
            with torch.inference_mode():
                reset_peak(args.device)
                base = rss_mb() if args.device == "cpu" else torch.cuda.memory_allocated() / 2**20
                sync(args.device)
                t = time.perf_counter()
                fn()
                sync(args.device)
                dt = time.perf_counter() - t
            reply({"task": task, "seconds": dt, "peak_mb": peak_mb(args.device), "base_mb": base})
        except Exception as e:  # noqa: BLE001 -- report any failure to the driver, then exit
            reply({"error": f"{type(e).__name__}: {e}\n{traceback.format_exc()}"})
            return


if __name__ == "__main__":
    main()
