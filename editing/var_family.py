"""The VAR family: class-conditional VAR (Tian et al. 2024), the published ImageNet models and the demo.

Everything the pipeline asks of a VAR model is here: its request field (`class_id`) and the options
it uses, loading, class names, the square geometry, encoding a picture into per-scale codebook
indices, the sampler with its keep hook (`teacher_forcing.TeacherForcing`), previews and decoding.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

import var_core
from var_core import CheckpointError, ScaleStep, sample_scales

from .families import ClassLabel, Conditioning, Row, register_family, square_geometry
from .modes import Field, field
from .options import EditOptions
from .resources import imagenet_classes_file
from .teacher_forcing import EncodedImage, TeacherForcing, encode_source

NAME = "var-class"


def class_field(required: str | None = None) -> Field:
    """The class to draw: any whole number here; the loaded model's own range is checked (and quoted) when the
    edit is planned."""
    return field(
        "class_id",
        int,
        "Class",
        "the class to draw, 0 to the model's number of classes minus one" + ("." if required else "; empty for none."),
        required=required,
        elem_id="class-dd",
        widget="classes",
    )


def to_uint8(x: torch.Tensor) -> np.ndarray:
    """Images (B, 3, H, W) in [-1, 1] -> uint8 (B, H, W, 3)."""
    return x.add(1).mul(127.5).round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()


class VarClassConditional:
    """The family: VAR checkpoint pairs (vae*/var*), conditioned on a class id, running the four modes."""

    name = NAME
    modes = frozenset({"inpaint", "outpaint", "edit_class", "generate"})
    options = frozenset({"cfg", "top_k", "top_p", "more_smooth", "fast"})
    option_table: tuple = ()  # its options are the table's own (editing/options.py)

    def fields(self, mode: str) -> tuple[Field, ...]:
        if mode == "edit_class":
            return (class_field(required="needs a class_id"),)
        return (class_field(),) if mode == "generate" else ()

    def conditioning(self, fields: dict[str, Any]) -> Conditioning:
        return ClassLabel(fields.get("class_id"))

    def files(self, folder: Path) -> list[Path]:
        """(VQVAE file, VAR file): the first vae*/var* .safetensors or .pth by name."""

        def pick(prefix: str) -> Path:
            found = sorted(
                p for p in folder.iterdir() if p.name.startswith(prefix) and p.suffix in (".safetensors", ".pth")
            )
            if not found:
                raise CheckpointError(
                    f"No {prefix}*.safetensors or {prefix}*.pth in the folder {folder.name}; "
                    "put the checkpoint pair there."
                )
            return found[0]

        return [pick("vae"), pick("var")]

    def resolution(self, files: list[Path]) -> int:
        vae_path, var_path = files
        try:
            vae = var_core.describe(var_core.read_checkpoint(vae_path)[0])
            var = var_core.describe(var_core.read_checkpoint(var_path)[0])
            return int(var["patch_nums"][-1] * vae["downsample"])
        except (KeyError, OSError) as e:
            raise ValueError(f"{var_path.name} cannot be read") from e

    def load(self, files: list[Path], folder: Path | None, device: str, dtype: torch.dtype) -> VarModel:
        vqvae, var = var_core.load_pair(files[0], files[1], device=device, dtype=dtype)
        return VarModel(vqvae, var, class_names(var, folder), self)


def class_names(var: var_core.VAR, folder: Path | None) -> list[str]:
    """One name per class: the folder's classes.json, ImageNet's for 1000 classes, else 'class i'."""
    classes = folder / "classes.json" if folder is not None else None
    if classes is not None and classes.is_file():
        return list(json.loads(classes.read_text()))
    if var.num_classes == 1000:
        return [c["names"].split(",")[0] for c in json.loads(imagenet_classes_file().read_text())]
    return [f"class {i}" for i in range(var.num_classes)]


class VarModel:
    """A loaded VAR pair: what `Editor` runs. labels: the class names (default 'class i'); family: the one
    that loaded it (default VAR class-conditional)."""

    def __init__(
        self,
        vqvae: var_core.VQVAE,
        var: var_core.VAR,
        labels: list[str] | None = None,
        family: VarClassConditional | None = None,
    ) -> None:
        if var.schedule != vqvae.schedule:
            raise CheckpointError(
                f"The VAR samples the scales {var.schedule} but the VQVAE quantizes {vqvae.schedule}; "
                "load the two with var_core.load_pair."
            )
        self.vqvae, self.var = vqvae, var
        self.family = family or VarClassConditional()
        self.labels = labels or [f"class {i}" for i in range(var.num_classes)]
        self.geometries = (square_geometry(vqvae.image_size, var.patch_nums),)

    def to(self, device: str) -> VarModel:
        self.vqvae, self.var = self.vqvae.to(device), self.var.to(device)
        return self

    @property
    def dtype(self) -> str:
        return str(self.var.compute_dtype).replace("torch.", "")

    @property
    def parameters(self) -> int:
        return sum(p.numel() for p in self.var.parameters()) + sum(p.numel() for p in self.vqvae.parameters())

    def encode(self, x: np.ndarray, device: str) -> EncodedImage:
        """uint8 (R, R, 3) -> its latent and token maps."""
        tensor = torch.from_numpy(np.array(x)).permute(2, 0, 1)[None].float().div(127.5).sub(1).to(device)
        return encode_source(self.vqvae, tensor)

    def pass_key(self, options: EditOptions) -> bool:
        """Rows sample together when they agree on the fast mode (its bfloat16 scales run for a whole batch)."""
        return options.fast

    def sample(self, rows: list[Row], device: str) -> VarSampling:
        return VarSampling(self, rows, device)


class VarSampling:
    """One batched pass: iterating runs it scale by scale (yielding each scale's index); `preview(k)` and
    `final(row)` decode what it has so far."""

    def __init__(self, model: VarModel, rows: list[Row], device: str) -> None:
        self.model = model
        self.options = [row.options.sampling() for row in rows]
        labels = torch.tensor([self._label(row.conditioning) for row in rows], device=device)
        generators = [torch.Generator(device).manual_seed(row.seed) for row in rows]
        keep = _keep_hook(rows, model.vqvae, device)
        self._steps = sample_scales(model.var, model.vqvae, labels, self.options, generators, keep)
        self.f_hat: torch.Tensor | None = None
        self.tokens: list[torch.Tensor] = []

    def _label(self, conditioning: Conditioning) -> int:
        assert isinstance(conditioning, ClassLabel)
        return self.model.var.num_classes if conditioning.class_id is None else conditioning.class_id

    def __iter__(self) -> Iterator[int]:
        return self

    def __next__(self) -> int:
        step: ScaleStep = next(self._steps)
        self.f_hat = step.f_hat
        self.tokens.append(step.tokens)
        return step.k

    @torch.no_grad()
    def preview(self, k: int) -> list[np.ndarray]:
        """Decode the picture so far at scale k's own latent size (cheap), shown at model size."""
        vqvae = self.model.vqvae
        quant = vqvae.quantize
        assert self.f_hat is not None
        pn = quant.patch_nums[k]
        small = to_uint8(vqvae.decode_fhat(quant.downsample(self.f_hat, k)))
        R = vqvae.image_size
        resample = Image.NEAREST if pn <= 4 else Image.BICUBIC
        return [np.asarray(Image.fromarray(a).resize((R, R), resample)) for a in small]

    @torch.no_grad()
    def final(self, row: int) -> np.ndarray:
        """Row `row`'s picture, uint8 (1, R, R, 3), computed from that row alone (in bfloat16 if it asks `fast`).

        Matrix products give last-bit differences with the batch size, so the batched f_hat is not
        used: the picture is rebuilt from the row's tokens, which those differences do not change.
        Soft ('more smooth') rows have no tokens to rebuild from and keep the batched f_hat."""
        vqvae, options = self.model.vqvae, self.options[row]
        assert self.f_hat is not None
        if options.more_smooth:
            f_row = self.f_hat[row : row + 1]
        else:
            f_row = vqvae.quantize.tokens_to_fhat([t[row : row + 1] for t in self.tokens])
        return to_uint8(vqvae.decode_fhat(f_row, fast=options.fast))


def _keep_hook(rows: list[Row], vqvae: var_core.VQVAE, device: str) -> TeacherForcing | None:
    """The batch's keep hook; None when no row keeps anything (generations only)."""
    if all(row.source is None for row in rows):
        return None
    return TeacherForcing.for_rows(vqvae, [row.source for row in rows], [row.regenerate for row in rows], device=device)


register_family(VarClassConditional())
