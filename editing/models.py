"""Every model by name, in one place: the bundled demo, the published ones and model folders.

    list_models(models_dir)     -> demo, d16 … d36, infinity-2b, infinity-125m, then each folder of models_dir
                                   with its family's files,
                                   with resolution, bytes on disk (or to download) and whether it is here
    resolve("d16", models_dir)  -> ModelRef: what a name or folder path is (demo, published, folder)
    load("d16", download=True)  -> Editor (Editor.from_pretrained and Editor.from_files end here)
    fetch_files("d16")          -> download what a published model lacks, checked against its sha256
    ModelSwitch                 -> a server's shared model, switched with the old one brought back on failure

Only here is "demo" a name: it is the bundled folder (resources.demo_dir). Published files are found,
downloaded and verified by var_core.zoo, which names each published model's family (VAR's are loaded from
their two files, Infinity's from the model folder the zoo makes of links to theirs); which files a folder
needs and how they become a model is the model family's (families.py).
"""

from __future__ import annotations

import gc
import json
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import torch

from var_core import CheckpointError
from var_core.zoo import (
    ZOO,
    MemoryEstimate,
    Progress,
    catalog,
    fetch,
    format_size,
    memory_estimate,
    model_folder,
    zoo_files,
)
from var_core.zoo import models_dir as default_models_dir

from .device import default_device, dtype_of
from .editor import Editor
from .errors import EditError, quoted
from .families import FAMILIES, ModelFamily, family_defaults, family_of
from .options import EditOptions
from .resources import demo_dir

if TYPE_CHECKING:
    from .interface import EditorProtocol

__all__ = [
    "DEMO",
    "ModelEntry",
    "ModelRef",
    "ModelSwitch",
    "SwitchError",
    "fetch_files",
    "folder_files",
    "format_size",
    "free_memory",
    "list_models",
    "load_model",
    "load_files",
    "load_folder",
    "model_defaults",
    "model_folders",
    "resolve",
]

DEMO = "demo"  # the bundled model's name
log = logging.getLogger("var-edit-models")


# ---- what a name is -------------------------------------------------------------------------------
@dataclass(frozen=True)
class ModelRef:
    """A resolved model: `name` is what it is listed by; `folder` holds its files (None: published)."""

    name: str
    kind: str  # "demo", "published" or "folder"
    folder: Path | None

    @property
    def display_name(self) -> str:
        """The name an Editor of it carries (published ones by their title: VAR-d16, Infinity-2B)."""
        return ZOO[self.name].title if self.kind == "published" else self.name

    @property
    def family(self) -> ModelFamily:
        return FAMILIES[ZOO[self.name].family] if self.kind == "published" else family_of(self.folder)


@dataclass(frozen=True)
class ModelEntry:
    """A loadable model: `name` is what to load it by; `size` is bytes on disk when `present`, else to download;
    `memory`, what a published model needs on a GPU and on a CPU (an estimate; None for the others)."""

    name: str
    kind: str  # "demo", "published" or "folder"
    resolution: int | None  # None: the files could not be read
    size: int
    present: bool
    memory: MemoryEstimate | None = None


def folder_files(folder: Path) -> list[Path]:
    """The weight files of a model folder, as its family (model.json) names them (VAR: vae*, var*)."""
    return family_of(folder).files(folder)


def model_folders(models_dir: str | Path | None = None) -> list[Path]:
    """The folders of models_dir (default: the models folder) holding their family's files (VAR: a vae*/var*
    checkpoint pair), and those naming a family this version does not know (loading one says so), by name;
    names taken by the demo or a published model are skipped."""
    root = Path(models_dir) if models_dir is not None else default_models_dir()
    if not root.is_dir():
        return []
    found = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        if folder.name == DEMO or folder.name in ZOO:
            continue
        try:
            family = family_of(folder)
        except CheckpointError:  # a family this version does not know: listed, and loading it says so
            found.append(folder)
            continue
        try:
            family.files(folder)
        except (OSError, ValueError):
            continue
        found.append(folder)
    return found


def resolve(name_or_folder: str | Path, models_dir: str | Path | None = None, listed_only: bool = False) -> ModelRef:
    """'demo', a published name ('d16' … 'd36', 'infinity-2b', 'infinity-125m'), a folder of models_dir by name,
    or (unless listed_only) the path of a folder; anything else is refused in one sentence that names no server path."""
    key = str(name_or_folder)
    if key in ZOO:
        return ModelRef(key, "published", None)
    if key == DEMO:
        return ModelRef(DEMO, "demo", demo_dir())
    folders = {folder.name: folder for folder in model_folders(models_dir)}
    if key in folders:
        return ModelRef(key, "folder", folders[key])
    if listed_only:
        names = ", ".join([DEMO, *ZOO, *folders])
        raise CheckpointError(f"No model named {quoted(key)} is listed; pick one of {names}.")
    folder = Path(key)
    if not folder.is_dir():
        raise CheckpointError(
            f"No model named {quoted(key)}: use demo, {', '.join(ZOO)}, or a folder with a checkpoint pair."
        )
    return ModelRef(folder.name, "folder", folder)


