"""Fine-tune a VAR pair (the demo, a published model or a model folder) on a folder of class folders.

    start = load_start("demo")
    new_class_table(start, num_classes=3)             # the folder's 3 classes + the unconditional row
    finetune(Recipe(steps=200), data, start, on_checkpoint=RunFolder(out, ...))   # see training.run_folder

What is trained: the transformer (`var`), with a class table of the folder's classes plus the unconditional row
(new rows start from the mean of the old class rows, the unconditional row is kept) and class dropout so that
guidance keeps working; and optionally the VQVAE's decoder (`decoder`: decoder + post_quant_conv), with the
encoder, the codebook and the quantizer's residual convs frozen, so the tokens of a picture never change.

Everything random is a function of (seed, step): the data order (a fresh permutation each epoch), flips, crops
and class dropout. A resumed run therefore continues exactly like an uninterrupted one, and N data-parallel
workers (torch.distributed, e.g. under Ray Train) each take every N-th row of the same global batch, so they
follow the one-process loss curve.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

from training.class_folder import ClassFolder
from training.train_vqvae import gradient_loss
from var_core import VAR, VQVAE

PARTS = ("var", "decoder")
LOSSES = ("loss", "var", "decoder")  # what each step logs
STATE_FILE = "training_state.pt"


class TrainingError(RuntimeError):
    """A fine-tuning run that cannot go on; the message is one sentence saying what to do."""


@dataclass
class Recipe:
    """Everything that decides the weights; recorded in the training state and the model card."""

    start: str = "demo"
    parts: tuple[str, ...] = ("var",)
    steps: int | None = None  # None: as many as --minutes allows
    minutes: float | None = None
    batch: int = 16  # global batch, over all workers
    lr: float = 3e-4
    decoder_lr: float = 1e-4
    warmup: int | None = None  # steps of linear warm-up; None: 10 % of the steps (at least 1)
    weight_decay: float = 0.05
    class_dropout: float = 0.1
    label_smoothing: float = 0.1
    flip: bool = True
    crop: float = 0.85  # crops keep at least this fraction of the side; 1: no crops
    bf16: bool | None = None  # None: where the device computes bfloat16 fast
    seed: int = 0
    save_every: int = 50
    samples_every: int = 200  # 0: a sample grid only at the end

    def __post_init__(self) -> None:
        self.parts = tuple(self.parts)
        unknown = [p for p in self.parts if p not in PARTS]
        if unknown or not self.parts:
            raise TrainingError(f"Unknown part(s) {', '.join(unknown) or '(none)'}; train var, decoder or var,decoder.")
        if self.steps is None and self.minutes is None:
            raise TrainingError("Give a budget: --steps N or --minutes M (or both; the first reached ends the run).")
        if self.batch < 1 or (self.steps is not None and self.steps < 1):
            raise TrainingError("--batch and --steps must be at least 1.")

    @classmethod
    def from_dict(cls, given: dict[str, Any]) -> Recipe:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in given.items() if k in known})


@dataclass
class StartPoint:
    """The models to fine-tune (float32, trainable) and what they were."""

    name: str
    vqvae: VQVAE
    var: VAR
    class_names: list[str]  # the start model's own classes
    defaults: dict[str, Any] = field(default_factory=dict)  # its sampling defaults (defaults.json)

    def to(self, device: str | torch.device) -> StartPoint:
        self.vqvae, self.var = self.vqvae.to(device), self.var.to(device)
        return self


def load_start(model: str | Path, device: str = "cpu") -> StartPoint:
    """Load `model` ('demo', 'd16' ... 'd36' fetched on first use, or a model folder) for training."""
    from editing import Editor  # the studio's loader: names, downloads, folders and their errors in one place
    from editing.models import resolve
    from var_core import CheckpointError

    try:
        family = resolve(model).family.name
        if family != "var-class":  # said before anything is downloaded
            raise TrainingError(f"Cannot start from {model}: fine-tuning trains VAR models, not {family} ones.")
        editor = Editor.from_pretrained(model, device="cpu", dtype=torch.float32, download=True)
    except (CheckpointError, OSError, ValueError) as e:
        raise TrainingError(f"Cannot start from {model}: {e}") from e
    # a trainable copy: the loader's prepacked linear layers save plain weights
    var = _var_like(editor.model.var, editor.model.var.state_dict(), editor.model.var.num_classes)
    start = StartPoint(str(model), editor.model.vqvae, var, list(editor.class_names), editor.defaults.to_dict())
    return start.to(device)


def _var_like(var: VAR, state: dict[str, torch.Tensor], num_classes: int) -> VAR:
    model = VAR(**{**var.config, "num_classes": num_classes, "patch_nums": var.schedule})
    model.load_state_dict(state)
    return model


def new_class_table(start: StartPoint, num_classes: int) -> None:
    """Give the transformer `num_classes` new classes: each row starts at the mean of the old class rows, the
    unconditional row (the last, which guidance needs) is kept, every other weight stays."""
    state = start.var.state_dict()
    table = state["class_emb.weight"]
    rows = table[:-1].mean(0, keepdim=True).expand(num_classes, -1)
    state["class_emb.weight"] = torch.cat((rows, table[-1:]))
    start.var = _var_like(start.var, state, num_classes).to(table.device)


class FinetuneModel(nn.Module):
    """The trained parts around the frozen tokenizer: images and labels -> losses."""

    def __init__(self, vqvae: VQVAE, var: VAR, parts: tuple[str, ...], label_smoothing: float):
        super().__init__()
        self.vqvae, self.var, self.parts, self.label_smoothing = vqvae, var, parts, label_smoothing
        vqvae.requires_grad_(False)
        var.requires_grad_("var" in parts)
        if "decoder" in parts:
            vqvae.decoder.requires_grad_(True)
            vqvae.post_quant_conv.requires_grad_(True)

    def train(self, mode: bool = True) -> FinetuneModel:
        super().train(mode)
        self.vqvae.encoder.eval()  # frozen: its statistics and dropout never move
        return self

    def forward(self, x: torch.Tensor, labels: torch.Tensor) -> dict[str, torch.Tensor]:
        """x (B, 3, H, W) in [-1, 1], labels (B,) (num_classes = unconditional) -> {'loss', 'var', 'decoder'}."""
        with torch.no_grad():
            tokens, f_hat = self.vqvae.quantize.quantize(self.vqvae.encode_latent(x))
        losses = {}
        if "var" in self.parts:
            inputs = self.vqvae.quantize.teacher_forcing_input(tokens)
            logits = self.var(labels, inputs)
            target = torch.cat(tokens, dim=1)
            losses["var"] = F.cross_entropy(logits.transpose(1, 2), target, label_smoothing=self.label_smoothing)
        if "decoder" in self.parts:
            with self.vqvae.autocast(x.device.type):
                recon = self.vqvae.decoder(
                    self.vqvae.post_quant_conv(f_hat.contiguous(memory_format=torch.channels_last))
                )
            recon = recon.float()
            losses["decoder"] = F.l1_loss(recon, x) + F.mse_loss(recon, x) + 0.5 * gradient_loss(recon, x)
        losses["loss"] = sum(losses.values())
        return losses


@torch.no_grad()
def evaluate_loss(start: StartPoint, data: ClassFolder, parts: tuple[str, ...] = ("var",), batch: int = 32) -> float:
    """Mean loss of `parts` on data's pictures as they are (no flips, crops or class dropout), float32."""
    module = FinetuneModel(start.vqvae, start.var, parts, label_smoothing=0.0).eval()
    dtype, start.var.compute_dtype = start.var.compute_dtype, torch.float32
    device = start.var.head.weight.device
    total = 0.0
    for images, labels in zip(data.images.split(batch), data.labels.split(batch), strict=True):
        x = images.float().div(127.5).sub(1).to(device)
        total += module(x, labels.to(device))["loss"].item() * len(labels)
    start.var.compute_dtype = dtype
    return total / len(data.labels)


