"""Sample: one batched pass over the plans of several requests (the second stage of `Editor.run`).

Requests that share a model are sampled together whatever their modes, conditioning, masks and
options: each candidate is one row (`families.Row`) with its own conditioning, options, keep map and
random generator, and the model's family samples the rows scale by scale. Row i of a request with
seed s draws from a generator seeded with `row_seed(s, i)` (s itself for the first candidate), and
the family decodes every row's picture on its own, so a seeded request gives the same picture alone,
in any batch, in another process and on a rerun (VAR's 'more smooth' rows, which blend codes instead
of picking tokens, only up to float noise).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image

from .edit_job import EditJob, Progress
from .families import FamilyModel, Row, Sampling
from .masks import finest_cells
from .plan import Plan


def row_seed(seed: int, candidate: int) -> int:
    """The generator seed of candidate `candidate` of a request seeded with `seed`."""
    if candidate == 0:
        return seed
    digest = hashlib.blake2b(f"{seed}/{candidate}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") >> 33  # 31 bits, like drawn seeds: exact as a number in a browser


@torch.no_grad()
def sample(
    plans: list[Plan],
    model: FamilyModel,
    device: str,
    job: EditJob | None = None,
    slots: list[int] | None = None,
    turn: Callable[[], AbstractContextManager[None]] = nullcontext,
) -> list[np.ndarray]:
    """Sample every candidate of every plan -> per plan uint8 (n, H, W, 3): one pass per group of plans the
    model samples together (`FamilyModel.pass_key`: VAR's fast mode runs its bfloat16 scales for a whole batch;
    plans drawn at different geometries never share a pass).

    job: checked for cancellation after every scale and given previews if it wants them, keyed
    by `slots[p]` (the request's index in the caller's list; default p). turn: held around each
    scale and each decode, so passes that share a device take turns scale by scale and a short
    edit never waits for the whole of a long one."""
    slots = slots if slots is not None else list(range(len(plans)))
    out: list[np.ndarray] = [np.empty(0)] * len(plans)
    keys = [(plan.geometry, model.pass_key(plan.options)) for plan in plans]  # one geometry per pass
    for key in sorted(set(keys), key=keys.index):
        part = [p for p, k in enumerate(keys) if k == key]
        arrays = _one_pass([plans[p] for p in part], model, device, job, [slots[p] for p in part], turn)
        for p, array in zip(part, arrays, strict=True):
            out[p] = array
    return out


@dataclass
class _Row:
    """One candidate of one plan: a row of the batch. `index`: the plan's place in the pass's list."""

    plan: Plan
    index: int
    candidate: int

    def row(self) -> Row:
        plan = self.plan
        seed = row_seed(plan.seed, self.candidate)
        return Row(plan.conditioning, plan.options, seed, plan.source, plan.regenerate, plan.geometry)


def _one_pass(
    plans: list[Plan],
    model: FamilyModel,
    device: str,
    job: EditJob | None,
    slots: list[int],
    turn: Callable[[], AbstractContextManager[None]],
) -> list[np.ndarray]:
    rows = [_Row(plan, p, i) for p, plan in enumerate(plans) for i in range(plan.options.num_samples)]
    run = model.sample([row.row() for row in rows], device)
    K = _follow(run, rows, job, slots, turn)
    finals = []
    for r in range(len(rows)):
        with turn():
            finals.append(run.final(r))
    pictures = np.concatenate(finals)
    if job is not None and job.previews:
        job.report(Progress(K, K, _split(_paste_kept(list(pictures), rows), rows, slots)))
    owners = np.array([row.index for row in rows])
    return [pictures[owners == p] for p in range(len(plans))]


def _follow(
    run: Sampling,
    rows: list[_Row],
    job: EditJob | None,
    slots: list[int],
    turn: Callable[[], AbstractContextManager[None]],
) -> int:
    """Run the sampler's scales to the end, one turn per scale, checking the job and showing previews -> the
    number of scales."""
    K = rows[0].plan.geometry.num_scales
    while True:
        with turn():
            k = next(run, None)
        if k is None:
            break
        if job is not None:
            job.check()
            if job.previews and k < K - 1:
                job.report(Progress(k + 1, K, _split(_paste_kept(run.preview(k), rows), rows, slots)))
    if job is not None:
        job.check()
    return K


def _paste_kept(images: list[np.ndarray], rows: list[_Row]) -> list[Image.Image]:
    """Previews (model size) with the picture's own pixels in every cell the finest scale keeps, so that while an
    edit runs only what it redraws changes (the coarse maps of the kept area are not the picture yet)."""
    out = []
    for image, row in zip(images, rows, strict=True):
        plan = row.plan
        if plan.x is None or plan.regenerate is None:
            out.append(Image.fromarray(image))
            continue
        cells = finest_cells(plan.regenerate, plan.geometry.scales[-1])
        redrawn = cells.repeat(plan.x.shape[0] // cells.shape[0], 0).repeat(plan.x.shape[1] // cells.shape[1], 1)
        out.append(Image.fromarray(np.where(redrawn[..., None], image, plan.x)))
    return out


def _split(images: list[Image.Image], rows: list[_Row], slots: list[int]) -> dict[int, list[Image.Image]]:
    out: dict[int, list[Image.Image]] = {slot: [] for slot in slots}
    for image, row in zip(images, rows, strict=True):
        out[slots[row.index]].append(image)
    return out