def model_defaults(name_or_folder: str | Path, models_dir: str | Path | None = None) -> EditOptions:
    """A model's default options without loading it: its family's (`families.family_defaults`), with its
    folder's defaults.json on top."""
    folder = resolve(name_or_folder, models_dir).folder
    family = family_defaults(family_of(folder))
    defaults_file = folder / "defaults.json" if folder is not None else None
    if defaults_file is None or not defaults_file.is_file():
        return family
    try:
        return EditOptions.from_dict(json.loads(defaults_file.read_text()), family)
    except (EditError, json.JSONDecodeError) as e:
        raise CheckpointError(f"defaults.json of {defaults_file.parent.name} is not valid: {e}") from e


# ---- what there is --------------------------------------------------------------------------------
_resolutions: dict[tuple[str, float, float], int | None] = {}


def folder_resolution(folder: Path) -> int | None:
    """A model folder's picture size read off its checkpoints (memory-mapped, nothing built); None if unreadable."""
    try:
        family = family_of(folder)
        files = family.files(folder)
        key = (str(folder.resolve()), *(p.stat().st_mtime for p in files))
    except (OSError, ValueError):
        return None
    if key not in _resolutions:
        try:
            _resolutions[key] = family.resolution(files)
        except ValueError:
            _resolutions[key] = None
    return _resolutions[key]


def _folder_bytes(folder: Path) -> int:
    try:
        return sum(_bytes(p) for p in folder_files(folder))
    except (OSError, ValueError):
        return 0


def _bytes(path: Path) -> int:
    """A file's size, or a folder's (a text encoder's files) in all."""
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return path.stat().st_size


def list_models(models_dir: str | Path | None = None) -> list[ModelEntry]:
    """demo, the published models, then the model folders of models_dir; reads no weights and asks no network."""
    demo = demo_dir()
    entries = [ModelEntry(DEMO, "demo", folder_resolution(demo), _folder_bytes(demo), True)]
    for card in catalog():
        size = sum(f.size for f in card.files) if card.present else card.download_bytes
        entries.append(
            ModelEntry(card.name, "published", card.resolution, size, card.present, memory_estimate(card.name))
        )
    for folder in model_folders(models_dir):
        entries.append(ModelEntry(folder.name, "folder", folder_resolution(folder), _folder_bytes(folder), True))
    return entries


# ---- loading --------------------------------------------------------------------------------------
def fetch_files(name: str, offline: bool | None = None, progress: Progress | None = None) -> None:
    """Download what a published model lacks (nothing for the demo and model folders), so that loading it
    needs no network; offline (or HF_HUB_OFFLINE=1) never touches the network."""
    if name in ZOO:
        fetch(name, offline, progress)


def load_files(
    vae_path: str | Path,
    var_path: str | Path,
    device: str | None = None,
    dtype: str | torch.dtype | None = None,
    class_names: list[str] | None = None,
    name: str | None = None,
    defaults: EditOptions | None = None,
) -> Editor:
    """An Editor from a VAR checkpoint pair (.pth or .safetensors); class_names: instead of the model's own."""
    device = device or default_device()
    model = family_of(None).load([Path(vae_path), Path(var_path)], None, device, dtype_of(dtype, device))
    if class_names:
        model.labels = list(class_names)
    return Editor(model, device, name or Path(var_path).stem, defaults)


def load_folder(
    folder: Path,
    device: str | None = None,
    dtype: str | torch.dtype | None = None,
    name: str | None = None,
    defaults: EditOptions | None = None,
) -> Editor:
    """An Editor from a model folder, through the family its model.json names."""
    device = device or default_device()
    family = family_of(folder)
    model = family.load(family.files(folder), folder, device, dtype_of(dtype, device))
    return Editor(model, device, name or folder.name, defaults)


def load_model(
    name_or_folder: str | Path = DEMO,
    models_dir: str | Path | None = None,
    device: str | None = None,
    dtype: str | torch.dtype | None = None,
    download: bool = False,
    offline: bool | None = None,
    progress: Progress | None = None,
    listed_only: bool = False,
) -> Editor:
    """The Editor of a model by name or folder (see `resolve`). download: fetch a published model's missing
    files (verified against their sha256); offline (or HF_HUB_OFFLINE=1) never touches the network."""
    ref = resolve(name_or_folder, models_dir, listed_only)
    if ref.folder is None and ZOO[ref.name].in_folder:
        folder = model_folder(ref.name, download, offline, progress)
        return load_folder(folder, device, dtype, ref.display_name)
    if ref.folder is None:
        vae_path, var_path = fetch(ref.name, offline, progress) if download else zoo_files(ref.name)
        return load_files(vae_path, var_path, device, dtype, name=ref.display_name)
    return load_folder(ref.folder, device, dtype, ref.display_name, model_defaults(ref.folder))


