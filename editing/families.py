"""Model families: what a kind of next-scale model must give the editor, and the one registered today.

A family says how to load a checkpoint pair, how the model is conditioned (its labels: class names
for VAR's class-conditional models) and which edit modes it can run. Every published model and every
model folder belongs to one; a folder names its family in `model.json` ({"family": "..."}), the
default being VAR class-conditional. A second family (say a text-conditioned next-scale model) is a
class with these members, passed to `register_family`, and its model folders name it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Protocol

import torch

import var_core
from var_core import CheckpointError

from .modes import mode_names
from .resources import imagenet_classes_file

DEFAULT_FAMILY = "var-class"


class ModelFamily(Protocol):
    """What a family provides. `modes`: the edit modes its models can run (registered modes, editing/modes)."""

    name: str
    modes: frozenset[str]

    def load(
        self, vae_path: Path, var_path: Path, device: str, dtype: torch.dtype
    ) -> tuple[var_core.VQVAE, var_core.VAR]:
        """The pair of modules, on `device` in `dtype`."""
        ...

    def labels(self, var: var_core.VAR, folder: Path | None) -> list[str]:
        """The conditioning's names, one per label id (class names for a class-conditional model)."""
        ...

    def resolution(self, vae_path: Path, var_path: Path) -> int:
        """The picture size in px, read off the files without building the model (ValueError if unreadable)."""
        ...


class VarClassConditional:
    """VAR (Tian et al. 2024) with class labels: the published ImageNet models and the demo."""

    name = DEFAULT_FAMILY

    @property
    def modes(self) -> frozenset[str]:
        """Every registered mode: they all build on this family's sampler."""
        return frozenset(mode_names())

    def load(
        self, vae_path: Path, var_path: Path, device: str, dtype: torch.dtype
    ) -> tuple[var_core.VQVAE, var_core.VAR]:
        return var_core.load_pair(vae_path, var_path, device=device, dtype=dtype)

    def labels(self, var: var_core.VAR, folder: Path | None) -> list[str]:
        classes = folder / "classes.json" if folder is not None else None
        if classes is not None and classes.is_file():
            return list(json.loads(classes.read_text()))
        if var.num_classes == 1000:
            return [c["names"].split(",")[0] for c in json.loads(imagenet_classes_file().read_text())]
        return [f"class {i}" for i in range(var.num_classes)]

    def resolution(self, vae_path: Path, var_path: Path) -> int:
        try:
            vae = var_core.describe(var_core.read_checkpoint(vae_path)[0])
            var = var_core.describe(var_core.read_checkpoint(var_path)[0])
            return int(var["patch_nums"][-1] * vae["downsample"])
        except (KeyError, OSError) as e:
            raise ValueError(f"{var_path.name} cannot be read") from e


FAMILIES: dict[str, ModelFamily] = {DEFAULT_FAMILY: VarClassConditional()}


def register_family(family: ModelFamily) -> None:
    """Make `family` loadable: model folders whose model.json names it are loaded through it."""
    unknown = set(family.modes) - set(mode_names())
    if unknown:
        raise ValueError(f"Family {family.name} names modes that do not exist: {', '.join(sorted(unknown))}.")
    FAMILIES[family.name] = family


def family_of(folder: Path | None) -> ModelFamily:
    """The family a model folder names in its model.json (published models and folders without one: VAR class)."""
    spec = folder / "model.json" if folder is not None else None
    if spec is None or not spec.is_file():
        return FAMILIES[DEFAULT_FAMILY]
    try:
        name = json.loads(spec.read_text()).get("family", DEFAULT_FAMILY)
    except (json.JSONDecodeError, AttributeError) as e:
        example = '{"family": "var-class"}'
        raise CheckpointError(f"model.json of {folder.name} is not a JSON object like {example}.") from e
    if name not in FAMILIES:
        raise CheckpointError(
            f"{folder.name} is a {name!r} model, which this version cannot load; known: {', '.join(FAMILIES)}."
        )
    return FAMILIES[name]
