"""`python -m editing`: edit one image, or a folder of jobs, from the command line.

A folder job is an image `NAME.png|jpg|...` with its mask `NAME.mask.png` beside it and, optionally,
`NAME.json` holding the mode, class and any EditOptions field, e.g. {"mode": "edit_class", "class_id": 3}.
Results are PNGs with every parameter in their metadata; existing files are kept unless --overwrite.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import fields, replace
from pathlib import Path
from typing import Any

from tqdm import tqdm

from .editor import EditOptions, Editor
from .errors import EditError
from .metadata import save_png

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff", ".gif"}
MODES = ("inpaint", "edit_class", "outpaint", "generate")


def _jobs(args: argparse.Namespace) -> list[dict[str, Any]]:
    source = Path(args.input) if args.input else None
    base = {
        "mode": args.mode,
        "class_id": args.class_id,
        "left": args.left,
        "right": args.right,
        "top": args.top,
        "bottom": args.bottom,
        "zoom_out": args.zoom_out,
    }
    if source is None:
        return [{**base, "name": "generated"}]
    if source.is_file():
        return [{**base, "name": source.stem, "image": source, "mask": Path(args.mask) if args.mask else None}]
    if not source.is_dir():
        raise EditError(f"{source} is neither an image nor a folder of jobs.")
    jobs = []
    for image in sorted(p for p in source.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and ".mask" not in p.name):
        job = {**base, "name": image.stem, "image": image, "mask": next(source.glob(f"{image.stem}.mask.*"), None)}
        spec = image.with_suffix(".json")
        if spec.is_file():
            job.update(json.loads(spec.read_text()))
        jobs.append(job)
    if not jobs:
        raise EditError(f"No images in {source}; put NAME.png with NAME.mask.png there.")
    return jobs


def _run(editor: Editor, job: dict[str, Any], options: EditOptions):
    option_names = {f.name for f in fields(EditOptions)}
    options = replace(options, **{k: v for k, v in job.items() if k in option_names})
    mode = job["mode"]
    if mode == "generate":
        return editor.generate(job["class_id"] if job["class_id"] is not None else editor.var.num_classes, options)
    if mode == "outpaint":
        return editor.outpaint(
            job["image"], job["left"], job["right"], job["top"], job["bottom"], job["zoom_out"], options
        )
    if job.get("mask") is None:
        raise EditError(f"{job['name']} has no mask: pass --mask or put {job['name']}.mask.png beside it.")
    if mode == "edit_class":
        if job["class_id"] is None:
            raise EditError("A class edit needs --class-id.")
        return editor.edit_class(job["image"], job["mask"], job["class_id"], options)
    return editor.inpaint(job["image"], job["mask"], options)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m editing", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("input", nargs="?", help="an image, or a folder of jobs (omit to generate)")
    p.add_argument("--mask", help="mask image, white = regenerate (single image)")
    p.add_argument("--mode", choices=MODES, default="inpaint")
    p.add_argument("--class-id", type=int)
    for side in ("left", "right", "top", "bottom"):
        p.add_argument(f"--{side}", type=int, default=0, help="out-paint pixels")
    p.add_argument("--zoom-out", type=float)
    p.add_argument("--model", default="demo", help="demo, d16..d36, or a folder with a checkpoint pair")
    p.add_argument("--device")
    p.add_argument("--dtype")
    p.add_argument("--out-dir", default="edits")
    p.add_argument("--overwrite", action="store_true")
    defaults = EditOptions()
    for f in fields(EditOptions):
        kind = type(getattr(defaults, f.name)) if getattr(defaults, f.name) is not None else int
        if kind is bool:
            p.add_argument(f"--{f.name.replace('_', '-')}", action=argparse.BooleanOptionalAction, default=None)
        else:
            p.add_argument(f"--{f.name.replace('_', '-')}", type=kind, default=None)
    args = p.parse_args(argv)
    try:
        editor = Editor.from_pretrained(args.model, device=args.device, dtype=args.dtype)
        given = {f.name: getattr(args, f.name) for f in fields(EditOptions) if getattr(args, f.name) is not None}
        options = replace(editor.default_options(), **given)
        jobs = _jobs(args)
    except (EditError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    out_dir = Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    failures = 0
    for job in tqdm(jobs, desc="editing", unit="job", disable=len(jobs) == 1):
        try:
            result = _run(editor, job, options)
            for i, image in enumerate(result.images):
                suffix = f"-{i}" if len(result.images) > 1 else ""
                path = save_png(
                    image, out_dir / f"{job['name']}.{job['mode']}{suffix}.png", result.params, overwrite=args.overwrite
                )
                tqdm.write(f"{path}  (seed {result.seed})")
        except (EditError, ValueError, FileExistsError) as e:
            failures += 1
            tqdm.write(f"error: {job['name']}: {e}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
