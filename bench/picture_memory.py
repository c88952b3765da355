"""Peak memory and time per stage of one large edit, in a fresh process, on the demo model.

    python bench/picture_memory.py --side 7000                 # a 49 MP in-paint, one candidate
    python bench/picture_memory.py --side 4000 --json out.json

The picture and its mask are PNG files (as the studio's endpoints get them). The peak RSS is
measured above the idle process (model loaded, one small edit done): the rule in docs/operating.md
is at most about 8x the picture's RGB bytes. Stages: read (decode + mask), plan, sample, compose
(resize + feathered paste-back), save (PNG with parameters).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent


def peak_rss_bytes() -> int:
    """This process's peak resident memory since the last `reset_peak` (VmHWM)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def reset_peak() -> None:
    Path("/proc/self/clear_refs").write_text("5")


def make_files(folder: Path, side: int, inner: float) -> tuple[Path, Path]:
    """A smooth side x side picture and a mask over the middle `inner` of each side."""
    ramp = np.linspace(0, 255, side, dtype=np.float32)
    picture = np.empty((side, side, 3), np.uint8)
    picture[..., 0] = ramp[None, :]
    picture[..., 1] = ramp[:, None]
    picture[..., 2] = 128
    Image.fromarray(picture).save(folder / "picture.png", compress_level=1)
    del picture
    mask = np.zeros((side, side), np.uint8)
    a, b = int(side * (1 - inner) / 2), int(side * (1 + inner) / 2)
    mask[a:b, a:b] = 255
    Image.fromarray(mask).save(folder / "mask.png", compress_level=1)
    return folder / "picture.png", folder / "mask.png"


def measure(picture: Path, mask: Path, candidates: int) -> dict[str, float]:
    """Run in this process: idle, then one edit of the picture and mask files, stage by stage."""
    from editing import EditOptions, Editor, EditRequest, save_png
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
        options, label = resolve(request, editor.geometry)
        inputs = load_inputs(request, editor.limits)
        times["read_s"] = time.perf_counter() - started
        peaks = {"read": peak_rss_bytes()}
        planned = plan(request, editor.geometry, inputs, options, label)
        times["plan_s"] = time.perf_counter() - started - sum(times.values())
        peaks["plan"] = peak_rss_bytes()
        generated = editor._sample([planned], None, [0])[0]
        times["sample_s"] = time.perf_counter() - started - sum(times.values())
        peaks["sample"] = peak_rss_bytes()
        result = compose(planned, generated, editor.name, editor.class_names)
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
    p.add_argument("--json", help="write the figures here")
    p.add_argument("--here", nargs=2, help=argparse.SUPPRESS)  # the measuring child: picture and mask files
    args = p.parse_args(argv)
    if args.here:
        print(json.dumps(measure(Path(args.here[0]), Path(args.here[1]), args.candidates)))
        return 0
    with tempfile.TemporaryDirectory() as tmp:  # made here: the measuring process starts clean
        picture, mask = make_files(Path(tmp), args.side, args.mask)
        command = [sys.executable, __file__, "--here", str(picture), str(mask), "--candidates", str(args.candidates)]
        child = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    if child.returncode != 0:
        sys.stderr.write(child.stderr)
        return child.returncode
    figures = json.loads(child.stdout.strip().splitlines()[-1])
    print(json.dumps(figures, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
