"""The Infinity family in the editor, on a folder built from the upstream reference fixture (its tokenizer maps
the prompt to the fixture's ids): greedy generation gives upstream's picture, an in-paint keeps every pixel
outside its mask and records its prompt, the CLI writes upstream's picture, a seeded request is the same alone,
in a batch and in another process, previews come coarse to fine and Stop ends a run between scales."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from editing import EditCancelled, EditError, EditOptions, Editor, EditRequest, read_params
from infinity_core.testing import FIXTURE, build_fixture_folder

ROOT = Path(__file__).resolve().parents[1]
PROMPT = json.loads((FIXTURE / "config.json").read_text())["prompt"]
GREEDY = {"seed": 0, "top_k": 1, "cfg": 3.0, "tau": 0.5}
SAMPLED = {"seed": 11, "top_k": 0, "top_p": 0.9, "cfg": 2.0, "tau": 1.0}


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_fixture_folder(tmp_path_factory.mktemp("infinity") / "boat")


@pytest.fixture(scope="module")
def editor(folder: Path) -> Editor:
    return Editor.from_pretrained(folder, device="cpu")


def upstream_picture() -> np.ndarray:
    return np.asarray(Image.open(FIXTURE / "gen_image.png").convert("RGB")).astype(int)


def _mask() -> np.ndarray:
    mask = np.zeros((256, 256), np.uint8)
    mask[64:150, 90:210] = 255
    return mask


def test_greedy_generation_is_upstreams_picture(editor: Editor) -> None:
    options = EditOptions.from_dict(GREEDY)
    result = editor.run([EditRequest("generate", prompt=PROMPT, options=options)])[0]
    picture = np.asarray(result.images[0]).astype(int)
    assert picture.shape == upstream_picture().shape
    assert np.abs(picture - upstream_picture()).max() <= 1
    assert result.params["prompt"] == PROMPT and result.params["tau"] == 0.5


def test_inpaint_and_prompt_edit_keep_every_pixel_outside_the_mask(editor: Editor) -> None:
    picture, mask = upstream_picture().astype(np.uint8), _mask()
    options = EditOptions.from_dict(SAMPLED)
    inpaint = EditRequest("inpaint", picture, mask, prompt="a red fox", options=options)
    edit = EditRequest("prompt_edit", picture, mask, prompt="a small house", negative_prompt="snow", options=options)
    for result in editor.run([inpaint, edit]):
        out = np.asarray(result.images[0]).astype(int)
        assert np.array_equal(out[mask == 0], picture[mask == 0].astype(int))
        assert np.abs(out - picture)[mask > 0].mean() > 1, "nothing was redrawn"
    assert result.params["prompt"] == "a small house" and result.params["negative_prompt"] == "snow"
    with pytest.raises(EditError, match=r"^A prompt_edit request needs a prompt describing what to draw there\.$"):
        editor.run([EditRequest("prompt_edit", picture, mask)])
    with pytest.raises(EditError, match=r"^boat does not use the option 'more_smooth'; leave it out\.$"):
        editor.run([EditRequest("inpaint", picture, mask, options=EditOptions(more_smooth=True))])


def test_a_seeded_request_is_the_same_alone_in_a_batch_and_in_another_process(
    editor: Editor, folder: Path, tmp_path: Path
) -> None:
    options = EditOptions.from_dict(SAMPLED)
    request = EditRequest("generate", prompt="a boat on a lake", options=options)
    other = EditRequest("inpaint", upstream_picture().astype(np.uint8), _mask(), prompt="a cat", options=options)
    alone = np.asarray(editor.run([request])[0].images[0])
    batch = editor.run([other, request])
    assert np.array_equal(np.asarray(batch[1].images[0]), alone)
    assert not np.array_equal(np.asarray(batch[0].images[0]), alone)
    flags = ["--seed", "11", "--top-k", "0", "--top-p", "0.9", "--cfg", "2", "--tau", "1"]
    _cli(folder, tmp_path, "a boat on a lake", flags)
    assert np.array_equal(np.asarray(Image.open(tmp_path / "generated.generate.png").convert("RGB")), alone)


def test_the_cli_writes_upstreams_picture(folder: Path, tmp_path: Path) -> None:
    _cli(folder, tmp_path, PROMPT, ["--seed", "0", "--top-k", "1", "--cfg", "3", "--tau", "0.5"])
    written = tmp_path / "generated.generate.png"
    assert np.abs(np.asarray(Image.open(written).convert("RGB")).astype(int) - upstream_picture()).max() <= 1
    assert read_params(written)["prompt"] == PROMPT


def _cli(folder: Path, out: Path, prompt: str, flags: list[str]) -> None:
    args = ["--mode", "generate", "--model", str(folder), "--prompt", prompt, *flags, "--out-dir", str(out)]
    done = subprocess.run(
        [sys.executable, "-m", "editing", *args, "--device", "cpu"], cwd=ROOT, capture_output=True, text=True,
        timeout=900,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]


def test_previews_come_coarse_to_fine_and_stop_ends_the_run(editor: Editor) -> None:
    options = EditOptions.from_dict(SAMPLED)
    request = EditRequest("inpaint", upstream_picture().astype(np.uint8), _mask(), prompt="a cat", options=options)
    job = editor.submit([request], previews=True)
    steps = [p.step for p in job.updates(timeout=600)]
    job.result(timeout=60)
    assert steps == list(range(1, editor.num_scales + 1))
    stopped = editor.submit([request], previews=True)
    first = next(stopped.updates(timeout=600))
    stopped.cancel()
    assert first.step == 1 and len(first.previews[0]) == 1
    with pytest.raises(EditCancelled):
        stopped.result(timeout=600)
