"""The mode registry: a mode declared in one place (here, a toy one from this file alone) becomes a
studio tab, a named endpoint and a CLI mode, and its recorded fields drive the CLI's rerun-skip."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from front_doors import launch
from PIL import Image

from editing import Editor, EditRequest, Mask, read_params, register, unregister
from editing.__main__ import main
from editing.canvas import load_image
from editing.modes import IMAGE, Inputs, Mode, field


class Centre(Mode):
    """Redraw a square of `size` pixels in the middle of the picture."""

    name = "centre"
    title = "Centre"
    button = "Redraw the centre"
    doc = "Redraw a square in the middle of a picture; the rest is kept."
    families = ("var-class",)  # a mode written after the families names those that run it
    fields = (IMAGE, field("size", int, "Square (px)", "the side of the square to redraw.", 16, low=1, high=4096))

    def inputs(self, request: EditRequest, limits: object) -> Inputs:
        picture = np.asarray(load_image(request.image))
        mask = np.zeros(picture.shape[:2], bool)
        H, W = mask.shape
        s = request.size
        mask[(H - s) // 2 : (H + s) // 2, (W - s) // 2 : (W + s) // 2] = True
        return Inputs(picture, Mask(mask))


@pytest.fixture
def centre() -> Iterator[None]:
    register(Centre)
    yield
    unregister("centre")


@pytest.fixture
def photo(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    Image.fromarray((rng.random((48, 64, 3)) * 255).astype(np.uint8)).save(tmp_path / "photo.png")
    return tmp_path / "photo.png"


def _outside_kept(path: str, photo: Path, size: int) -> bool:
    before, after = np.asarray(Image.open(photo).convert("RGB")), np.asarray(Image.open(path).convert("RGB"))
    H, W = before.shape[:2]
    outside = np.ones((H, W), bool)
    outside[(H - size) // 2 : (H + size) // 2, (W - size) // 2 : (W + size) // 2] = False
    return after.shape == before.shape and np.array_equal(after[outside], before[outside])


def test_a_registered_mode_is_a_tab_and_an_endpoint(centre, photo):
    from gradio_client import Client, handle_file

    from studio.layout import build_app

    demo = build_app(Editor.from_pretrained("demo", device="cpu"))
    tabs = [c["props"].get("label") for c in demo.config["components"] if c["type"] in ("tab", "tabitem")]
    buttons = [c["props"].get("value") for c in demo.config["components"] if c["type"] == "button"]
    assert "Centre" in tabs and "Redraw the centre" in buttons, (tabs, buttons)
    launch(demo)
    try:
        client = Client(demo.local_url, verbose=False)
        path, params = client.predict(handle_file(str(photo)), 12, {"seed": 1}, api_name="/centre")
        assert params["mode"] == "centre" and params["size"] == 12
        assert _outside_kept(path, photo, 12)
        with pytest.raises(Exception, match="'size' must be a whole number from 1 to 4096"):
            client.predict(handle_file(str(photo)), 2.5, None, api_name="/centre")
    finally:
        demo.close()


def test_a_registered_mode_is_a_cli_mode_whose_rerun_is_skipped(centre, photo, tmp_path, capsys):
    out = tmp_path / "out"
    args = [str(photo), "--mode", "centre", "--size", "8", "--out-dir", str(out)]
    assert main(args) == 0
    result = out / "photo.centre.png"
    assert read_params(result)["size"] == 8 and _outside_kept(str(result), photo, 8)
    assert main(args) == 0
    assert "1 skipped" in capsys.readouterr().out
    assert main([*args[:-4], "--size", "2.5", "--out-dir", str(out)]) == 1
    assert "'size' must be a whole number" in capsys.readouterr().err
