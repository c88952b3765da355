"""The model registry (editing.models): what a name is, what is listed, loading through a model family,
and the one editor interface that the local and the Ray Serve editor both implement."""

from __future__ import annotations

import inspect
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from editing import EditError, Editor, EditorProtocol, EditRequest, register_family, unregister_family
from editing.editor import preview_cells
from editing.interface import EditorProtocol as Interface
from editing.models import list_models, load_model, model_defaults, resolve
from editing.serving import RemoteEditor
from editing.var_family import VarClassConditional
from var_core import CheckpointError
from var_core.zoo import ZOO

TINY = Path(__file__).parent / "fixtures" / "tiny"


@pytest.fixture
def models(tmp_path: Path) -> Path:
    """A models folder with the tiny pair as the folder 'tiny'."""
    folder = tmp_path / "models" / "tiny"
    folder.mkdir(parents=True)
    for name in ("vae.safetensors", "var.safetensors"):
        shutil.copy(TINY / name, folder / name)
    return folder.parent


def test_a_name_is_the_demo_a_published_model_a_listed_folder_or_a_path(models):
    assert (resolve("demo").kind, resolve("d16").kind, resolve("d16").display_name) == ("demo", "published", "VAR-d16")
    listed = resolve("tiny", models)
    assert (listed.kind, listed.folder, listed.display_name) == ("folder", models / "tiny", "tiny")
    assert resolve(models / "tiny").folder == models / "tiny"
    with pytest.raises(CheckpointError, match=r"^No model named 'tiny' is listed; pick one of demo, d16, d20"):
        resolve("tiny", listed_only=True)
    with pytest.raises(CheckpointError, match="is listed"):
        resolve(str(models / "tiny"), models, listed_only=True)  # a path is a command-line choice only
    assert [e.name for e in list_models(models)] == ["demo", *ZOO, "tiny"]
    assert model_defaults("demo").cfg == 10.0


def test_a_second_family_is_registered_from_outside_and_keeps_to_its_modes(models):
    class GenerateOnly(VarClassConditional):
        name = "toy-generate-only"
        modes = frozenset({"generate"})

        def load(self, files, folder, device, dtype):
            model = super().load(files, folder, device, dtype)
            model.labels = [f"toy {i}" for i in range(model.var.num_classes)]
            return model

    register_family(GenerateOnly())
    try:
        (models / "tiny" / "model.json").write_text(json.dumps({"family": "toy-generate-only"}))
        editor = load_model("tiny", models, device="cpu")
        assert editor.family.name == "toy-generate-only" and editor.modes == ["generate"]
        assert editor.class_names[:2] == ["toy 0", "toy 1"]
        assert editor.generate(1).images
        picture = Image.new("RGB", (64, 64), "white")
        with pytest.raises(EditError, match=r"^tiny cannot inpaint; its family runs generate\.$"):
            editor.inpaint(picture, picture)
        (models / "tiny" / "model.json").write_text(json.dumps({"family": "text-to-image"}))
        with pytest.raises(CheckpointError, match="is a 'text-to-image' model, which this version cannot load"):
            load_model("tiny", models, device="cpu")
    finally:
        unregister_family("toy-generate-only")


def test_the_local_and_the_ray_editor_offer_the_same_interface(models):
    editor = Editor.from_pretrained(models / "tiny", device="cpu")
    assert isinstance(editor, EditorProtocol) and EditorProtocol is Interface
    attributes = set(inspect.get_annotations(Interface))  # plain attributes, set in __init__
    members = {m for m in dir(Interface) if not m.startswith("_")} - attributes
    assert members == {"info", "resolution", "num_scales", "modes", "run", "submit", "preview_cells"}
    assert all(hasattr(RemoteEditor, m) for m in members)
    setup = inspect.getsource(RemoteEditor.__init__)
    assert all(re.search(rf"self\.{a}\b.*=", setup) for a in attributes), attributes


def test_the_cells_preview_needs_only_the_geometry(models):
    editor = Editor.from_pretrained(models / "tiny", device="cpu")
    picture = Image.fromarray(np.full((64, 64, 3), 120, np.uint8))
    mask = np.zeros((64, 64), np.uint8)
    mask[10:30, 20:50] = 255
    request = EditRequest("inpaint", picture, Image.fromarray(mask))
    here = editor.preview_cells(request)
    alone = preview_cells(request, editor.geometry, editor.limits, editor.naming, editor.family)
    assert here.images == alone.images == [] and np.array_equal(here.regenerated, alone.regenerated)
    assert here.regenerated.any() and not here.regenerated.all()
