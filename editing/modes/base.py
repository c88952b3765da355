"""The mode registry: what an edit mode declares, and the table of registered modes.

A mode is one module: its fields as a typed table (like the option table), its own checks, how it
prepares its inputs (picture, mask) and what it records in the result's PNG. The model families add
their conditioning fields to the modes they run (`add_family_fields`: VAR's `class_id`, a text
model's `prompt`), so a mode's request fields are its own and those (`Mode.request_fields`). The
request, the studio's tabs, the named endpoints, the MCP tools and the CLI's flags are all made from here.
"""

from __future__ import annotations

import dataclasses
import io
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image

from .. import canvas
from ..errors import EditError, quoted
from ..masks import Mask
from ..options import OptionSpec, check_value

if TYPE_CHECKING:
    from ..limits import Limits
    from ..request import EditRequest


class Picture:
    """The kind of a picture field: a file path, PNG/JPEG bytes, a PIL image or a uint8 (H, W, 3)
    array. Through the studio and its API only the caller's own upload."""


@dataclass(frozen=True)
class Field:
    """One field of a mode. required: the sentence when it is missing (None: optional, `default`);
    elem_id: the id of its studio widget; widget: "classes" shows the model's classes to pick from.
    A str field without choices is free text (`OptionSpec.max_length`): a text box, a string."""

    name: str
    spec: OptionSpec
    default: Any = None
    required: str | None = None
    elem_id: str | None = None
    widget: str | None = None

    @property
    def picture(self) -> bool:
        return self.spec.kind is Picture

    def check(self, value: Any) -> Any:
        """The value converted to the field's type, or an EditError of one sentence."""
        if self.picture:
            if value is not None and not isinstance(value, str | Path | Image.Image | np.ndarray | bytes | io.IOBase):
                kind = type(value).__name__
                raise EditError(f"'{self.name}' must be a picture: a file path, PNG bytes or an image, not {kind}.")
            return value
        return check_value(self.name, self.spec, value, "Field")


def field(name: str, kind: type, label: str, help: str, default: Any = None, **spec: Any) -> Field:
    """A Field; spec keys beyond OptionSpec's: required, elem_id, widget."""
    own = {key: spec.pop(key) for key in ("required", "elem_id", "widget") if key in spec}
    nullable = spec.pop("nullable", default is None)
    return Field(name, OptionSpec(kind, label, help, nullable=nullable, **spec), default, **own)


IMAGE = field("image", Picture, "Picture", "the picture (a PNG, JPEG or WebP file).", required="needs an image")
MASK = field(
    "mask",
    Picture,
    "Mask",
    "a picture of the same size; painted pixels (white or any colour, or opaque where it has transparency) "
    "are regenerated, black or transparent ones kept.",
    required="needs a mask: white (or any colour) where to regenerate",
)


@dataclass
class Inputs:
    """A request's pixels: picture uint8 (H, W, 3) (out-paint: the grown canvas) and its Mask
    (True = regenerate); both None for generation. info: what the results keep of the picture
    (canvas.kept_info: its ICC profile and EXIF)."""

    picture: np.ndarray | None
    mask: Mask | None
    info: dict[str, bytes] = dataclasses.field(default_factory=dict)


