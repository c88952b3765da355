"""Every mode as a person meets it on a tiny random Infinity folder: the studio's tabs follow the loaded model's
family (no Prompt edit tab beside a class model, no Class edit tab beside a text model, swapped by the model
panel both ways), a mode the family does not run is refused in one sentence, a request that leaves an option
out gets its family's default (upstream's for Infinity) through the studio, gradio_client and the CLI, generate
takes an optional prompt and any aspect template, out-paint keeps a grown canvas's aspect, and in-paint and prompt
edit draw a window of the template aspect nearest the mask's box rather than a square."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from front_doors import studio_on
from PIL import Image

from editing import EditError, EditOptions, Editor, EditRequest, read_params
from editing.__main__ import build_parser, main
from editing.families import FAMILIES
from editing.models import load_model, model_defaults
from infinity_core.schedules import ASPECTS, TEMPLATES, aspect_template
from infinity_core.testing import build_random_folder

NAME = "tiny-infinity"
UPSTREAM = FAMILIES["infinity"].defaults  # upstream's cfg, top-k and top-p


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("models")
    build_random_folder(root / NAME)
    return root


@pytest.fixture(scope="module")
def editor(models: Path) -> Editor:
    return load_model(NAME, models, device="cpu")


@pytest.fixture(scope="module")
def demo() -> Editor:
    return Editor.from_pretrained("demo", device="cpu")


def _picture(h: int, w: int, seed: int = 0) -> np.ndarray:
    return (np.random.default_rng(seed).random((h, w, 3)) * 255).astype(np.uint8)


def test_generate_draws_aspect_templates_and_names_them_when_one_is_not(editor: Editor, demo: Editor) -> None:
    options = EditOptions.from_dict({"seed": 5}, editor.defaults)
    sizes = set()
    for aspect in ("2:1", "3:4"):
        result = editor.run([EditRequest("generate", aspect=aspect, options=options)])[0]
        (w, h), (wanted_w, wanted_h) = result.images[0].size, map(int, aspect.split(":"))
        assert abs(h / w - wanted_h / wanted_w) < 0.02, (aspect, w, h)
        assert result.params["aspect"] == aspect and result.params["prompt"] == ""
        sizes.add((w, h))
    assert len(sizes) == 2
    assert len(ASPECTS) == len(TEMPLATES) and {aspect_template(a) for a in ASPECTS} == set(TEMPLATES)  # one each
    with pytest.raises(EditError, match=r"^Field 'aspect' must be one of 1:1, 5:4, .*, 1:3, not '16:9'\.$"):
        EditRequest("generate", prompt="a boat", aspect="16:9")
    with pytest.raises(EditError, match=r"^demo takes no 'aspect' for generate; leave it out\.$"):
        demo.run([EditRequest("generate", aspect="2:1")])
    with pytest.raises(EditError, match=r"^demo cannot prompt_edit; its family runs edit_class, generate, inpaint, "):
        demo.run([EditRequest("prompt_edit", _picture(64, 64), np.ones((64, 64), bool), prompt="a cat")])


def test_outpaint_keeps_the_grown_canvas_aspect_and_every_pixel_outside_and_a_batch_changes_nothing(
    editor: Editor, demo: Editor
) -> None:
    picture = _picture(200, 300)
    options = EditOptions.from_dict({"seed": 7, "tau": 1.0}, editor.defaults)
    wide = EditRequest("outpaint", picture, right=100, prompt="the sea", options=options)  # 400 x 200: 2:1
    tall = EditRequest("outpaint", picture, top=250, prompt="a sky", options=options)  # 300 x 450: 2:3
    alone = editor.run([wide])[0]
    out = np.asarray(alone.images[0])
    assert out.shape == (200, 400, 3) and np.array_equal(out[:, :300], picture)
    assert np.abs(out[:, 300:].astype(int) - picture[:, -1:].astype(int)).mean() > 1, "nothing was drawn"
    assert alone.regenerated.shape == (11, 22) and alone.region.rows * 2 == alone.region.side  # the 2:1 template
    batch = editor.run([tall, wide])  # two geometries: two passes
    assert np.array_equal(np.asarray(batch[1].images[0]), out)
    grown = np.asarray(batch[0].images[0])
    assert grown.shape == (450, 300, 3) and np.array_equal(grown[250:], picture)
    h, w = batch[0].regenerated.shape
    assert h * 2 == w * 3, (h, w)  # the 2:3 template, not a square crop

    var = demo.run([EditRequest("outpaint", _picture(64, 64), right=16, options=EditOptions(seed=1))])[0]
    assert var.region.height is None and var.regenerated.shape[0] == var.regenerated.shape[1]  # VAR stays square


def _mask(h: int, w: int, rows: slice, cols: slice) -> np.ndarray:
    mask = np.zeros((h, w), bool)
    mask[rows, cols] = True
    return mask


def test_inpaint_and_prompt_edit_draw_the_window_of_the_nearest_template_aspect_keeping_every_pixel_outside(
    editor: Editor, demo: Editor
) -> None:
    options = EditOptions.from_dict({"seed": 11, "tau": 1.0}, editor.defaults)
    wide_picture, tall_picture = _picture(200, 400, 1), _picture(400, 200, 2)
    wide_mask, tall_mask = (
        _mask(200, 400, slice(50, 150), slice(50, 350)),
        _mask(400, 200, slice(50, 350), slice(50, 150)),
    )
    wide = EditRequest("inpaint", wide_picture, wide_mask, prompt="a long boat", options=options)
    tall = EditRequest("prompt_edit", tall_picture, tall_mask, prompt="a tower", options=options)
    job = editor.submit([tall, wide], previews=True)  # two aspects: two passes
    shown: dict[int, set[tuple[int, int]]] = {0: set(), 1: set()}
    for progress in job.updates(timeout=600):
        for slot, images in progress.previews.items():
            shown[slot] |= {image.size for image in images}
    batch = job.result(timeout=60)
    for result, picture, mask, grid in (
        (batch[1], wide_picture, wide_mask, (11, 22)),
        (batch[0], tall_picture, tall_mask, (22, 11)),
    ):
        out = np.asarray(result.images[0])
        assert out.shape == picture.shape and np.array_equal(out[~mask], picture[~mask])  # every pixel outside kept
        assert np.abs(out[mask].astype(int) - picture[mask].astype(int)).mean() > 1, "nothing was drawn"
        h, w = picture.shape[:2]
        assert result.region.box() == (0, 0, w, h)  # the whole picture, at its own aspect
        assert result.regenerated.shape == grid  # the 2:1 (1:2) template's finest grid, not a square one
    assert shown[1] == {(352, 176)} and shown[0] == {(176, 352)}  # previews at the template's size
    assert batch[0].params["prompt"] == "a tower" and batch[1].params["prompt"] == "a long boat"
    alone = editor.run([wide])[0]  # the same seeded picture alone as in a batch
    assert np.array_equal(np.asarray(alone.images[0]), np.asarray(batch[1].images[0]))

    square, band = _picture(512, 512, 3), _mask(512, 512, slice(230, 280), slice(100, 400))
    strip = editor.run([EditRequest("inpaint", square, band, options=options)])[0]  # a window inside the picture
    assert np.array_equal(np.asarray(strip.images[0])[~band], square[~band])
    post = editor.preview_cells(
        EditRequest("prompt_edit", square, _mask(512, 512, slice(100, 400), slice(240, 260)), prompt="a post")
    )
    for edit, aspect, grid in ((strip, 3.0, (9, 27)), (post, 1 / 3, (27, 9))):  # width / height: 3:1, 1:3
        region = edit.region
        assert abs(region.side / region.rows / aspect - 1) < 0.01, (region, aspect)
        assert edit.regenerated.shape == grid
        x0, y0, x1, y1 = region.box()
        painted = np.asarray(edit.mask) > 0
        assert region.within(512, 512) and painted[y0:y1, x0:x1].sum() == painted.sum()  # inside, holding the mask
    var = demo.preview_cells(EditRequest("inpaint", _picture(64, 128), _mask(64, 128, slice(20, 40), slice(10, 110))))
    assert var.region.height is None and var.regenerated.shape[0] == var.regenerated.shape[1]  # VAR stays square


def test_the_cli_says_and_uses_each_familys_defaults_and_draws_an_aspect(models: Path, tmp_path: Path) -> None:
    help_text = " ".join(build_parser().format_help().split())
    assert "Default: 1.5 (infinity models: 3.0)" in help_text and "Default: 0.96 (infinity models: 0.97)" in help_text
    assert "Needed by prompt_edit" in help_text
    assert model_defaults("infinity-125m").cfg == UPSTREAM["cfg"]  # what a Ray run of a published Infinity starts from
    args = ["--mode", "generate", "--model", str(models / NAME), "--seed", "3", "--device", "cpu"]
    assert main([*args, "--out-dir", str(tmp_path / "plain")]) == 0  # no prompt: an unconditional generation
    params = read_params(tmp_path / "plain" / "generated.generate.png")
    assert {k: params[k] for k in UPSTREAM} == UPSTREAM and params["tau"] == 0.5 and params["prompt"] == ""
    assert main([*args, "--prompt", "a boat", "--aspect", "5:2", "--out-dir", str(tmp_path / "wide")]) == 0
    wide = tmp_path / "wide" / "generated.generate.png"
    assert Image.open(wide).size == (400, 160) and read_params(wide)["aspect"] == "5:2"


@pytest.fixture
def studio(models: Path) -> Iterator[Any]:
    """A studio on the tiny Infinity that may switch to the demo and back."""
    with studio_on(models, NAME) as demo:
        yield demo


def test_gradio_client_gets_the_familys_defaults_aspects_and_one_sentence_for_a_mode_it_does_not_run(
    studio, tmp_path: Path
) -> None:
    from gradio_client import Client, handle_file

    client = Client(studio.local_url, verbose=False)
    api = client.view_api(return_format="dict")["named_endpoints"]
    aspect = next(p for p in api["/generate"]["parameters"] if p["parameter_name"] == "aspect")
    assert aspect["type"]["anyOf"][0]["enum"] == list(ASPECTS) and aspect["parameter_has_default"]
    edit = {p["parameter_name"]: p for p in api["/prompt_edit"]["parameters"]}
    assert not edit["prompt"]["parameter_has_default"]  # a prompt edit needs its prompt; generate does not
    path, params = client.predict(options={"seed": 2}, aspect="3:2", api_name="/generate")
    assert {k: params[k] for k in UPSTREAM} == UPSTREAM and params["tau"] == 0.5
    assert Image.open(path).size == (336, 224) and read_params(path)["cfg"] == UPSTREAM["cfg"]
    Image.fromarray(_picture(64, 64)).save(tmp_path / "photo.png")
    Image.fromarray(np.full((64, 64), 255, np.uint8)).save(tmp_path / "mask.png")
    with pytest.raises(Exception, match=r"tiny-infinity cannot edit_class; its family runs generate, inpaint, "):
        client.predict(
            image=handle_file(str(tmp_path / "photo.png")), mask=handle_file(str(tmp_path / "mask.png")), class_id=1,
            options={"seed": 1}, api_name="/edit_class",
        )  # fmt: skip


def _visible(page: Any, selector: str) -> None:
    page.locator(selector).wait_for(state="visible", timeout=120_000)


def _load(page: Any, name: str) -> None:
    page.locator("#model-choice input").click()
    page.locator("ul[role='listbox'] li", has_text=name).first.click()
    page.click("#load-model")


def _cfg_shows(page: Any, value: float) -> None:
    """Wait until the settings' cfg box shows `value`."""
    page.wait_for_function(
        "v => parseFloat(document.querySelector('#opt-cfg input[type=number]')?.value) === v", arg=value,
        timeout=60_000,
    )  # fmt: skip


