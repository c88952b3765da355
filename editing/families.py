"""Model families: the seam between the editing pipeline and a kind of next-scale model.

The pipeline (plan -> sample -> compose) knows pictures, masks, per-scale keep maps and seeds; a
family knows its model. A family (`ModelFamily`, registered with `register_family`) says what its
requests carry (its fields per mode, e.g. VAR's `class_id` or a text model's `prompt`, and the options
it uses or adds), how those fields become one typed `Conditioning`, which modes it runs, and how a
model folder's files load into a `FamilyModel`. The loaded model gives the scale grids it can draw
(`ModelGeometry`, (h, w) per scale), encodes a picture into its per-scale tokens (codebook indices,
bits, whatever the family's tokens are), and samples a batch of `Row`s scale by scale, keeping each
row's own tokens outside its mask, with previews and the decoded pictures (`Sampling`).

Every published model and every model folder belongs to one family; a folder names it in
`model.json` ({"family": "..."}), the default being VAR class-conditional (editing/var_family.py).
"""

from __future__ import annotations

import json
import math
from collections.abc import Hashable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch

from var_core import CheckpointError

from .errors import EditError
from .modes import Field, add_family_fields, field, get_mode, mode_names, remove_family_fields
from .options import EditOptions, OptionSpec, option_fields, register_option, unregister_option

DEFAULT_FAMILY = "var-class"


# ---- conditioning -------------------------------------------------------------------------------
@dataclass(frozen=True)
class ClassLabel:
    """A class id to draw (None: unconditional)."""

    class_id: int | None

    def check(self, labels: list[str]) -> None:
        """A class the model has (or the id one past the last, VAR's 'none'), else an EditError."""
        n, label = len(labels), self.class_id
        if label is not None and not 0 <= label <= n:
            named = f"Class {label}" if abs(label) < 10**9 else "That class"
            raise EditError(f"{named} does not exist: this model has classes 0 to {n - 1} ({n} for none).")

    def recorded(self, labels: list[str]) -> dict[str, Any]:
        """What a result's PNG says of it: the class id (the number of classes for none) and its name."""
        label = len(labels) if self.class_id is None else self.class_id
        return {"class_id": label, "class_name": labels[label] if label < len(labels) else "none"}


@dataclass(frozen=True)
class Prompt:
    """A text to draw and what to steer away from (None or empty: unconditional)."""

    text: str | None
    negative: str | None = None

    def check(self, labels: list[str]) -> None:
        """Any text passes (its length and characters were checked with the request's fields)."""

    def recorded(self, labels: list[str]) -> dict[str, Any]:
        return {"prompt": self.text or "", "negative_prompt": self.negative or ""}


Conditioning = ClassLabel | Prompt

PROMPT_CHARS = 800  # well inside a T5's 512 tokens
PROMPT = field(
    "prompt", str, "Prompt", "what to draw, in words (empty: anything that fits).", max_length=PROMPT_CHARS,
    elem_id="prompt",
)  # fmt: skip
NEGATIVE_PROMPT = field(
    "negative_prompt", str, "Negative prompt", "what to steer away from (optional).", max_length=PROMPT_CHARS,
    elem_id="negative-prompt",
)  # fmt: skip


def prompt_fields(required: str | None = None) -> tuple[Field, Field]:
    """The fields of a text-conditioned family (one meaning for every family that takes a prompt);
    required: the sentence when the prompt is missing (None: optional)."""
    if required is None:
        return PROMPT, NEGATIVE_PROMPT
    return field(
        "prompt",
        str,
        "Prompt",
        "what to draw there, in words (needed).",
        max_length=PROMPT_CHARS,
        elem_id="prompt",
        required=required,
    ), NEGATIVE_PROMPT


def aspect_field(aspects: tuple[str, ...]) -> Field:
    """A generation's aspect, 'W:H' (width to height) as one of `aspects` (empty: the model's default, square);
    one meaning for every family whose models draw several (`pick_geometry`)."""
    return field(
        "aspect", str, "Aspect (width:height)", f"the new picture's width to height: {', '.join(aspects)} (empty: "
        "square).", choices=aspects, elem_id="aspect", studio_default=aspects[0],
    )  # fmt: skip


def aspect_ratio(aspect: str) -> float:
    """'W:H' -> height / width."""
    w, h = aspect.split(":")
    return int(h) / int(w)


