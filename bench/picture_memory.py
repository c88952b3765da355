"""Peak memory and time per stage of one large edit, in a fresh process, on the demo model.

    python bench/picture_memory.py --side 7000                 # a 49 MP in-paint, one candidate
    python bench/picture_memory.py --side 4000 --json out.json
    python bench/picture_memory.py --kind gray16 --mask-kind gray16   # a 16-bit picture and mask
    python bench/picture_memory.py --mask-side 6999                   # refused: what the refusal costs

The picture and its mask are files as the studio's endpoints get them (PNG; a CMYK picture as TIFF), of one
kind each: `--kind` rgb, gray16, palette, cmyk or rgba, `--mask-kind` gray or gray16. The peak RSS is
measured above the idle process (model loaded, one small edit done): the rule in docs/operating.md
is at most about 8x the picture's RGB bytes. Stages: read (decode + mask), plan, sample, compose
(resize + feathered paste-back), save (PNG with parameters).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from common import figures_from_child
from PIL import Image


def peak_rss_bytes() -> int:
    """This process's peak resident memory since the last `reset_peak` (VmHWM)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def reset_peak() -> None:
    Path("/proc/self/clear_refs").write_text("5")


KINDS = ("rgb", "gray16", "palette", "cmyk", "rgba")  # how the picture file stores its pixels
MASK_KINDS = ("gray", "gray16")


def picture_of_kind(picture: np.ndarray, kind: str) -> Image.Image:
    """A uint8 RGB array as a PIL image of one kind: 8-bit RGB, 16-bit grey, 256-colour palette, CMYK or
    RGBA (half-transparent in its left quarter)."""
    rgb = Image.fromarray(picture)
    if kind == "gray16":
        return Image.fromarray(picture[..., 0].astype(np.uint16) * 257 + picture[..., 1] // 8)  # mode I;16
    if kind == "palette":
        return rgb.quantize(256)
    if kind == "cmyk":
        return rgb.convert("CMYK")
    if kind == "rgba":
        alpha = np.full(picture.shape[:2], 255, np.uint8)
        alpha[:, : picture.shape[1] // 4] = 128
        rgb.putalpha(Image.fromarray(alpha))
    return rgb


def make_files(
    folder: Path, side: int, inner: float, kind: str = "rgb", mask_kind: str = "gray", mask_side: int | None = None
) -> tuple[Path, Path]:
    """A smooth side x side picture of `kind` and a mask (mask_side x mask_side, default side) over the middle
    `inner` of each side; CMYK is saved as TIFF, the rest as PNG."""
    ramp = np.linspace(0, 255, side, dtype=np.float32)
    picture = np.empty((side, side, 3), np.uint8)
    picture[..., 0] = ramp[None, :]
    picture[..., 1] = ramp[:, None]
    picture[..., 2] = 128
    name = "picture.tif" if kind == "cmyk" else "picture.png"
    picture_of_kind(picture, kind).save(folder / name, **({} if kind == "cmyk" else {"compress_level": 1}))
    del picture
    m = mask_side or side
    mask = np.zeros((m, m), np.uint16 if mask_kind == "gray16" else np.uint8)
    a, b = int(m * (1 - inner) / 2), int(m * (1 + inner) / 2)
    mask[a:b, a:b] = 65535 if mask_kind == "gray16" else 255
    Image.fromarray(mask).save(folder / "mask.png", compress_level=1)  # I;16 or L, from the dtype
    return folder / name, folder / "mask.png"


def measure(picture: Path, mask: Path, candidates: int) -> dict[str, float]:
    """Run in this process: idle, then one edit of the picture and mask files, stage by stage."""
    from editing import EditError, EditOptions, Editor, EditRequest, save_png
    from editing.compose import compose
    from editing.plan import load_inputs, plan, resolve

    editor = Editor.from_pretrained("demo")
    small = np.zeros((64, 64), np.float32)
    small[16:40, 16:40] = 1
    editor.inpaint(np.full((64, 64, 3), 128, np.uint8), small, EditOptions(seed=0))
    side = Image.open(picture).width
    with tempfile.TemporaryDirectory() as tmp:
        reset_peak()
        idle = peak_rss_bytes()
        request = EditRequest("inpaint", str(picture), str(mask), options=EditOptions(seed=0, num_samples=candidates))
        times = {}
        started = time.perf_counter()
        options, conditioning = resolve(request, editor.geometry), editor.conditioning(request)
        try:
            inputs = load_inputs(request, editor.limits)
        except EditError as e:  # a refused request: what it cost to say so
            return {"side": side, "refused": str(e), "refused_above_idle_mb": round((peak_rss_bytes() - idle) / 1e6, 1)}
        times["read_s"] = time.perf_counter() - started
        peaks = {"read": peak_rss_bytes()}
        planned = plan(request, editor.geometry, inputs, options, conditioning)
        times["plan_s"] = time.perf_counter() - started - sum(times.values())
        peaks["plan"] = peak_rss_bytes()
        generated = editor._sample([planned], None, [0])[0]
        times["sample_s"] = time.perf_counter() - started - sum(times.values())
        peaks["sample"] = peak_rss_bytes()
        result = compose(planned, generated, editor.naming)
        times["compose_s"] = time.perf_counter() - started - sum(times.values())
        peaks["compose"] = peak_rss_bytes()
        del inputs, planned
        for i, image in enumerate(result.images):
            save_png(image, Path(tmp) / f"out-{i}.png", result.params)
        times["save_s"] = time.perf_counter() - started - sum(times.values())
        peak = peak_rss_bytes()
    rgb = side * side * 3
    return {
        "side": side,
        "megapixels": round(side * side / 1e6, 1),
        "candidates": candidates,
        "rgb_mb": round(rgb / 1e6, 1),
        "idle_rss_mb": round(idle / 1e6, 1),
        "peak_above_idle_mb": round((peak - idle) / 1e6, 1),
        "peak_over_rgb": round((peak - idle) / rgb, 2),
        **{k: round(v, 2) for k, v in times.items()},
        **{f"peak_after_{k}_mb": round((v - idle) / 1e6, 1) for k, v in peaks.items()},
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--side", type=int, default=7000, help="the picture's side in pixels (default 7000: 49 MP)")
    p.add_argument("--mask", type=float, default=0.7, help="the mask's share of each side (default 0.7)")
    p.add_argument("--candidates", type=int, default=1)
    p.add_argument("--kind", choices=KINDS, default="rgb", help="how the picture file stores its pixels")
    p.add_argument("--mask-kind", choices=MASK_KINDS, default="gray", help="the mask file: 8-bit or 16-bit grey")
    p.add_argument("--mask-side", type=int, help="the mask's side (default the picture's: another one is refused)")
    p.add_argument("--json", help="write the figures here")
    p.add_argument("--here", nargs=2, help=argparse.SUPPRESS)  # the measuring child: picture and mask files
    args = p.parse_args(argv)
    if args.here:
        print(json.dumps(measure(Path(args.here[0]), Path(args.here[1]), args.candidates)))
        return 0
    with tempfile.TemporaryDirectory() as tmp:  # made here: the measuring process starts clean
        picture, mask = make_files(Path(tmp), args.side, args.mask, args.kind, args.mask_kind, args.mask_side)
        command = [sys.executable, __file__, "--here", str(picture), str(mask), "--candidates", str(args.candidates)]
        return figures_from_child(command, args.json, {"kind": args.kind, "mask_kind": args.mask_kind})


if __name__ == "__main__":
    sys.exit(main())
