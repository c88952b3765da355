"""`EditRequest`: everything one edit needs, checked on construction, serialisable as JSON.

The studio, the CLI, the API and batch jobs all build one of these and hand it to `Editor.run`;
none of them talks to the model in its own way.
"""

from __future__ import annotations

import base64
import binascii
import io
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np
from PIL import Image

from .errors import EditError, quoted
from .metadata import carried
from .modes import get_mode, mode_names
from .options import EditOptions, option_names

PNG_PREFIX = "data:image/png;base64,"

Picture = str | Path | IO[bytes] | Image.Image | np.ndarray | bytes


@dataclass(frozen=True, init=False)
class EditRequest:
    """One edit: a registered mode (editing/modes) and its checked fields, options and a name.

    `EditRequest("inpaint", image, mask, options=...)`, `EditRequest("outpaint", image, left=64)`,
    `EditRequest("generate", class_id=3)`: image and mask are the picture fields (a path, PNG/JPEG
    bytes, PIL image or uint8 (H, W, 3) array; the mask white, any colour or opaque = regenerate),
    the other keywords the mode's own fields (read back as attributes: `request.left`). A field the
    mode does not have is refused; None means not given. name: names the output files.
    """

    mode: str
    fields: dict[str, Any]
    options: EditOptions
    name: str | None

    def __init__(
        self,
        mode: str,
        image: Picture | None = None,
        mask: Picture | None = None,
        *,
        options: EditOptions | None = None,
        name: str | None = None,
        **fields: Any,
    ) -> None:
        spec = get_mode(mode)
        options = EditOptions() if options is None else options
        if not isinstance(options, EditOptions):
            raise EditError("'options' must be EditOptions (or a dict of options in from_dict).")
        if name is not None and (not isinstance(name, str) or not name.strip()):
            raise EditError("'name' must be a non-empty text.")
        object.__setattr__(self, "mode", spec.name)
        object.__setattr__(self, "fields", spec.check({"image": image, "mask": mask, **fields}))
        object.__setattr__(self, "options", options)
        object.__setattr__(self, "name", name)

    def __getattr__(self, key: str) -> Any:
        fields = self.__dict__.get("fields") or {}
        if key in fields:
            return fields[key]
        raise AttributeError(f"A {self.__dict__.get('mode')} request has no field {quoted(key)}.")

    def with_options(self, **changes: Any) -> EditRequest:
        """A copy with some options changed (checked)."""
        options = self.options.replace(**changes)
        return EditRequest(self.mode, options=options, name=self.name, **self.fields)

    def recorded(self) -> dict[str, Any]:
        """The mode and its fields as recorded in the result's PNG (pictures aside, None left out): what
        `compose.params_of` writes and the CLI's rerun-skip (`jobs.expected_params`) reads back."""
        fields = get_mode(self.mode).recorded(self)
        return {"mode": self.mode, **{k: v for k, v in fields.items() if v is not None}}

    def to_dict(self) -> dict[str, Any]:
        """JSON-able data: pictures as file paths, or as PNG data URLs when they are in memory."""
        out: dict[str, Any] = {"mode": self.mode}
        for f in get_mode(self.mode).request_fields:
            value = self.fields[f.name]
            if value is not None and f.picture:
                out[f.name] = str(value) if isinstance(value, str | Path) else _png_data_url(value)
            elif value is not None:
                out[f.name] = value
        if self.name is not None:
            out["name"] = self.name
        out["options"] = self.options.to_dict()
        return out

    @classmethod
    def from_dict(
        cls, data: Any, defaults: EditOptions | None = None, base_dir: str | Path | None = None
    ) -> EditRequest:
        """A request from JSON-like data, every field checked (one sentence per mistake).

        Options may be nested under "options" or given at the top level; the ones not given keep
        `defaults` (the model's). Pictures are paths (relative ones read from `base_dir`) or data URLs.
        """
        if not isinstance(data, dict):
            raise EditError(f"An edit request must be a JSON object, not {type(data).__name__}.")
        if "mode" not in data:
            raise EditError(f"The request has no 'mode'; use one of {', '.join(mode_names())}.")
        mode = get_mode(data["mode"])
        options = data.get("options", {})
        if not isinstance(options, dict):
            raise EditError('"options" must be a JSON object such as {"seed": 1}.')
        names = set(option_names())
        given = {k: v for k, v in data.items() if k not in ("mode", "options")}
        options = {**options, **{k: given.pop(k) for k in list(given) if k in names}}
        for f in mode.request_fields:
            if f.picture and given.get(f.name) is not None:
                given[f.name] = _picture_from_json(f.name, given[f.name], base_dir)
        return cls(mode.name, **given, options=EditOptions.from_dict(options, defaults))


def _png_data_url(value: Picture) -> str:
    if isinstance(value, bytes):
        data = value
    else:
        image = value if isinstance(value, Image.Image) else _array_image(value)
        buf = io.BytesIO()
        image.save(buf, format="PNG", **carried(image))
        data = buf.getvalue()
    return PNG_PREFIX + base64.b64encode(data).decode("ascii")


def _array_image(value: Any) -> Image.Image:
    if isinstance(value, np.ndarray):
        array = value
        if array.dtype == bool:
            array = array.astype(np.uint8) * 255
        elif array.dtype != np.uint8:
            array = np.clip(np.asarray(array, np.float64) * (255 if array.max() <= 1 else 1), 0, 255).astype(np.uint8)
        return Image.fromarray(array)
    return Image.open(value)


def _picture_from_json(key: str, value: Any, base_dir: str | Path | None) -> Picture:
    """A path (relative ones from base_dir) or a data URL; pictures already in memory pass through."""
    if isinstance(value, Image.Image | np.ndarray | bytes):
        return value
    if not isinstance(value, str | Path):
        raise EditError(f"'{key}' must be a file path or a PNG data URL, not a {type(value).__name__}.")
    value = str(value)
    if value.startswith("data:"):
        try:
            return base64.b64decode(value.split(",", 1)[1], validate=True)
        except (IndexError, binascii.Error) as e:
            raise EditError(f"'{key}' is a data URL that does not hold base64 picture data.") from e
    path = Path(value)
    return path if path.is_absolute() or base_dir is None else Path(base_dir) / path