class Mode:
    """An edit mode. Subclasses set the class attributes and override the hooks they need.

    name: the request's "mode" (endpoint, MCP tool and CLI --mode); title: the studio tab the mode's
    button sits in (modes with the same title share a tab and its widgets); button: the button's text;
    doc: what the mode does, one sentence (endpoint and tool description); fields: its own fields (the
    families add their conditioning: `request_fields`); families: the model families that run it besides
    those that declare it (`ModelFamily.modes`), for a mode written after them; whole_canvas: on a model that
    draws several aspects, the whole canvas is drawn at the nearest one instead of a window around the mask.
    """

    name: str = ""
    title: str = ""
    tab_id: str = ""
    button: str = ""
    button_id: str = ""
    doc: str = ""
    fields: tuple[Field, ...] = ()
    families: tuple[str, ...] = ()
    whole_canvas: bool = False

    @property
    def uses_picture(self) -> bool:
        return any(f.name == "image" for f in self.fields)

    @property
    def uses_mask(self) -> bool:
        return any(f.name == "mask" for f in self.fields)

    @property
    def request_fields(self) -> tuple[Field, ...]:
        """The mode's own fields, then those the registered families add to it (their conditioning)."""
        added = [f for f, _ in _FAMILY_FIELDS.get(self.name, {}).values()]
        return (*self.fields, *added)

    def family_fields(self, family: str) -> list[str]:
        """The names of the fields family `family` adds to this mode."""
        return [name for name, (_, families) in _FAMILY_FIELDS.get(self.name, {}).items() if family in families]

    def field_names(self) -> list[str]:
        return [f.name for f in self.request_fields]

    def check(self, given: dict[str, Any]) -> dict[str, Any]:
        """Every field's value checked (defaults for those not given), then the mode's own checks."""
        names = self.field_names()
        for key, value in given.items():
            if key not in names and value is not None:
                fields = ", ".join([*names, "name", "options"])
                unknown = quoted(key)
                raise EditError(f"Unknown field {unknown} for {self.name}; its fields are "
                                f"{fields} and the option names.")
        values = {}
        for f in self.request_fields:
            value = f.check(given.get(f.name, f.default))
            if value is None and f.required:
                raise EditError(f"A {self.name} request {f.required}.")
            values[f.name] = value
        return self.validate(values)

    def validate(self, values: dict[str, Any]) -> dict[str, Any]:
        """The mode's checks across fields; returns the values (normalised where needed)."""
        return values

    def inputs(self, request: EditRequest, limits: Limits) -> Inputs:
        """Read the picture and mask (same size), within the limits: every size is checked from the files'
        headers before either is decoded."""
        opened = canvas.open_guarded(request.image, "image", limits.picture_pixels, decode=False)
        limits.check_canvas(*opened.size, request.options.num_samples)  # as stored: a quarter turn changes neither
        mask = canvas.open_mask(request.mask, opened.size, limits.picture_pixels)
        picture = canvas.load_image(opened)
        size, info, pixels = picture.size, picture.info, np.asarray(picture)
        del opened, picture  # the PIL copies go before the mask is read: memory follows the work
        return Inputs(pixels, Mask(canvas.load_mask(mask, size, limits.picture_pixels)), info)

    def windowed(self, inputs: Inputs) -> bool:
        """Whether the canvas is drawn in overlapping windows (a panorama) rather than in one region."""
        return False

    def recorded(self, request: EditRequest) -> dict[str, Any]:
        """The mode's fields recorded in the result's PNG (and read back by the CLI's rerun-skip)."""
        return {f.name: request.fields[f.name] for f in self.request_fields if not f.picture}


_REGISTRY: dict[str, Mode] = {}
_FAMILY_FIELDS: dict[str, dict[str, tuple[Field, set[str]]]] = {}  # mode -> field name -> (field, its families)


def add_family_fields(family: str, mode: str, fields: tuple[Field, ...]) -> None:
    """Family `family` conditions mode `mode` on `fields` (a field shared by two families must be the same)."""
    table = _FAMILY_FIELDS.setdefault(mode, {})
    for f in fields:
        known, families = table.get(f.name, (f, set()))
        if known != f or f.name in {own.name for own in get_mode(mode).fields}:
            raise ValueError(f"The field {f.name!r} of {mode} already has another meaning.")
        table[f.name] = (f, families | {family})


def remove_family_fields(family: str) -> None:
    """Forget the fields a family added (a test's toy family)."""
    for table in _FAMILY_FIELDS.values():
        for name in list(table):
            f, families = table[name]
            if families - {family}:
                table[name] = (f, families - {family})
            else:
                del table[name]


def register(mode: Mode | type[Mode]) -> Mode:
    """Add a mode (an instance or a Mode subclass, usable as a class decorator) to the registry."""
    instance = mode() if isinstance(mode, type) else mode
    if not instance.name.isidentifier():
        raise ValueError(f"A mode's name must be an identifier, not {instance.name!r}.")
    _REGISTRY[instance.name] = instance
    return instance


def unregister(name: str) -> None:
    """Remove a mode (a test's toy mode)."""
    _REGISTRY.pop(name, None)


def registered() -> list[Mode]:
    """Every mode, in the order they were registered."""
    return list(_REGISTRY.values())


def mode_names() -> tuple[str, ...]:
    return tuple(_REGISTRY)


def get_mode(name: Any) -> Mode:
    """The registered mode called `name`, or an EditError of one sentence."""
    if not isinstance(name, str) or name not in _REGISTRY:
        raise EditError(f"Unknown mode {quoted(name)}; use one of {', '.join(_REGISTRY)}.")
    return _REGISTRY[name]
