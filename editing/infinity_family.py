"""The Infinity family: text-to-image next-scale prediction with bitwise tokens (infinity_core).

A model folder says `{"family": "infinity", "resolution": 256}` in its model.json and holds the
transformer, the BSQ VAE and `text_encoder/` (infinity_core.loading). Requests carry a `prompt` (and an
optional `negative_prompt`); the family uses the options `cfg`, `top_k`, `top_p` and its own `tau`.
Its tokens are bits: a picture is encoded into per-scale bits, and the keep hook puts the picture's own
bits back wherever a scale's regenerate map says keep, so only the masked area is redrawn. Its models draw
every aspect template (a geometry each): generate takes an `aspect`, out-paint draws a grown canvas at the
nearest one. It starts from upstream's sampling defaults (`defaults`), not VAR's.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

import infinity_core as ic
from infinity_core.loading import read_model_json
from infinity_core.vae import resize_area
from var_core import CheckpointError

from .families import ModelGeometry, Prompt, Row, aspect_field, prompt_fields, register_family
from .modes import Field
from .options import EditOptions, OptionSpec

NAME = "infinity"
TAU = (
    "tau",
    0.5,
    OptionSpec(
        float, "Temperature (tau)", "Divides the logits before each bit is drawn: lower is surer, higher more varied.",
        low=0.05, high=5.0, step=0.05,
    ),
)  # fmt: skip


def _weights(folder: Path, prefix: str) -> Path:
    """The folder's one `{prefix}*` .pth or .safetensors file (CheckpointError, one sentence, otherwise)."""
    found = sorted(p for p in folder.iterdir() if p.name.startswith(prefix) and p.suffix in (".pth", ".safetensors"))
    if len(found) != 1:
        raise CheckpointError(
            f"{folder.name} needs exactly one {prefix}*.safetensors or {prefix}*.pth file, found {len(found)}."
        )
    return found[0]


class InfinityText:
    """The family: Infinity model folders, conditioned on a prompt, running in-paint, out-paint, prompt edit
    and generate."""

    name = NAME
    modes = frozenset({"inpaint", "outpaint", "prompt_edit", "generate"})
    options = frozenset({"cfg", "top_k", "top_p"})
    option_table = (TAU,)
    # upstream's `gen_one_img` and infer script: cfg 3 on logits, tau 0.5 (TAU's default), top-k 900 (no effect
    # on a bit's two values), top-p 0.97 (a bit's less likely value is dropped when at most 3 % likely)
    defaults = {"cfg": 3.0, "top_k": 900, "top_p": 0.97}

    def fields(self, mode: str) -> tuple[Field, ...]:
        if mode == "prompt_edit":
            return prompt_fields(required="needs a prompt describing what to draw there")
        if mode == "generate":
            return (*prompt_fields(), aspect_field(ic.schedules.ASPECTS))
        return prompt_fields()

    def conditioning(self, fields: dict[str, Any]) -> Prompt:
        return Prompt(fields.get("prompt"), fields.get("negative_prompt"))

    def files(self, folder: Path) -> list[Path]:
        """(transformer, VAE, text encoder config)."""
        encoder = folder / "text_encoder" / "config.json"
        if not encoder.is_file():
            raise CheckpointError(f"{folder.name} has no text_encoder/ folder; put the T5 encoder and tokenizer there.")
        return [_weights(folder, "infinity"), _weights(folder, "vae"), encoder]

    def resolution(self, files: list[Path]) -> int:
        try:
            return int(read_model_json(files[0].parent).get("resolution", 1024))
        except CheckpointError as e:
            raise ValueError(str(e)) from e

    def load(self, files: list[Path], folder: Path | None, device: str, dtype: torch.dtype) -> InfinityModel:
        bundle = ic.load_folder(folder if folder is not None else files[0].parent, device, dtype)
        return InfinityModel(bundle, self)


def geometry_of(schedule: ic.Schedule) -> ModelGeometry:
    return ModelGeometry(schedule.grids, ic.schedules.VAE_STRIDE)


class InfinityModel:
    """A loaded Infinity: its geometries are the schedules of every aspect template at its folder's area class,
    the square first (its default), in the order of `ASPECTS`."""

    def __init__(self, bundle: ic.InfinityBundle, family: InfinityText) -> None:
        self.bundle, self.family = bundle, family
        self.labels: list[str] = []
        self.schedule = bundle.schedule(1.0)
        self.schedules: dict[ModelGeometry, ic.Schedule] = {}
        for aspect in ic.schedules.ASPECTS:
            schedule = bundle.schedule(ic.schedules.aspect_template(aspect))
            self.schedules[geometry_of(schedule)] = schedule
        self.geometries = tuple(self.schedules)

    def schedule_of(self, geometry: ModelGeometry | None) -> ic.Schedule:
        """The schedule a geometry of this model stands for (None: the square one)."""
        return self.schedule if geometry is None else self.schedules[geometry]

    def to(self, device: str) -> InfinityModel:
        b = self.bundle
        b.vae, b.transformer = b.vae.to(device), b.transformer.to(device)
        b.text.model = b.text.model.to(device)
        return self

    @property
    def dtype(self) -> str:
        return str(self.bundle.transformer.compute_dtype).replace("torch.", "")

    @property
    def parameters(self) -> int:
        b = self.bundle
        return sum(p.numel() for m in (b.transformer, b.vae, b.text.model) for p in m.parameters())

    @torch.no_grad()
    def encode(self, x: np.ndarray, device: str) -> list[torch.Tensor]:
        """uint8 (H, W, 3) at the size of one of its geometries -> per scale its bits (1, h, w, d) int64."""
        geometry = next(g for g in self.geometries if g.size == x.shape[:2])
        pictures = ic.from_uint8(torch.from_numpy(np.array(x))[None]).to(device)
        return self.bundle.vae.encode_bits(pictures, self.schedules[geometry])

    def pass_key(self, options: EditOptions) -> Hashable:
        """Rows sample together when they agree on the sampling options (one CFG/tau/top-k/top-p per pass)."""
        return options.cfg, options.tau, options.top_k, options.top_p  # type: ignore[attr-defined]

    def sample(self, rows: list[Row], device: str) -> InfinitySampling:
        return InfinitySampling(self, rows, device)


