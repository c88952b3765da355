"""Sample: one batched pass over the plans of several requests (the second stage of `Editor.run`).

Requests that share a model are sampled together whatever their modes, classes, masks and
options: each candidate is one row with its own class, options, keep map and random generator.
Row i of a request with seed s draws from a generator seeded with `row_seed(s, i)` (s itself for
the first candidate), and every row's picture is rebuilt from its own tokens and decoded on its
own, so a seeded request gives the same picture alone, in any batch, in another process and on a
rerun ('more smooth' rows, which blend codes instead of picking tokens, only up to float noise).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image

from var_core import VAR, VQVAE, SamplingOptions, ScaleStep, sample_scales

from .edit_job import EditJob, Progress
from .masks import finest_cells
from .plan import Plan
from .teacher_forcing import TeacherForcing


def row_seed(seed: int, candidate: int) -> int:
    """The generator seed of candidate `candidate` of a request seeded with `seed`."""
    if candidate == 0:
        return seed
    digest = hashlib.blake2b(f"{seed}/{candidate}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") >> 33  # 31 bits, like drawn seeds: exact as a number in a browser


def to_uint8(x: torch.Tensor) -> np.ndarray:
    """Images (B, 3, H, W) in [-1, 1] -> uint8 (B, H, W, 3)."""
    return x.add(1).mul(127.5).round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()


@torch.no_grad()
def sample(
    plans: list[Plan],
    var: VAR,
    vqvae: VQVAE,
    device: str,
    job: EditJob | None = None,
    slots: list[int] | None = None,
    turn: Callable[[], AbstractContextManager[None]] = nullcontext,
) -> list[np.ndarray]:
    """Sample every candidate of every plan -> per plan uint8 (n, R, R, 3): one pass, or two when some plans ask
    for the fast mode and others do not (its bfloat16 scales run for a whole batch).

    job: checked for cancellation after every scale and given previews if it wants them, keyed
    by `slots[p]` (the request's index in the caller's list; default p). turn: held around each
    scale and each decode, so passes that share a device take turns scale by scale and a short
    edit never waits for the whole of a long one."""
    slots = slots if slots is not None else list(range(len(plans)))
    out: list[np.ndarray] = [np.empty(0)] * len(plans)
    for fast in (False, True):
        part = [p for p, plan in enumerate(plans) if plan.options.fast == fast]
        if part:
            arrays = _one_pass([plans[p] for p in part], var, vqvae, device, job, [slots[p] for p in part], turn)
            for p, array in zip(part, arrays, strict=True):
                out[p] = array
    return out


@dataclass
class _Row:
    """One candidate of one plan: a row of the batch. `index`: the plan's place in the pass's list."""

    plan: Plan
    index: int
    candidate: int

    def generator(self, device: str) -> torch.Generator:
        return torch.Generator(device).manual_seed(row_seed(self.plan.seed, self.candidate))


def _one_pass(
    plans: list[Plan],
    var: VAR,
    vqvae: VQVAE,
    device: str,
    job: EditJob | None,
    slots: list[int],
    turn: Callable[[], AbstractContextManager[None]],
) -> list[np.ndarray]:
    rows = [_Row(plan, p, i) for p, plan in enumerate(plans) for i in range(plan.options.num_samples)]
    labels = torch.tensor([row.plan.label for row in rows], device=device)
    options = [row.plan.options.sampling() for row in rows]
    generators = [row.generator(device) for row in rows]
    steps = sample_scales(var, vqvae, labels, options, generators, _keep_hook(rows, vqvae, device))
    f_hat, tokens = _follow(steps, rows, vqvae, job, slots, turn)
    finals = []
    for r, row_options in enumerate(options):
        with turn():
            finals.append(_final(vqvae, f_hat, tokens, r, row_options))
    pictures = np.concatenate(finals)
    if job is not None and job.previews:
        K = var.num_scales
        job.report(Progress(K, K, _split(_paste_kept([Image.fromarray(a) for a in pictures], rows), rows, slots)))
    owners = np.array([row.index for row in rows])
    return [pictures[owners == p] for p in range(len(plans))]


def _keep_hook(rows: list[_Row], vqvae: VQVAE, device: str) -> TeacherForcing | None:
    """The batch's keep hook; None when no row keeps anything (generations only)."""
    if all(row.plan.source is None for row in rows):
        return None
    sources = [row.plan.source for row in rows]
    return TeacherForcing.for_rows(vqvae, sources, [row.plan.regenerate for row in rows], device=device)