def test_the_tabs_and_defaults_follow_the_loaded_family_both_ways(studio, browser) -> None:
    page = browser.new_page()
    try:
        page.goto(studio.local_url)
        _visible(page, "#tab-prompt-button")
        assert page.locator("#tab-class-button:visible").count() == 0  # the page is drawn: no Class edit tab
        page.click("#settings button.label-wrap")
        _cfg_shows(page, UPSTREAM["cfg"])
        page.click("#tab-generate-button")
        _visible(page, "#tab-generate #aspect")
        assert page.locator("#tab-generate #class-dd:visible").count() == 0
        page.click("#run-generate")  # the prompt box left empty: anything
        page.wait_for_function(
            "() => /^(Done|Failed)/.test(document.querySelector('#status textarea').value)", timeout=300_000
        )
        assert page.input_value("#status textarea").startswith("Done"), page.input_value("#status textarea")

        page.click("#model button.label-wrap")
        _load(page, "demo")
        _visible(page, "#tab-class-button")
        page.locator("#tab-prompt-button").wait_for(state="hidden", timeout=60_000)
        page.locator("#tab-generate #aspect").wait_for(state="hidden", timeout=60_000)
        _visible(page, "#tab-generate #class-dd")
        _cfg_shows(page, 10.0)  # the demo's own defaults.json

        _load(page, NAME)
        _visible(page, "#tab-prompt-button")
        page.locator("#tab-class-button").wait_for(state="hidden", timeout=60_000)
        _visible(page, "#tab-generate #aspect")
        _cfg_shows(page, UPSTREAM["cfg"])
    finally:
        page.close()