# ---- what is random, as a function of (seed, step) -----------------------------------------------
def _generator(seed: int, *salt: int) -> torch.Generator:
    value = seed
    for s in salt:
        value = (value * 1_000_003 + s) % (2**63)
    return torch.Generator().manual_seed(value)


def batch_indices(n: int, batch: int, step: int, seed: int) -> torch.Tensor:
    """Rows of the global batch of `step` (0-based): a fresh permutation of the n pictures every epoch."""
    positions = torch.arange(step * batch, (step + 1) * batch)
    out = torch.empty(batch, dtype=torch.int64)
    for epoch in positions.div(n, rounding_mode="floor").unique().tolist():
        here = positions.div(n, rounding_mode="floor") == epoch
        perm = torch.randperm(n, generator=_generator(seed, 1, epoch))
        out[here] = perm[positions[here] % n]
    return out


def augment(images: torch.Tensor, step: int, recipe: Recipe) -> torch.Tensor:
    """uint8 (B, 3, S, S) -> float in [-1, 1]: random horizontal flips and crops (resized back to S)."""
    gen = _generator(recipe.seed, 2, step)
    b, _, s, _ = images.shape
    flips = torch.rand(b, generator=gen) < (0.5 if recipe.flip else 0.0)
    sides = (s * (recipe.crop + (1 - recipe.crop) * torch.rand(b, generator=gen))).round().long().clamp(1, s)
    corner = torch.rand(b, 2, generator=gen)
    x = images.float().div(127.5).sub(1)
    out = torch.empty_like(x)
    for i in range(b):
        side = int(sides[i])
        top, left = (corner[i] * (s - side)).round().long().tolist()
        tile = x[i : i + 1, :, top : top + side, left : left + side]
        if side != s:
            tile = F.interpolate(tile, size=(s, s), mode="bilinear", align_corners=False, antialias=True)
        out[i] = tile[0].flip(-1) if flips[i] else tile[0]
    return out