def _follow(
    steps: Iterator[ScaleStep],
    rows: list[_Row],
    vqvae: VQVAE,
    job: EditJob | None,
    slots: list[int],
    turn: Callable[[], AbstractContextManager[None]],
) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Run the sampler's steps to the end, one turn per scale, checking the job and showing previews -> the final
    f_hat (B, Cvae, P, P) and the token maps [(B, pn_k^2)]."""
    K = len(vqvae.quantize.patch_nums)
    f_hat, tokens = None, []
    while True:
        with turn():
            step = next(steps, None)
        if step is None:
            break
        f_hat = step.f_hat
        tokens.append(step.tokens)
        if job is not None:
            job.check()
            if job.previews and step.k < K - 1:
                shown = _paste_kept(_preview(vqvae, f_hat, step.k), rows)
                job.report(Progress(step.k + 1, K, _split(shown, rows, slots)))
    assert f_hat is not None
    if job is not None:
        job.check()
    return f_hat, tokens


def _final(
    vqvae: VQVAE, f_hat: torch.Tensor, tokens: list[torch.Tensor], row: int, options: SamplingOptions
) -> np.ndarray:
    """Row `row`'s picture, uint8 (1, R, R, 3), computed from that row alone (in bfloat16 if it asks `fast`).

    Matrix products give last-bit differences with the batch size, so the batched f_hat is not
    used: the picture is rebuilt from the row's tokens, which those differences do not change.
    Soft ('more smooth') rows have no tokens to rebuild from and keep the batched f_hat."""
    if options.more_smooth:
        f_row = f_hat[row : row + 1]
    else:
        f_row = vqvae.quantize.tokens_to_fhat([t[row : row + 1] for t in tokens])
    return to_uint8(vqvae.decode_fhat(f_row, fast=options.fast))


@torch.no_grad()
def _preview(vqvae: VQVAE, f_hat: torch.Tensor, k: int) -> list[Image.Image]:
    """Decode the picture so far at scale k's own latent size (cheap), shown at model size."""
    quant = vqvae.quantize
    pn = quant.patch_nums[k]
    small = to_uint8(vqvae.decode_fhat(quant.downsample(f_hat, k)))
    R = vqvae.image_size
    return [Image.fromarray(a).resize((R, R), Image.NEAREST if pn <= 4 else Image.BICUBIC) for a in small]


def _paste_kept(images: list[Image.Image], rows: list[_Row]) -> list[Image.Image]:
    """Previews (R x R) with the picture's own pixels in every cell the finest scale keeps, so that while an edit
    runs only what it redraws changes (the coarse maps of the kept area are not the picture yet)."""
    out = []
    for image, row in zip(images, rows, strict=True):
        plan = row.plan
        if plan.x is None or plan.regenerate is None:
            out.append(image)
            continue
        cells = finest_cells(plan.regenerate)
        scale = plan.x.shape[0] // cells.shape[0]
        redrawn = cells.repeat(scale, 0).repeat(scale, 1)
        out.append(Image.fromarray(np.where(redrawn[..., None], np.asarray(image), plan.x)))
    return out


def _split(images: list[Image.Image], rows: list[_Row], slots: list[int]) -> dict[int, list[Image.Image]]:
    out: dict[int, list[Image.Image]] = {slot: [] for slot in slots}
    for image, row in zip(images, rows, strict=True):
        out[slots[row.index]].append(image)
    return out
