"""Select object (GrabCut) on a photo-sized picture: the studio's way (GrabCut on a reduced copy, the edge
refined at full size) against GrabCut on the whole picture, in seconds, and how well they agree (IoU).

    python bench/select_object.py                       # a synthetic 741x500 photo, box around its object
    python bench/select_object.py --photo cat.jpg --box 120,40,560,470 --repeats 5
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from test_masks import _photo  # noqa: E402 (the tests' synthetic photo)

from editing.mask_tools import select_object  # noqa: E402
from studio.mask_panel import select  # noqa: E402
from studio.pictures import display_copy  # noqa: E402


def timed(run, repeats: int) -> tuple[float, np.ndarray]:
    """The median seconds of `repeats` calls of `run`, and its last answer."""
    times, out = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        out = run()
        times.append(time.perf_counter() - start)
    return statistics.median(times), out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--photo", help="a picture file (default: a synthetic 741x500 photo)")
    p.add_argument("--box", help="x0,y0,x1,y1 around the object in picture pixels (default: around the synthetic one)")
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args()
    if args.photo:
        picture = np.asarray(Image.open(args.photo).convert("RGB"))
        truth = None
    else:
        picture, truth = _photo(741, 500)
    hint = np.zeros(picture.shape[:2], bool)
    if args.box:
        x0, y0, x1, y1 = (int(v) for v in args.box.split(","))
    else:
        assert truth is not None, "--box is needed with --photo"
        ys, xs = np.nonzero(truth)
        x0, y0, x1, y1 = xs.min() - 25, ys.min() - 25, xs.max() + 25, ys.max() + 25
    hint[y0:y1, x0:x1] = True
    studio_s, fast = timed(lambda: select(hint, Image.fromarray(picture)), args.repeats)
    full_s, full = timed(lambda: select_object(picture, hint, work_side=None), args.repeats)
    # Before (issue 28): GrabCut on a copy of at most 640 px, its answer enlarged.
    small = np.asarray(display_copy(Image.fromarray(picture), 640))
    small_hint = np.asarray(Image.fromarray(hint).resize(small.shape[1::-1], Image.Resampling.NEAREST))
    before_s, _ = timed(lambda: select_object(small, small_hint, work_side=None), args.repeats)

    def iou(a: np.ndarray, b: np.ndarray) -> float:
        return float((a & b).sum() / max(1, (a | b).sum()))

    H, W = hint.shape
    print(f"{W}x{H} px, box {x1 - x0}x{y1 - y0} px, median of {args.repeats}")
    print(f"studio (reduced copy, edge refined): {studio_s:.2f} s")
    print(f"GrabCut on the whole picture:        {full_s:.2f} s")
    print(f"before: GrabCut on a 640 px copy:    {before_s:.2f} s")
    print(f"IoU studio vs whole-picture run:     {iou(fast, full):.4f}")
    if truth is not None:
        print(f"IoU vs the object: studio {iou(fast, truth):.4f}, whole picture {iou(full, truth):.4f}")


if __name__ == "__main__":
    main()