# ---- geometry -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class ModelGeometry:
    """A schedule the model can draw: token grids `scales` (h, w) per scale, coarse to fine, and `stride`
    pixels per token of the finest grid."""

    scales: tuple[tuple[int, int], ...]
    stride: int

    @property
    def size(self) -> tuple[int, int]:
        """(height, width) in pixels."""
        h, w = self.scales[-1]
        return h * self.stride, w * self.stride

    @property
    def resolution(self) -> int:
        """The picture's long side in pixels (the side of a square model's pictures)."""
        return max(self.size)

    @property
    def num_scales(self) -> int:
        return len(self.scales)

    def to_dict(self) -> dict[str, Any]:
        return {"scales": [list(s) for s in self.scales], "stride": self.stride}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelGeometry:
        return cls(tuple((int(h), int(w)) for h, w in data["scales"]), int(data["stride"]))


def pick_geometry(geometries: tuple[ModelGeometry, ...], h_div_w: float) -> ModelGeometry:
    """The geometry whose picture's aspect (height / width) is nearest to `h_div_w` (the first of equals)."""
    return min(geometries, key=lambda g: abs(math.log(g.size[0] / g.size[1] / h_div_w)))


def fits(geometries: tuple[ModelGeometry, ...], h_div_w: float) -> bool:
    """Whether a canvas of aspect `h_div_w` lies within the aspects the geometries draw (none is far off)."""
    aspects = [g.size[0] / g.size[1] for g in geometries]
    return len(aspects) > 1 and min(aspects) <= h_div_w * 1.05 and h_div_w <= max(aspects) * 1.05


