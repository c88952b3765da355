"""`var-edit-train DATA --from MODEL --out OUT` (also `python -m training`): fine-tune a VAR pair on your classes.

DATA holds one sub-folder of pictures per class (the sub-folder names are the classes; a classes.json may give
display names). MODEL is `demo`, a published name (d16 ... d36, downloaded on first use) or a model folder.
OUT becomes a model folder that `Editor.from_pretrained(OUT)`, `var-edit --model OUT` and the studio's
`--models-dir` load as they are, rewritten at every checkpoint. `--ray local|ADDRESS --workers N` runs the same
training data-parallel under Ray Train. Docs: docs/training.md.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from training.class_folder import ClassFolder, DataError, load_class_folder
from training.finetune import (
    PARTS,
    Progress,
    Recipe,
    StartPoint,
    TrainingError,
    finetune,
    load_start,
    new_class_table,
)
from training.run_folder import RunFolder, prepare_out


def _parts(text: str) -> tuple[str, ...]:
    parts = tuple(p.strip() for p in text.split(",") if p.strip())
    if not parts or any(p not in PARTS for p in parts):
        raise argparse.ArgumentTypeError(f"use var, decoder or var,decoder (not {text!r})")
    return parts


def parser() -> argparse.ArgumentParser:
    """The command line."""
    p = argparse.ArgumentParser(
        prog="var-edit-train", description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter
    )
    p.add_argument("data", metavar="DATA", help="a folder with one sub-folder of pictures per class")
    p.add_argument("--from", dest="start", default="demo", metavar="MODEL", help="demo, d16 ... d36, or a model folder")
    p.add_argument("--out", required=True, help="the model folder to write (new, or the run's own with --resume)")
    p.add_argument("--parts", type=_parts, default=("var",), help="what to train: var, decoder or var,decoder")
    p.add_argument("--steps", type=int, default=None, help="steps to train (with --minutes: whichever ends first)")
    p.add_argument("--minutes", type=float, default=None, help="wall-clock budget in minutes")
    p.add_argument("--batch", type=int, default=Recipe.batch, help="pictures per step, over all workers")
    p.add_argument("--lr", type=float, default=Recipe.lr, help="the transformer's peak learning rate")
    p.add_argument("--decoder-lr", type=float, default=Recipe.decoder_lr, help="the decoder's peak learning rate")
    p.add_argument("--warmup", type=int, default=None, help="warm-up steps (default: 10%% of the steps)")
    p.add_argument("--class-dropout", type=float, default=Recipe.class_dropout, help="share of unconditional labels")
    p.add_argument("--no-flip", dest="flip", action="store_false", help="no horizontal flips")
    p.add_argument("--crop", type=float, default=Recipe.crop, help="crops keep at least this share of a side (1: none)")
    p.add_argument(
        "--bf16", action=argparse.BooleanOptionalAction, default=None, help="bfloat16 (default: where it is fast)"
    )
    p.add_argument("--seed", type=int, default=Recipe.seed)
    p.add_argument("--save-every", type=int, default=Recipe.save_every, help="steps between checkpoints")
    p.add_argument("--samples-every", type=int, default=Recipe.samples_every, help="steps between sample grids")
    p.add_argument("--resume", action="store_true", help="continue the run in OUT exactly where it stopped")
    p.add_argument("--device", default=None, help="cpu, cuda, ... (default: the best there is)")
    p.add_argument("--threads", type=int, default=None, help="CPU threads per process")
    p.add_argument("--ray", default=None, metavar="ADDRESS", help="run under Ray Train: local, or a cluster address")
    p.add_argument("--workers", type=int, default=2, help="Ray Train workers (data-parallel)")
    p.add_argument("--gpus-per-worker", type=float, default=0, help="GPUs per Ray worker (0: CPU and gloo)")
    p.add_argument("--max-failures", type=int, default=3, help="worker failures Ray restarts from a checkpoint")
    return p


RECIPE_FLAGS = ("start", "parts", "steps", "minutes", "batch", "lr", "decoder_lr", "warmup", "class_dropout")
RECIPE_FLAGS += ("flip", "crop", "bf16", "seed", "save_every", "samples_every")


def recipe_from(args: argparse.Namespace, state: dict[str, Any] | None) -> Recipe:
    """The recipe: the flags, or on --resume the recorded one with a new budget if one is given."""
    if state is None:
        return Recipe(**{k: getattr(args, k) for k in RECIPE_FLAGS})
    given = dict(state["recipe"])
    if args.steps is not None or args.minutes is not None:
        given.update(steps=args.steps, minutes=args.minutes)
    return Recipe.from_dict(given)


def prepare(
    recipe: Recipe, data_dir: str | Path, state: dict[str, Any] | None, say: Any = print, device: str = "cpu"
) -> tuple[StartPoint, ClassFolder]:
    """The start model and the data, checked against each other (and against a resumed run's classes)."""
    start = load_start(recipe.start, device)
    data = load_class_folder(data_dir, start.vqvae.image_size, say)
    if state is not None and list(state["folders"]) != data.folders:
        raise TrainingError(
            f"The run in OUT was trained on the classes {', '.join(state['folders'])}, but {data_dir} has "
            f"{', '.join(data.folders)}: resume with the same data, or start a new --out folder."
        )
    if "var" in recipe.parts:
        new_class_table(start, len(data.class_names))
    return start, data


class Bar:
    """finetune's on_step: a progress bar with the loss and the time left."""

    def __init__(self, recipe: Recipe):
        self.minutes = recipe.minutes
        self.bar = tqdm(total=recipe.steps, desc="fine-tune", dynamic_ncols=True, unit="step")

    def __call__(self, progress: Progress) -> None:
        if self.bar.n == 0 and progress.step > 1:  # a resumed run
            self.bar.n = self.bar.last_print_n = progress.step - 1
        shown = {"loss": f"{progress.losses[-1]['loss']:.3f}"}
        if self.minutes is not None:  # the bar's own estimate counts steps; this is the clock's
            left = max(0, round(self.minutes * 60 - progress.elapsed))
            shown["time_left"] = f"{left // 60}:{left % 60:02d}"
        self.bar.set_postfix(shown, refresh=False)
        self.bar.update(progress.step - self.bar.n)

    def close(self) -> None:
        self.bar.close()


def run_local(args: argparse.Namespace) -> Progress:
    """One process: prepare, train, write OUT."""
    from editing.device import default_device

    out = Path(args.out)
    state = prepare_out(out, args.resume, create=False)
    recipe = recipe_from(args, state)
    device = args.device or default_device()
    start, data = prepare(recipe, args.data, state, device=device)
    prepare_out(out, args.resume, create=True)
    folder = RunFolder(out, start, data, recipe)
    if state is None:
        folder.measure_before()
    bar = Bar(recipe)
    try:
        progress = finetune(recipe, data, start, state, on_checkpoint=folder, on_step=bar, device=device)
    finally:
        bar.close()
    print(f"Wrote {out}: {progress.step} steps in {progress.elapsed / 60:.1f} min, last loss {_last(progress):.3f}.")
    return progress


def _last(progress: Progress) -> float:
    tail = progress.losses[-10:]
    return sum(r["loss"] for r in tail) / max(len(tail), 1)


def main(argv: list[str] | None = None) -> int:
    """Entry point of `var-edit-train`; returns the exit code (a user's mistake: one sentence, code 2)."""
    args = parser().parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.set_flush_denormal(True)  # denormal Adam moments slow CPU training by an order of magnitude
    try:
        if args.ray:
            from training.ray_run import run_ray

            run_ray(args)
        else:
            run_local(args)
    except (TrainingError, DataError) as e:
        print(f"var-edit-train: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(
            f"var-edit-train: stopped; {args.out} holds the last checkpoint (continue with --resume).", file=sys.stderr
        )
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
