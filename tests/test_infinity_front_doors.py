"""Every front door on a tiny random Infinity folder: the studio in Chromium (prompt box, run, result),
gradio_client, an MCP client's tool call, and the CLI in-process and on local Ray (a batch)."""

from __future__ import annotations

import base64
import io
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from front_doors import mcp_calls, studio_on
from PIL import Image

from editing import read_params
from infinity_core.testing import build_random_folder

ROOT = Path(__file__).resolve().parents[1]
SIDE = 256


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A models folder holding a tiny random Infinity as 'tiny-infinity'."""
    root = tmp_path_factory.mktemp("models")
    build_random_folder(root / "tiny-infinity")
    return root


@pytest.fixture(scope="module")
def photo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """jobs/photo.png (256 x 256) and jobs/photo.mask.png, the CLI's naming of a picture's mask."""
    jobs = tmp_path_factory.mktemp("jobs")
    rng = np.random.default_rng(0)
    Image.fromarray((rng.random((SIDE, SIDE, 3)) * 255).astype(np.uint8)).save(jobs / "photo.png")
    mask = np.zeros((SIDE, SIDE), np.uint8)
    mask[64:160, 80:200] = 255
    Image.fromarray(mask).save(jobs / "photo.mask.png")
    return jobs / "photo.png"


@pytest.fixture
def studio(models: Path) -> Iterator[Any]:
    with studio_on(models, "tiny-infinity", mcp=True) as demo:
        yield demo


def test_the_studio_has_a_prompt_box_that_generates(studio, browser) -> None:
    page = browser.new_page()
    try:
        page.goto(studio.local_url)
        page.get_by_role("tab", name="Generate").click()
        box = page.locator("#tab-generate #prompt textarea, #tab-generate #prompt input").first
        box.wait_for(state="visible", timeout=120_000)
        page.locator("#tab-generate #class-dd").wait_for(state="hidden", timeout=60_000)
        box.fill("a red boat on a calm lake")
        page.click("#run-generate")
        page.wait_for_function(
            "() => /^(Done|Failed)/.test(document.querySelector('#status textarea').value)", timeout=600_000
        )
        assert page.input_value("#status textarea").startswith("Done"), page.input_value("#status textarea")
    finally:
        page.close()


def test_gradio_client_and_an_mcp_tool_edit_with_a_prompt(studio, photo) -> None:
    from gradio_client import Client, handle_file

    client = Client(studio.local_url, verbose=False)
    mask = photo.with_name("photo.mask.png")
    path, params = client.predict(
        image=handle_file(str(photo)), mask=handle_file(str(mask)), prompt="a small house",
        options={"seed": 1, "tau": 1.0}, api_name="/prompt_edit",
    )  # fmt: skip
    assert params["prompt"] == "a small house" and read_params(path)["mode"] == "prompt_edit"
    outside = np.asarray(Image.open(mask)) == 0
    assert np.array_equal(np.asarray(Image.open(path).convert("RGB"))[outside], np.asarray(Image.open(photo))[outside])

    tools, [result] = mcp_calls(
        studio.local_url, [("generate", {"prompt": "a cat", "options": {"seed": 2, "tau": 1.0}})]
    )
    generate = next(tool for name, tool in tools.items() if name.endswith("generate"))
    assert generate.inputSchema["properties"]["prompt"]["anyOf"][0]["type"] == "string"
    assert not result.isError, result.content
    picture = next(c for c in result.content if c.type == "image")
    assert Image.open(io.BytesIO(base64.b64decode(picture.data))).size == (SIDE, SIDE)


def _cli(*args: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "editing", *args, "--device", "cpu"], cwd=ROOT, capture_output=True, text=True,
        timeout=1200,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]


def test_the_cli_and_a_ray_batch_in_paint_with_a_prompt_and_agree(models, photo, tmp_path) -> None:
    pytest.importorskip("ray", reason="Ray is an optional extra: pip install .[ray]")
    common = [str(photo.parent), "--model", str(models / "tiny-infinity"), "--prompt", "a red fox", "--seed", "4"]
    _cli(*common, "--tau", "1", "--out-dir", str(tmp_path / "alone"))
    _cli(*common, "--tau", "1", "--out-dir", str(tmp_path / "ray"), "--ray", "local", "--workers", "1")
    [alone] = (tmp_path / "alone").glob("photo*.png")
    [ray] = (tmp_path / "ray").glob("photo*.png")
    assert read_params(ray)["prompt"] == "a red fox" and read_params(ray)["tau"] == 1.0
    assert np.array_equal(np.asarray(Image.open(alone)), np.asarray(Image.open(ray)))
    outside = np.asarray(Image.open(photo.with_name("photo.mask.png"))) == 0
    assert np.array_equal(np.asarray(Image.open(ray).convert("RGB"))[outside], np.asarray(Image.open(photo))[outside])