def dropped_labels(labels: torch.Tensor, step: int, recipe: Recipe, num_classes: int) -> torch.Tensor:
    """Class dropout: each label becomes the unconditional class (index num_classes) with p = class_dropout."""
    drop = torch.rand(len(labels), generator=_generator(recipe.seed, 3, step)) < recipe.class_dropout
    return torch.where(drop, torch.full_like(labels, num_classes), labels)


def lr_factor(step: int, done: float, warmup: int | None) -> float:
    """Learning-rate factor: linear warm-up over `warmup` steps (None: the first 10 % of the budget), then a
    cosine decay to 10 % at the end of the budget; done in [0, 1] is the share of the budget spent."""
    warm = min(1.0, (step + 1) / warmup) if warmup else min(1.0, max(done, 1e-3) / 0.1)
    return warm * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(done, 1.0))))


# ---- the run ---------------------------------------------------------------------------------------
def _world() -> tuple[int, int]:
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def _comm(value: float) -> torch.Tensor:
    """A scalar where the process group can reduce it (NCCL: on this process's GPU)."""
    nccl = dist.is_initialized() and dist.get_backend() == "nccl"
    return torch.tensor(value, device=f"cuda:{torch.cuda.current_device()}" if nccl else "cpu")


def _all_mean(value: torch.Tensor) -> torch.Tensor:
    if _world()[1] > 1:
        value = value.clone()
        dist.all_reduce(value)
        value /= _world()[1]
    return value


def _use_bf16(recipe: Recipe, device: torch.device) -> bool:
    if recipe.bf16 is not None:
        return recipe.bf16
    from var_core.vqvae import fast_dtype

    return fast_dtype(device) == torch.bfloat16


def build_optimizer(module: FinetuneModel, recipe: Recipe) -> torch.optim.AdamW:
    """AdamW: the transformer's matrices decay, its embeddings, positions and vectors do not; the decoder its own lr."""
    groups = []
    if "var" in recipe.parts:
        named = list(module.var.named_parameters())
        decays = [p for n, p in named if p.ndim >= 2 and "emb" not in n and "pos_" not in n]
        keep = [p for n, p in named if not (p.ndim >= 2 and "emb" not in n and "pos_" not in n)]
        groups += [
            {"params": decays, "weight_decay": recipe.weight_decay, "lr": recipe.lr},
            {"params": keep, "weight_decay": 0.0, "lr": recipe.lr},
        ]
    if "decoder" in recipe.parts:
        dec = [*module.vqvae.decoder.parameters(), *module.vqvae.post_quant_conv.parameters()]
        groups.append({"params": dec, "weight_decay": 0.0, "lr": recipe.decoder_lr})
    return torch.optim.AdamW(groups, betas=(0.9, 0.95))


@dataclass
class Progress:
    """Where a run stands: what the training state records besides the weights."""

    step: int = 0
    total: int | None = None  # --steps (None: the run ends with --minutes)
    elapsed: float = 0.0
    losses: list[dict[str, float]] = field(default_factory=list)  # one per step: step, loss, var, decoder
    starts: list[int] = field(default_factory=list)  # the step each (re)start began at


Hook = Callable[[Progress], None]


def finetune(
    recipe: Recipe,
    data: ClassFolder,
    start: StartPoint,
    state: dict[str, Any] | None = None,
    on_checkpoint: Callable[[dict[str, Any] | None, Progress, bool], None] | None = None,
    on_step: Hook | None = None,
    device: str | torch.device = "cpu",
) -> Progress:
    """Train until the budget is spent; returns the progress. state: a training state to continue from.

    on_checkpoint(state, progress, final) every recipe.save_every steps and at the end, on every rank (under
    torch.distributed the full training state only on rank 0, None elsewhere); on_step(progress) after each step.
    A --steps run continues exactly from a state; with --minutes the schedule follows the clock."""
    run = _Run(recipe, data, start, state, torch.device(device))
    while run.done() < 1:
        run.step()
        if on_step is not None:
            on_step(run.progress)
        if run.progress.step % recipe.save_every == 0 and run.done() < 1 and on_checkpoint:
            on_checkpoint(run.state(), run.progress, False)
    if on_checkpoint is not None:
        on_checkpoint(run.state(), run.progress, True)
    return run.progress