def free_memory() -> None:
    """Collect dropped models now and return cached device memory, so the next load has the room."""
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


# ---- switching a server's model -------------------------------------------------------------------
class SwitchError(ValueError):
    """A switch that did not happen, in one sentence."""


class EditorHolder(Protocol):
    """Whatever serves the shared model (the studio's session): the editor now, and a way to replace it."""

    editor: EditorProtocol | None

    def set_editor(self, editor: EditorProtocol | None, same_model: bool = False) -> None: ...


FileProgress = Callable[[str, int, "int | None"], None]  # (filename, bytes done, bytes in all or None)
Loader = Callable[[str, "FileProgress | None"], Editor]  # a listed name -> its model


class ModelSwitch:
    """The models a server may load by name (what `list_models` lists) and the switching of its shared model.

    load: turns a listed name into an Editor; fetch: downloads what a listed model lacks, following
    the download, while the old model still serves (None: load does it all); current: the listed
    name of the model the server started with (None: given by files, which `restore` loads again);
    allowed: False locks the model. A switch drops the old model before loading the new one, so two
    large models never sit in memory together; one that fails brings the old model back (or the demo).
    """

    def __init__(
        self,
        load: Loader,
        models_dir: str | Path | None = None,
        current: str | None = None,
        restore: Callable[[], Editor] | None = None,
        allowed: bool = True,
        fetch: Callable[[str, FileProgress | None], object] | None = None,
    ) -> None:
        self.load = load
        self.fetch = fetch
        self.models_dir = models_dir
        self.current = current
        self.restore = restore
        self.allowed = allowed
        self._lock = threading.Lock()

    def entries(self) -> list[ModelEntry]:
        """Every listed model, as it is on this machine now."""
        return list_models(self.models_dir)

    def switch(self, holder: EditorHolder, name: str | None, progress: FileProgress | None = None) -> Editor:
        """Make the listed model `name` the holder's model. The old one is dropped first (edits already
        running finish on it); on failure it is loaded again, else the demo, and SwitchError says why."""
        if not self.allowed:
            raise SwitchError("This studio's model is fixed; it is chosen where the studio is started (--model).")
        if not name:
            raise SwitchError("Pick a model in the list first.")
        if name not in {e.name for e in self.entries()}:
            raise SwitchError("Only the listed models can be loaded here; pick one from the list.")
        if not self._lock.acquire(blocking=False):
            raise SwitchError("Another model is being loaded right now; try again when it is done.")
        try:
            if self.fetch is not None:
                try:
                    self.fetch(name, progress)
                except Exception as e:
                    kept = holder.editor.info.name if holder.editor is not None else "the current model"
                    raise SwitchError(f"{self._reason(e, name)}; {kept} stays loaded.") from e
            holder.set_editor(None)
            free_memory()
            try:
                editor = self.load(name, progress)
            except Exception as e:
                reason = self._reason(e, name)
                raise SwitchError(f"{reason}; {self._bring_back(holder)} is loaded again.") from e
            holder.set_editor(editor)
            self.current, self.restore = name, None
            return editor
        finally:
            self._lock.release()

    def _reason(self, e: Exception, name: str) -> str:
        """Why a fetch or load failed, as the start of one sentence, with the models folder named as such
        where it was given as a full path (a page's visitors need not learn the server's folders)."""
        if not isinstance(e, ValueError):  # CheckpointError, EditError: already one sentence
            log.exception("loading model %s failed", name)
            return f"{name} could not be loaded (the server log has the details)"
        text = " ".join(str(e).split()).rstrip(".")
        folder = str(self.models_dir or "").rstrip("/")
        if folder and Path(folder).is_absolute():
            text = text.replace(folder + "/", "the models folder").replace(folder, "the models folder")
        return text

    def _bring_back(self, holder: EditorHolder) -> str:
        """Load the model from before a failed switch, else the demo; its name."""
        free_memory()
        try:
            editor = self.restore() if self.restore is not None else self.load(self.current or DEMO, None)
            holder.set_editor(editor, same_model=True)
        except Exception:
            log.exception("loading the previous model again failed; loading the demo")
            editor = self.load(DEMO, None)
            holder.set_editor(editor)
            self.current, self.restore = DEMO, None
        return editor.info.name