def _text(model: InfinityModel, rows: list[Row]) -> tuple[ic.TextBatch, ic.TextBatch]:
    """The rows' prompts and what CFG steers away from: an empty prompt is the unconditional branch (the
    model's learned `cfg_uncond` rows); a row without a negative prompt uses those rows too, as upstream."""
    transformer, encoder = model.bundle.transformer, model.bundle.text
    prompts = [row.conditioning for row in rows]
    assert all(isinstance(p, Prompt) for p in prompts)
    cond = encoder([p.text or "" for p in prompts])
    empty = torch.tensor([not p.text for p in prompts], device=cond.features.device)
    uncond = ic.sampling.unconditional(transformer, cond)
    cond = ic.TextBatch(torch.where(empty[:, None, None], uncond.features, cond.features), cond.lengths)
    if not any(p.negative for p in prompts):
        return cond, ic.sampling.unconditional(transformer, cond)
    negative = encoder([p.negative or "" for p in prompts])
    use = torch.tensor([bool(p.negative) for p in prompts], device=cond.features.device)
    L = max(cond.features.shape[1], negative.features.shape[1])
    pad = lambda t: torch.nn.functional.pad(t, (0, 0, 0, L - t.shape[1]))  # noqa: E731
    own = ic.sampling.unconditional(transformer, cond)
    features = torch.where(use[:, None, None], pad(negative.features), pad(own.features))
    return cond, ic.TextBatch(features, torch.where(use, negative.lengths, cond.lengths))


class InfinitySampling:
    """One batched pass; iterating runs it scale by scale (yielding each scale's index)."""

    def __init__(self, model: InfinityModel, rows: list[Row], device: str) -> None:
        self.model = model
        first = rows[0].options
        options = ic.SamplingOptions(first.cfg, first.tau, first.top_k, first.top_p)  # type: ignore[attr-defined]
        cond, negative = _text(model, rows)
        gens = ic.generators([row.seed for row in rows], device)
        keep = _keep_hook(rows, device)
        self.schedule = model.schedule_of(rows[0].geometry)
        self._steps = ic.scales(
            model.bundle.transformer, model.bundle.vae, cond, self.schedule, gens, options, negative, keep
        )
        self.bits: list[torch.Tensor] = []
        self.summed: torch.Tensor | None = None

    def __iter__(self) -> Iterator[int]:
        return self

    def __next__(self) -> int:
        step = next(self._steps)
        self.bits.append(step.bits)
        self.summed = step.summed_codes
        return step.index

    @torch.no_grad()
    def preview(self, k: int) -> list[np.ndarray]:
        """The picture so far decoded at scale k's grid (at least 2 x 2: the VAE's norms need more than one
        value; cheap), shown at model size."""
        assert self.summed is not None
        h, w = (max(n, 2) for n in self.schedule.grids[k])
        small = ic.to_uint8(ic.decode(self.model.bundle.vae, resize_area(self.summed, (h, w)))).cpu().numpy()
        H, W = self.schedule.pixels
        resample = Image.NEAREST if max(h, w) <= 4 else Image.BICUBIC
        return [np.asarray(Image.fromarray(a).resize((W, H), resample)) for a in small]

    @torch.no_grad()
    def final(self, row: int) -> np.ndarray:
        """Row `row`'s picture uint8 (1, H, W, 3), decoded from that row's bits alone (the same in any batch)."""
        vae = self.model.bundle.vae
        codes = vae.summed_codes([b[row : row + 1] for b in self.bits])
        return ic.to_uint8(ic.decode(vae, codes)).cpu().numpy()


def _keep_hook(rows: list[Row], device: str) -> ic.KeepHook | None:
    """Each row's own bits wherever its regenerate map keeps; None when no row keeps anything."""
    if all(row.source is None for row in rows):
        return None

    def keep(k: int, sampled: torch.Tensor) -> torch.Tensor:
        out = sampled.clone()
        for r, row in enumerate(rows):
            if row.source is None or row.regenerate is None:
                continue
            h, w = sampled.shape[1:3]
            kept = ~row.regenerate[k].to(device).view(h, w)
            out[r][kept] = row.source[k][0].to(device)[kept]
        return out

    return keep


register_family(InfinityText())