class _Run:
    """One process's share of a run: the model (in DDP when torch.distributed is set up), optimizer, progress."""

    def __init__(
        self, recipe: Recipe, data: ClassFolder, start: StartPoint, state: dict[str, Any] | None, device: torch.device
    ):
        self.recipe, self.data, self.device = recipe, data, device
        self.rank, self.world = _world()
        if recipe.batch % self.world:
            raise TrainingError(f"--batch {recipe.batch} does not split over {self.world} workers; use a multiple.")
        self.module = FinetuneModel(start.vqvae, start.var, recipe.parts, recipe.label_smoothing).to(device)
        bf16 = _use_bf16(recipe, device)
        start.var.compute_dtype = torch.bfloat16 if bf16 else torch.float32
        # the decoder's backward in bfloat16 was slower than float32 on the CPU the demo was trained on
        decoder_bf16 = bf16 and "decoder" in recipe.parts and device.type == "cuda"
        start.vqvae.compute_dtype = torch.bfloat16 if decoder_bf16 else torch.float32
        self.opt = build_optimizer(self.module, recipe)
        self.progress = Progress()
        if state is not None:
            self.module.var.load_state_dict(state["var"])
            self.module.vqvae.load_state_dict(state["vqvae"])
            self.opt.load_state_dict(state["optimizer"])
            self.progress = Progress(**state["progress"])
            torch.set_rng_state(state["torch_rng"])
        self.progress.starts.append(self.progress.step)
        self.net = nn.parallel.DistributedDataParallel(self.module) if self.world > 1 else self.module
        self.net.train()
        self.progress.total = recipe.steps
        self.began = time.perf_counter() - self.progress.elapsed
        self._done = self._share()

    def _share(self) -> float:
        """The share of the budget spent: steps, or the clock (rank 0's, so every rank agrees), whichever is ahead."""
        recipe, progress = self.recipe, self.progress
        done = progress.step / recipe.steps if recipe.steps else 0.0
        if recipe.minutes is not None:
            clock = _comm(progress.elapsed / (recipe.minutes * 60))
            if self.world > 1:
                dist.broadcast(clock, src=0)
            done = max(done, clock.item())
        return done

    def done(self) -> float:
        """The share of the budget spent before the next step, in [0, 1]."""
        return self._done

    def step(self) -> None:
        """One optimizer step on this rank's rows of the global batch; the loss logged is the global batch's."""
        recipe, progress, step = self.recipe, self.progress, self.progress.step
        for group in self.opt.param_groups:
            group["lr"] = group.setdefault("base_lr", group["lr"]) * lr_factor(step, self._done, recipe.warmup)
        rows = batch_indices(len(self.data.labels), recipe.batch, step, recipe.seed)
        part = slice(self.rank, None, self.world)
        x = augment(self.data.images[rows], step, recipe)[part].to(self.device)
        labels = dropped_labels(self.data.labels[rows], step, recipe, self.module.var.num_classes)[part]
        try:
            losses = self.net(x, labels.to(self.device))
            self.opt.zero_grad(set_to_none=True)
            losses["loss"].backward()
        except (torch.OutOfMemoryError, RuntimeError) as e:
            if not isinstance(e, torch.OutOfMemoryError) and "memory" not in str(e).lower():
                raise
            raise TrainingError(_oom(recipe)) from e
        torch.nn.utils.clip_grad_norm_([p for p in self.module.parameters() if p.requires_grad], 2.0)
        self.opt.step()
        zero = torch.zeros((), device=self.device)
        logged = _all_mean(torch.stack([losses.get(k, zero).detach() for k in LOSSES]))
        if not torch.isfinite(logged[0]):
            raise TrainingError(f"The loss became {logged[0].item()} at step {step + 1}; lower --lr and --resume.")
        progress.step += 1
        progress.elapsed = time.perf_counter() - self.began
        progress.losses.append({"step": progress.step, **dict(zip(LOSSES, logged.tolist(), strict=True))})
        self._done = self._share()

    def state(self) -> dict[str, Any] | None:
        """The full training state (rank 0), None on other ranks."""
        if self.rank != 0:
            return None
        return {
            "recipe": asdict(self.recipe),
            "progress": asdict(self.progress),
            "var": self.module.var.state_dict(),
            "vqvae": self.module.vqvae.state_dict(),
            "optimizer": self.opt.state_dict(),
            "torch_rng": torch.get_rng_state(),
            "classes": self.data.class_names,
            "folders": self.data.folders,
            "counts": self.data.counts,
        }


def _oom(recipe: Recipe) -> str:
    return (
        f"Ran out of memory with --batch {recipe.batch}: use a smaller one (e.g. --batch {max(1, recipe.batch // 2)}) "
        "and --resume to continue from the last checkpoint."
    )
