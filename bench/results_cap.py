"""How much disk a studio's results take after several large in-paints, with and without a cap.

    python bench/results_cap.py --side 6000 --edits 5 --max-results-mb 300

Starts `app.py` with its own temp folder and `--max-results-mb`, sends `--edits` in-paints of one
photo-like picture (smooth colour fields with grain, saved as JPEG: the kind of file people upload)
through gradio_client, and prints after each the megabytes of result files in the studio's folder
(its own copies and the copies Gradio serves) and the largest seen.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image
from soak import start_app  # bench/ is on the path when this runs as a script


def photo(side: int, folder: Path) -> tuple[Path, Path]:
    """A photo-like picture (smooth fields and grain) as JPEG, and a mask over its middle ninth."""
    rng = np.random.default_rng(0)
    coarse = Image.fromarray(rng.integers(0, 256, (12, 12, 3), np.uint8)).resize((side, side), Image.BICUBIC)
    grain = rng.integers(-12, 13, (side, side, 1), np.int16)
    picture = np.clip(np.asarray(coarse, np.int16) + grain, 0, 255).astype(np.uint8)
    Image.fromarray(picture).save(folder / "photo.jpg", quality=90)
    mask = np.zeros((side, side), np.uint8)
    mask[side // 3 : 2 * side // 3, side // 3 : 2 * side // 3] = 255
    Image.fromarray(mask).save(folder / "mask.png")
    return folder / "photo.jpg", folder / "mask.png"


def results_mb(tmp: Path) -> float:
    return sum(p.stat().st_size for p in tmp.glob("var-edit-app-*/**/var-edit-seed*.png")) / 2**20


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--side", type=int, default=6000)
    p.add_argument("--edits", type=int, default=5)
    p.add_argument("--max-results-mb", type=float, default=300)
    args = p.parse_args(argv)
    from gradio_client import Client, handle_file

    tmp, files = Path(tempfile.mkdtemp(prefix="var-edit-cap-")), Path(tempfile.mkdtemp(prefix="var-edit-cap-files-"))
    proc = None
    try:
        picture, mask = photo(args.side, files)
        proc, url = start_app(tmp, ["--max-results-mb", f"{args.max_results_mb:g}"])
        client = Client(url, verbose=False)
        kept = []
        for seed in range(args.edits):
            sent = {"image": handle_file(str(picture)), "mask": handle_file(str(mask)), "options": {"seed": seed}}
            client.predict(**sent, api_name="/inpaint")
            kept.append(round(results_mb(tmp), 1))
            print(f"after edit {seed + 1}: {kept[-1]} MB of results kept", flush=True)
        figures = {
            "side": args.side,
            "upload_mb": round(picture.stat().st_size / 2**20, 1),
            "max_results_mb": args.max_results_mb,
            "kept_mb_after_each": kept,
            "kept_mb_max": max(kept),
        }
        print(json.dumps(figures))
        return 0
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(timeout=60)
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(files, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