def square_geometry(resolution: int, patch_nums: tuple[int, ...]) -> ModelGeometry:
    """The geometry of a square schedule (VAR's patch_nums) at `resolution` px."""
    return ModelGeometry(tuple((pn, pn) for pn in patch_nums), resolution // patch_nums[-1])


# ---- what a family provides -----------------------------------------------------------------------
@dataclass
class Row:
    """One candidate to sample: its conditioning, options and generator seed, the family's encoding of its
    picture (None: nothing kept, a generation), per-scale regenerate maps [(h_k * w_k,) bool] row-major,
    True = sample (None: sample everything), and the geometry it is drawn at (None: the model's default; the
    rows of one pass share it)."""

    conditioning: Conditioning
    options: EditOptions
    seed: int
    source: Any | None
    regenerate: list[torch.Tensor] | None
    geometry: ModelGeometry | None = None


class Sampling(Protocol):
    """A batch of rows being sampled: each `next` runs one scale and gives its index; `preview(k)` and
    `final(row)` decode what there is so far."""

    def __iter__(self) -> Iterator[int]: ...

    def __next__(self) -> int: ...

    def preview(self, k: int) -> list[np.ndarray]:
        """Every row's picture after scale k, uint8 (H, W, 3) at the geometry's size."""
        ...

    def final(self, row: int) -> np.ndarray:
        """Row `row`'s finished picture, uint8 (1, H, W, 3), the same alone or in any batch."""
        ...


class FamilyModel(Protocol):
    """A loaded model of a family. geometries: the schedules it draws (the first: its default); labels: the
    class names (empty for a text model); dtype: its compute precision; parameters: how many in all."""

    family: ModelFamily
    geometries: tuple[ModelGeometry, ...]
    labels: list[str]

    @property
    def dtype(self) -> str: ...

    @property
    def parameters(self) -> int: ...

    def to(self, device: str) -> FamilyModel: ...

    def encode(self, x: np.ndarray, device: str) -> Any:
        """A picture uint8 (H, W, 3) at the default geometry's size -> its per-scale tokens (any type)."""
        ...

    def pass_key(self, options: EditOptions) -> Hashable:
        """Rows whose keys are equal may be sampled in one pass."""
        ...

    def sample(self, rows: list[Row], device: str) -> Sampling: ...


class ModelFamily(Protocol):
    """A kind of model. modes: the edit modes it runs; options: the options of the table that are its
    family's to use (an option no family claims applies to every model); option_table: its own options,
    added to the table when it is registered, as (name, default, OptionSpec). A family may also have
    `defaults`, {option: value}: where its models start instead of the table's default (Infinity's
    upstream cfg and top-p; `family_defaults`)."""

    name: str
    modes: frozenset[str]
    options: frozenset[str]
    option_table: tuple[tuple[str, Any, OptionSpec], ...]

    def fields(self, mode: str) -> tuple[Field, ...]:
        """The request fields it adds to `mode` (its conditioning: a class, a prompt)."""
        ...

    def conditioning(self, fields: dict[str, Any]) -> Conditioning:
        """A request's checked fields -> what to sample with."""
        ...

    def files(self, folder: Path) -> list[Path]:
        """The weight files of a model folder of this family (CheckpointError, one sentence, when missing)."""
        ...

    def resolution(self, files: list[Path]) -> int:
        """The picture size in px, read off the files without building the model (ValueError if unreadable)."""
        ...

    def load(self, files: list[Path], folder: Path | None, device: str, dtype: torch.dtype) -> FamilyModel:
        """The model on `device` in `dtype`; folder: where its extra files are (classes.json ...), if any."""
        ...


FAMILIES: dict[str, ModelFamily] = {}


def register_family(family: ModelFamily) -> None:
    """Make `family` loadable: its options join the table, its fields the modes it runs, and model folders
    whose model.json names it are loaded through it."""
    unknown = set(family.modes) - set(mode_names())
    if unknown:
        raise ValueError(f"Family {family.name} names modes that do not exist: {', '.join(sorted(unknown))}.")
    for name, default, spec in family.option_table:
        register_option(name, default, spec)
    for mode in sorted(family.modes):
        add_family_fields(family.name, mode, family.fields(mode))
    FAMILIES[family.name] = family


def unregister_family(name: str) -> None:
    """Remove a family with its fields and own options (a test's toy family)."""
    family = FAMILIES.pop(name, None)
    if family is None:
        return
    remove_family_fields(name)
    for option, _, _ in family.option_table:
        unregister_option(option)


def runs(family: ModelFamily, mode: str) -> bool:
    """Whether `family` runs `mode`: it declares it, or the mode names the family (`Mode.families`)."""
    return mode in family.modes or family.name in get_mode(mode).families


def family_fields(family: ModelFamily) -> list[str]:
    """The names of the request fields `family` adds to any mode."""
    return sorted({f.name for mode in family.modes for f in family.fields(mode)})


def family_options(family: ModelFamily) -> frozenset[str]:
    """The options that are `family`'s to use: those it declares and its own."""
    return frozenset(family.options) | {name for name, _, _ in family.option_table}


def foreign_options(name: str) -> frozenset[str]:
    """The options other registered families claim that family `name` does not use (the studio hides them)."""
    own = family_options(FAMILIES[name]) if name in FAMILIES else frozenset()
    return frozenset().union(*(family_options(f) for f in FAMILIES.values())) - own


def own_defaults(family: ModelFamily) -> dict[str, Any]:
    """The option defaults `family` sets instead of the table's (its optional `defaults`)."""
    return dict(getattr(family, "defaults", {}))


def family_defaults(family: ModelFamily) -> EditOptions:
    """The options a model of `family` starts from: the table's defaults with the family's own (`own_defaults`);
    a model folder's defaults.json goes on top of these."""
    return EditOptions().replace(**own_defaults(family))


def defaults_text(name: str, default: Any) -> str:
    """An option's default as help texts say it: `1.5`, or `1.5 (infinity models: 3.0)` where a family's models
    start elsewhere."""
    others = [f"{f.name} models: {own_defaults(f)[name]!r}" for f in FAMILIES.values() if name in own_defaults(f)]
    return f"{default!r}" + (f" ({'; '.join(others)})" if others else "")


def not_run(model_name: str, mode: str, modes: list[str]) -> EditError:
    """The one sentence for a mode the loaded model's family does not run."""
    return EditError(f"{model_name} cannot {mode}; its family runs {', '.join(modes)}.")


def check_request(
    family: ModelFamily, model_name: str, mode: str, fields: dict[str, Any], options: EditOptions
) -> None:
    """One sentence for a field or an option that `family` does not use, given for a model of it."""
    mode_spec = get_mode(mode)
    own = {f.name for f in mode_spec.fields} | set(mode_spec.family_fields(family.name))
    for name, value in fields.items():
        if value is not None and name not in own:
            raise EditError(f"{model_name} takes no '{name}' for {mode}; leave it out.")
    theirs = foreign_options(family.name) if family.name in FAMILIES else frozenset()
    for name, default, _ in option_fields(type(options)):
        if name in theirs and getattr(options, name) != default:
            raise EditError(f"{model_name} does not use the option '{name}'; leave it out.")


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
