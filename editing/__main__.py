"""`var-edit` / `python -m editing`: edit one picture, a folder of jobs or a JSON list of jobs.

INPUT is a picture, a folder, a .json job list, or nothing (generate). A folder job is a picture
NAME.png|jpg|... with its mask NAME.mask.png beside it and, optionally, NAME.json holding any
request field or option, e.g. {"mode": "edit_class", "class_id": 3, "cfg": 4}. `--mask` gives one
mask for every picture of a folder (scaled to each). A .json job list is a list of such objects
with "image" (and "mask") paths relative to the list's folder and an optional "name".

Results are PNGs (OUT/NAME.MODE.png, -1, -2 ... for several candidates) with every parameter in
their metadata. A job without a seed gets one derived from its name, so a rerun gives the same
pictures: outputs that exist with the same parameters are skipped, others are never overwritten
without --overwrite. A bad job fails alone, by name; the exit code is 1 if any failed. A full disk
stops the run (exit code 3) with the jobs left listed as not tried: the same command, run again once
there is room, does them.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from tqdm import tqdm

from var_core.zoo import fetch

from .batch import Job, Report, name_seed, run_batch, write_report
from .canvas import load_mask, open_guarded
from .editor import Editor
from .errors import EditError
from .families import defaults_text
from .models import model_defaults, resolve
from .modes import Field, mode_names, registered
from .options import EditOptions, OptionSpec, option_fields, range_text
from .request import EditRequest

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff", ".gif"}


def _option_flag(parser: argparse.ArgumentParser, name: str, default: Any, spec: OptionSpec) -> None:
    flag = f"--{name.replace('_', '-')}"
    detail = f"{spec.label}: {spec.help}"
    if spec.kind in (int, float) and spec.low is not None:
        detail += f" A number{range_text(spec)}."
    detail += f" Default: {defaults_text(name, default)}, or the model's defaults.json."
    detail = detail.replace("%", "%%")  # argparse formats help with %
    if spec.kind is bool:
        parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=None, help=detail)
    elif spec.choices:
        parser.add_argument(flag, default=None, choices=spec.choices, help=detail)
    else:
        metavar = "TEXT" if spec.text else spec.kind.__name__.upper()
        parser.add_argument(flag, default=None, metavar=metavar, help=detail)


def mode_fields() -> dict[Field, list[str]]:
    """Every registered mode's request fields, the families' included (pictures aside: INPUT and --mask), with the
    modes having each."""
    found: dict[str, tuple[Field, list[str]]] = {}
    for mode in registered():
        for f in mode.request_fields:
            if not f.picture:
                found.setdefault(f.name, (f, []))[1].append(mode.name)
    return dict(found.values())


def needed_by(name: str) -> list[str]:
    """The modes whose request needs field `name` (a prompt edit its prompt; a generation takes it or not)."""
    return [mode.name for mode in registered() for f in mode.request_fields if f.name == name and f.required]


def _field_flag(parser: argparse._ArgumentGroup, f: Field, modes: list[str]) -> None:
    number = "A whole number" if f.spec.kind is int else "A number"
    detail = f"{' / '.join(modes)}: {f.spec.help}{range_text(f.spec) and f' {number}{range_text(f.spec)}.'}"
    needed = needed_by(f.name)
    if needed and needed != modes:
        detail += f" Needed by {' / '.join(needed)}; the other modes may go without."
    if f.spec.text:
        detail += f" Text of at most {f.spec.max_length} characters."
    metavar = {int: "INT", float: "NUMBER"}.get(f.spec.kind, "TEXT" if f.spec.text else None)
    parser.add_argument(
        f"--{f.name.replace('_', '-')}", dest=f.name, choices=f.spec.choices, metavar=metavar,
        help=detail.replace("%", "%%"),
    )  # fmt: skip


def _parse_number(text: str, kind: type) -> Any:
    try:
        return int(text) if kind is int else float(text)
    except ValueError:
        return text  # EditOptions refuses it with a sentence that names the option


def build_parser(options_cls: type = EditOptions) -> argparse.ArgumentParser:
    """The CLI's flags: request fields, model and output, and one flag per option of the table."""
    p = argparse.ArgumentParser(
        prog="var-edit", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("input", nargs="?", help="a picture, a folder of jobs, a .json job list (omit to generate)")
    p.add_argument("--mask", help="mask picture, white or any colour = regenerate (a folder: the same mask for all)")
    p.add_argument("--mode", choices=mode_names(), help="default: inpaint, or generate without INPUT")
    fields = p.add_argument_group("mode fields (editing/modes), for the modes named")
    for f, modes in mode_fields().items():
        _field_flag(fields, f, modes)
    p.add_argument(
        "--model", default="demo", help="demo, d16..d36, infinity-2b, infinity-125m, or a model folder (its path)"
    )
    p.add_argument(
        "--offline",
        action="store_true",
        help="never download: a published model's files must be in models/ or the Hugging Face cache",
    )
    p.add_argument("--device", help="cpu, cuda, mps (default: the best available)")
    p.add_argument("--dtype", help="float32, bfloat16 or float16 (default: bfloat16 on CUDA)")
    p.add_argument("--out-dir", default="edits", help="folder for the results (default ./edits)")
    p.add_argument("--overwrite", action="store_true", help="replace outputs made with other parameters")
    p.add_argument("--batch", type=int, default=8, help="requests sampled together in one pass (default 8)")
    p.add_argument(
        "--threads",
        type=int,
        help="CPU threads per model (default: torch's, one per core); a seeded job gives the bit-identical "
        "picture wherever it runs with the same device type and thread count",
    )
    cluster = p.add_argument_group("Ray (pip install .[ray]): spread the jobs over a pool of model workers")
    cluster.add_argument("--ray", metavar="ADDRESS", help="'local' starts Ray on this machine; else a cluster address")
    cluster.add_argument("--workers", type=int, default=1, help="model workers, each loads the model once (default 1)")
    cluster.add_argument("--gpus-per-worker", type=float, default=0.0, help="GPUs per worker (default 0: CPU)")
    cluster.add_argument("--cpus-per-worker", type=float, default=1.0, help="CPUs per worker (default 1)")
    options = p.add_argument_group("options (default: the model's)")
    for name, default, spec in option_fields(options_cls):
        _option_flag(options, name, default, spec)
    return p


def _given_options(args: argparse.Namespace, options_cls: type) -> dict[str, Any]:
    given = {}
    for name, _, spec in option_fields(options_cls):
        value = getattr(args, name)
        if value is None:
            continue
        if spec.kind in (int, float):
            value = None if name == "seed" and value.lower() in ("none", "random") else _parse_number(value, spec.kind)
        given[name] = value
    return given


def _base(args: argparse.Namespace) -> dict[str, Any]:
    base: dict[str, Any] = {"mode": args.mode or ("inpaint" if args.input else "generate")}
    for f in mode_fields():
        text = getattr(args, f.name, None)
        if text is not None:
            base[f.name] = _parse_number(text, f.spec.kind) if f.spec.kind in (int, float) else text
    return base


def _merge(base: dict[str, Any], given: dict[str, Any], job: dict[str, Any]) -> dict[str, Any]:
    """A job's own fields over the command line's; its options over the command line's options."""
    data = {**base, **{k: v for k, v in job.items() if k != "options"}}
    own = job.get("options", {})
    data["options"] = {**given, **own} if isinstance(own, dict) else own
    return data


def _make(name: str, data: dict[str, Any], defaults: EditOptions, base_dir: Path | None = None) -> Job:
    try:
        request = EditRequest.from_dict(data, defaults, base_dir)
        if request.options.seed is None:
            request = request.with_options(seed=name_seed(name))
        return Job(name, request)
    except EditError as e:
        return Job(name, error=str(e))


def _scaled_mask(mask_path: Path, image_path: Path) -> np.ndarray:
    """One mask for a folder: thresholded by the mask rule, scaled to the picture (nearest)."""
    with open_guarded(image_path) as image:
        size = image.size
    with open_guarded(mask_path, "mask") as raw:
        mask = load_mask(raw, raw.size)
    scaled = Image.fromarray(mask.astype(np.uint8) * 255).resize(size, Image.NEAREST)
    return np.asarray(scaled) >= 128


def collect_jobs(args: argparse.Namespace, defaults: EditOptions, given: dict[str, Any]) -> list[Job]:
    """Every job the command line asks for, each checked on its own."""
    base = {**_base(args), "options": given}
    if not args.input:
        return [_make("generated", base, defaults)]
    source = Path(args.input)
    if source.suffix.lower() == ".json" and source.is_file():
        return _list_jobs(source, args, defaults, given)
    if source.is_file():
        data = {**base, "image": str(source)}
        if args.mask:
            data["mask"] = args.mask
        return [_make(source.stem, data, defaults)]
    if not source.is_dir():
        raise EditError(f"{source} is neither a picture, a folder of jobs nor a .json job list.")
    pictures = sorted(p for p in source.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and ".mask." not in p.name)
    if not pictures:
        raise EditError(f"No pictures in {source}; put NAME.png with NAME.mask.png there.")
    return [_folder_job(picture, base, args, defaults, given) for picture in pictures]


def _list_jobs(source: Path, args: argparse.Namespace, defaults: EditOptions, given: dict[str, Any]) -> list[Job]:
    """The jobs of a .json job list (pictures relative to its folder)."""
    try:
        items = json.loads(source.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise EditError(f"{source.name} is not a readable JSON job list ({e.__class__.__name__}).") from e
    if not isinstance(items, list):
        raise EditError(f"{source.name} must hold a JSON list of jobs.")
    jobs = []
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            jobs.append(Job(f"job{i}", error=f"job {i} is not a JSON object"))
            continue
        name = item["name"] if isinstance(item.get("name"), str) and item["name"].strip() else f"job{i}"
        jobs.append(_make(name, _merge(_base(args), given, item), defaults, source.parent))
    return jobs


def _folder_job(
    picture: Path, base: dict[str, Any], args: argparse.Namespace, defaults: EditOptions, given: dict[str, Any]
) -> Job:
    """A folder's picture with its own mask (NAME.mask.png, else --mask scaled to it) and NAME.json."""
    name, folder = picture.stem, picture.parent
    data: dict[str, Any] = {**base, "image": str(picture)}
    own = [m for m in folder.iterdir() if m.name.startswith(f"{name}.mask.") and m.suffix.lower() in IMAGE_SUFFIXES]
    try:
        if own:
            data["mask"] = str(own[0])
        elif args.mask:
            data["mask"] = _scaled_mask(Path(args.mask), picture)
        spec = picture.with_suffix(".json")
        if spec.is_file():
            extra = json.loads(spec.read_text())
            if not isinstance(extra, dict):
                raise EditError(f"{spec.name} must hold a JSON object of request fields and options.")
            data = _merge(data, given, extra)
    except json.JSONDecodeError:
        return Job(name, error=f"{name}.json is not valid JSON")
    except EditError as e:
        return Job(name, error=str(e))
    return _make(name, data, defaults)


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit code (0 all done, 1 some jobs failed, 2 could not start,
    3 stopped before every job was tried: the output folder took no more)."""
    args = build_parser().parse_args(argv)
    out_dir = Path(args.out_dir)
    refusal = _refusal(args, out_dir)
    if refusal is not None:
        print(f"error: {refusal}", file=sys.stderr)
        return 2
    args.threads = args.threads or torch.get_num_threads()
    try:
        torch.set_num_threads(args.threads)
        if args.ray:
            editor = None
            if resolve(args.model).kind == "published":  # fetch a published model once, here, not in every worker
                fetch(args.model, offline=args.offline or None)
        else:
            editor = Editor.from_pretrained(
                args.model, device=args.device, dtype=args.dtype, download=True, offline=args.offline or None
            )
        defaults = editor.defaults if editor is not None else model_defaults(args.model)
        jobs = collect_jobs(args, defaults, _given_options(args, EditOptions))
    except (EditError, ValueError) as e:  # CheckpointError is a ValueError
        print(f"error: {e}", file=sys.stderr)
        return 2
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        print(f"error: the folder {out_dir} cannot be made ({e.strerror or e}); name another.", file=sys.stderr)
        return 2
    if args.ray:
        from .ray_batch import run_on_ray

        report, seconds = run_on_ray(jobs, out_dir, args)
    else:
        report, seconds = _run_here(editor, jobs, out_dir, args)
    return _tell(report, seconds, out_dir)


def _refusal(args: argparse.Namespace, out_dir: Path) -> str | None:
    """Why the command line cannot start, before any model is loaded (None: it can)."""
    if args.input and not Path(args.input).exists():
        return f"{args.input} does not exist: give a picture, a folder of jobs or a .json job list."
    if out_dir.exists() and not out_dir.is_dir():
        return f"--out-dir {out_dir} is a file; name a folder."
    for flag, value in (("--batch", args.batch), ("--workers", args.workers), ("--threads", args.threads)):
        if value is not None and value < 1:
            return f"{flag} must be at least 1."
    return None


def _tell(report: Report, seconds: float, out_dir: Path) -> int:
    """Say what the run did, write its report -> the exit code."""
    for name, reason in report.failed.items():
        print(f"failed: {name}: {reason}", file=sys.stderr)
    not_tried = f", {len(report.not_tried)} not tried" if report.not_tried else ""
    print(
        f"{len(report.done)} done, {len(report.skipped)} skipped (already there with the same parameters), "
        f"{len(report.failed)} failed{not_tried}, in {seconds:.1f} s."
    )
    try:
        where = write_report(report, seconds, out_dir)
        if where.parent != out_dir:
            print(f"The report could not be written in {out_dir}; it is {where}.", file=sys.stderr)
    except OSError as e:
        print(f"The report could not be written ({e.strerror or e}); here it is:", file=sys.stderr)
        print(json.dumps(report.as_dict(seconds), indent=2), file=sys.stderr)
    if report.stopped is not None:
        print(f"stopped: {report.stopped}", file=sys.stderr)
        return 3
    return 1 if report.failed else 0


def _run_here(editor: Editor, jobs: list[Job], out_dir: Path, args: argparse.Namespace) -> tuple[Report, float]:
    """Run the jobs in this process, `--batch` to a pass, until the output folder takes no more."""
    report, started = Report(), time.monotonic()
    bar = progress_bar(len(jobs))
    for start in range(0, len(jobs), args.batch):
        for outcome in run_batch(editor, jobs[start : start + args.batch], out_dir, args.overwrite):
            for path in outcome.get("written") or []:
                tqdm.write(path)
            report.add(outcome)
            bar.update(1)
            bar.set_postfix(report.progress(started))
        if report.stopped is not None:
            report.stop(jobs[start + args.batch :])
            break
    bar.close()
    return report, time.monotonic() - started


def progress_bar(total: int) -> tqdm:
    """One bar for the whole run."""
    return tqdm(total=total, desc="editing", unit="job", disable=total <= 1)


if __name__ == "__main__":
    sys.exit(main())
