"""Idle memory before and after large edits, in a fresh process, on the demo model.

    python bench/memory_after.py                      # 3 visitors' 9 MP in-paints at once
    python bench/memory_after.py --side 4000 --edits 4 --json out.json

Idle: the model loaded and one small edit done, measured as the resident memory (VmRSS) of the process.
The edits run as a studio runs them (`Editor.submit`, one visitor each, at once); once all are collected
and dropped, the idle memory is measured again. docs/operating.md's rule: back within 1.5x of the start.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from common import figures_from_child


def rss_mb() -> float:
    """This process's resident memory now, MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024 / 1e6
    raise RuntimeError("no VmRSS in /proc/self/status")


def measure(side: int, edits: int) -> dict[str, float]:
    """Run in this process: idle, `edits` large in-paints at once, idle again."""
    from editing import EditOptions, Editor, EditRequest

    editor = Editor.from_pretrained("demo")
    small = np.zeros((64, 64), np.uint8)
    small[16:40, 16:40] = 255
    editor.submit([EditRequest("inpaint", np.full((64, 64, 3), 128, np.uint8), small)]).result()
    start = rss_mb()
    picture = (np.random.default_rng(0).random((side, side, 3)) * 255).astype(np.uint8)
    mask = np.zeros((side, side), np.uint8)
    mask[side // 6 : side * 5 // 6, side // 6 : side * 5 // 6] = 255
    options = [EditOptions(seed=i) for i in range(edits)]
    jobs = [editor.submit([EditRequest("inpaint", picture, mask, options=o)], visitor=i) for i, o in enumerate(options)]
    for job in jobs:
        job.result()
    del jobs, picture, mask
    end = rss_mb()
    return {
        "side": side,
        "edits": edits,
        "idle_start_mb": round(start, 1),
        "idle_end_mb": round(end, 1),
        "end_over_start": round(end / start, 2),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--side", type=int, default=3000, help="the pictures' side in pixels (default 3000: 9 MP)")
    p.add_argument("--edits", type=int, default=3, help="large in-paints at once, one visitor each")
    p.add_argument("--json", help="write the figures here")
    p.add_argument("--here", action="store_true", help=argparse.SUPPRESS)  # the measuring child
    args = p.parse_args(argv)
    if args.here:
        print(json.dumps(measure(args.side, args.edits)))
        return 0
    command = [sys.executable, __file__, "--here", "--side", str(args.side), "--edits", str(args.edits)]
    return figures_from_child(command, args.json)


if __name__ == "__main__":
    sys.exit(main())
