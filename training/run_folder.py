"""OUT of a fine-tuning run: a model folder that `Editor.from_pretrained(OUT)` loads at every checkpoint.

    vae.safetensors, var.safetensors   the pair, float32, the published key names (var_core.save_checkpoint)
    classes.json, defaults.json        class display names (index order) and the sampling defaults
    MODEL_CARD.md, run.json            start point, data counts, recipe, time, losses, measured figures
    samples.png, loss.png              a grid of samples per class (a row each) and the loss curve
    training_state.pt                  weights + optimizer + progress, for --resume

Every file is written under a temporary name and renamed, so a run that stops leaves its last complete
checkpoint and never a half-written file.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch
from PIL import Image, ImageDraw

from training.class_folder import ClassFolder
from training.finetune import STATE_FILE, Progress, Recipe, StartPoint, TrainingError
from var_core import SamplingOptions, save_checkpoint

MODEL_FILES = ("vae.safetensors", "var.safetensors", "classes.json", "defaults.json")
SAMPLES_PER_CLASS = 6
PSNR_PICTURES = 64


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def save_state(path: Path, state: dict[str, Any]) -> None:
    """torch.save under a temporary name, then rename."""
    tmp = path.with_name(f".{path.name}.tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


def read_state(path: Path) -> dict[str, Any]:
    """A training state written by `save_state`; one sentence if it is not one."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except (OSError, RuntimeError, EOFError, ValueError) as e:
        raise TrainingError(f"{path} is not a readable training state ({e}); start again without --resume.") from e


def prepare_out(out: Path, resume: bool, create: bool = True) -> dict[str, Any] | None:
    """Check OUT (and create it when `create`); returns the training state to continue from with resume."""
    state_path = out / STATE_FILE
    if resume and create:
        return None
    if resume:
        if not state_path.is_file():
            raise TrainingError(f"Nothing to resume in {out}: it has no {STATE_FILE}; drop --resume to start a run.")
        return read_state(state_path)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise TrainingError(
            f"{out} already exists and is not empty: pass --resume to continue its run, or choose a new --out folder."
        )
    if create:
        out.mkdir(parents=True, exist_ok=True)
    return None


def decoder_psnr(start: StartPoint, images: torch.Tensor) -> float:
    """Mean PSNR (dB, on [0, 1]) of the VQVAE's reconstructions of uint8 images (N, 3, S, S)."""
    from training.train_vqvae import evaluate_psnr

    vqvae = start.vqvae
    was, dtype = vqvae.training, vqvae.compute_dtype
    psnr = evaluate_psnr(vqvae, images.to(next(vqvae.parameters()).device))[0]
    vqvae.train(was)
    vqvae.compute_dtype = dtype
    return psnr


def loss_plot(losses: list[dict[str, float]], width: int = 640, height: int = 300) -> Image.Image:
    """The training loss per step (light) and its running mean over 10 steps (dark), drawn with PIL."""
    img = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(img)
    left, right, top, bottom = 60, width - 15, 15, height - 35
    draw.rectangle((left, top, right, bottom), outline=(120, 120, 120))
    values = [row["loss"] for row in losses]
    if not values:
        return img
    smooth = [sum(values[max(0, i - 9) : i + 1]) / len(values[max(0, i - 9) : i + 1]) for i in range(len(values))]
    low, high = min(values), max(values)
    span = (high - low) or 1.0
    last = max(len(values) - 1, 1)

    def xy(i: int, v: float) -> tuple[float, float]:
        return left + (right - left) * i / last, bottom - (bottom - top) * (v - low) / span

    for series, colour in ((values, (170, 190, 230)), (smooth, (20, 60, 160))):
        points = [xy(i, v) for i, v in enumerate(series)]
        if len(points) > 1:
            draw.line(points, fill=colour, width=2)
    grey = (60, 60, 60)
    draw.text((5, top), f"{high:.3f}", fill=grey)
    draw.text((5, bottom - 10), f"{low:.3f}", fill=grey)
    draw.text((left, bottom + 8), f"step {losses[0]['step']}", fill=grey)
    draw.text((right - 70, bottom + 8), f"step {losses[-1]['step']}", fill=grey)
    draw.text(((left + right) // 2 - 60, bottom + 8), "training loss (mean of 10)", fill=grey)
    return img


def sample_grid(start: StartPoint, seed: int = 0) -> Image.Image:
    """`SAMPLES_PER_CLASS` samples of every class with the model's defaults, one row per class."""
    from training.evaluate import sample_grid as grid
    from training.evaluate import sample_per_class

    var, vqvae = start.var, start.vqvae
    was_var, was_vae, dtype = var.training, vqvae.training, var.compute_dtype
    var.eval()
    vqvae.eval()
    var.compute_dtype = torch.float32
    keys = ("cfg", "top_k", "top_p", "more_smooth")
    options = SamplingOptions(**{k: start.defaults[k] for k in keys if k in start.defaults})
    images, _ = sample_per_class(var, vqvae, SAMPLES_PER_CLASS, options, seed)
    var.train(was_var)
    vqvae.train(was_vae)
    var.compute_dtype = dtype
    return grid(images.cpu(), var.num_classes, SAMPLES_PER_CLASS)


class RunFolder:
    """Writes OUT at each checkpoint (rank 0 of a run): the model folder, the pictures, the card and the state."""

    def __init__(self, out: Path, start: StartPoint, data: ClassFolder, recipe: Recipe):
        self.out, self.start, self.data, self.recipe = out, start, data, recipe
        self.class_names = data.class_names if "var" in recipe.parts else start.class_names
        earlier = out / "run.json"  # a resumed run keeps what was measured before its first step
        self.psnr_before = json.loads(earlier.read_text()).get("psnr_before") if earlier.is_file() else None
        self.last_samples = 0

    def measure_before(self) -> None:
        """The decoder's PSNR on the training pictures before any step (only when the decoder is trained)."""
        if "decoder" in self.recipe.parts:
            self.psnr_before = decoder_psnr(self.start, self.data.images[:PSNR_PICTURES])

    def __call__(self, state: dict[str, Any] | None, progress: Progress, final: bool) -> None:
        """finetune's on_checkpoint: everything in OUT, each file renamed into place (nothing on ranks > 0)."""
        if state is None:
            return
        out = self.out
        save_checkpoint(self.start.vqvae, out / "vae.safetensors")
        save_checkpoint(self.start.var, out / "var.safetensors")
        _atomic_write(out / "classes.json", (json.dumps(self.class_names, indent=2) + "\n").encode())
        _atomic_write(out / "defaults.json", (json.dumps(self.start.defaults, indent=2) + "\n").encode())
        every = self.recipe.samples_every
        if final or (every and progress.step // every > self.last_samples // every):
            self._picture(out / "samples.png", sample_grid(self.start, self.recipe.seed))
            self.last_samples = progress.step
        self._picture(out / "loss.png", loss_plot(progress.losses))
        run = self.summary(progress, final)
        _atomic_write(out / "run.json", (json.dumps(run, indent=2) + "\n").encode())
        _atomic_write(out / "MODEL_CARD.md", model_card(run).encode())
        save_state(out / STATE_FILE, state)

    @staticmethod
    def _picture(path: Path, img: Image.Image) -> None:
        tmp = path.with_name(f".{path.name}.tmp")
        img.save(tmp, format="PNG")
        os.replace(tmp, path)

    def summary(self, progress: Progress, final: bool) -> dict[str, Any]:
        """What the card says, as data (run.json)."""
        losses = progress.losses
        head, tail = losses[:10], losses[-10:]

        def mean(rows: list[dict[str, float]], key: str) -> float | None:
            return round(sum(r[key] for r in rows) / len(rows), 4) if rows else None

        figures: dict[str, Any] = {
            "loss_first_10_steps": mean(head, "loss"),
            "loss_last_10_steps": mean(tail, "loss"),
        }
        if "var" in self.recipe.parts:
            figures["var_loss_first_10_steps"], figures["var_loss_last_10_steps"] = mean(head, "var"), mean(tail, "var")
        if "decoder" in self.recipe.parts and final:
            figures["decoder_psnr_train_before_db"] = None if self.psnr_before is None else round(self.psnr_before, 2)
            figures["decoder_psnr_train_after_db"] = round(
                decoder_psnr(self.start, self.data.images[:PSNR_PICTURES]), 2
            )
        return {
            "start": self.start.name,
            "psnr_before": self.psnr_before,
            "start_classes": len(self.start.class_names),
            "classes": self.class_names,
            "counts": self.data.counts,
            "skipped": len(self.data.skipped),
            "resized": self.data.resized,
            "recipe": {k: list(v) if isinstance(v, tuple) else v for k, v in vars(self.recipe).items()},
            "steps": progress.step,
            "total_steps": progress.total,
            "restarts": max(0, len(progress.starts) - 1),
            "minutes": round(progress.elapsed / 60, 2),
            "finished": final,
            "figures": figures,
            "measured": _read_measured(self.out),
        }


def _read_measured(out: Path) -> str | None:
    path = out / "measured.md"
    return path.read_text() if path.is_file() else None


def model_card(run: dict[str, Any]) -> str:
    """MODEL_CARD.md from a run summary."""
    recipe = run["recipe"]
    counts = "\n".join(f"| {name} | {n} |" for name, n in run["counts"].items())
    figures = "\n".join(f"| {k.replace('_', ' ')} | {v} |" for k, v in run["figures"].items() if v is not None)
    status = "finished" if run["finished"] else "stopped at its last checkpoint (continue with --resume)"
    parts = " and the VQVAE decoder" if "decoder" in recipe["parts"] else ""
    if "var" not in recipe["parts"]:
        parts = "the VQVAE decoder only (the transformer and its classes are the start model's)"
    else:
        parts = "the transformer" + parts
    lines = [
        f"# Fine-tuned from {run['start']}: {len(run['classes'])} classes",
        "",
        f"Made with `var-edit-train` from **{run['start']}** ({run['start_classes']} classes): {parts}, "
        f"{run['steps']} steps in {run['minutes']} min ({status}"
        + (f", {run['restarts']} restart(s) from a checkpoint" if run["restarts"] else "")
        + "). The encoder and the codebook are the start model's, so pictures tokenize as they did.",
        "",
        'Load it with `Editor.from_pretrained("<this folder>")`, `var-edit --model <this folder>`, or put the',
        "folder in the studio's `--models-dir`.",
        "",
        "## Data",
        "",
        f"{sum(run['counts'].values())} pictures; {run['skipped']} unreadable skipped, {run['resized']} resized.",
        "",
        "| class | pictures |",
        "|---|---|",
        counts,
        "",
        "## Recipe",
        "",
        "| setting | value |",
        "|---|---|",
        *(f"| {k} | {v} |" for k, v in recipe.items()),
        "",
        "## Losses and figures",
        "",
        "| figure | value |",
        "|---|---|",
        figures,
        "",
        "![loss](loss.png)",
        "",
        "![samples, a row per class](samples.png)",
        "",
    ]
    if run.get("measured"):
        lines += ["## Measured", "", run["measured"].strip(), ""]
    return "\n".join(lines)
