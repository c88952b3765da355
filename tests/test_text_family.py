"""The family seam: a toy text-conditioned family, registered from this file alone (a fake text encoder and a
tiny model, no product file changed for it), gets a prompt box in the studio (swapped with the class list
when the model panel switches models), a `prompt` parameter on its endpoints and MCP tools, CLI flags, its
prompt recorded in the PNG, and one sentence for a field or an option its family does not use."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import socket
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

from editing import EditError, EditOptions, Editor, EditRequest, Prompt, read_params, register_family, unregister_family
from editing.__main__ import build_parser, main
from editing.families import PROMPT_CHARS, ModelGeometry, Row, prompt_fields
from editing.models import ModelSwitch, load_model
from editing.options import OptionSpec
from var_core import CheckpointError

SIDE, STRIDE = 32, 8
PROMPT, NEGATIVE = prompt_fields()  # a prompt means one thing whatever family takes it
SPREAD = ("spread", 1.0, OptionSpec(float, "Temperature", "How much the colours vary.", low=0.0, high=4.0))


def fake_encoder(text: str | None) -> torch.Tensor:
    """A prompt -> 8 numbers (a stand-in for a text encoder): the same text, the same numbers."""
    digest = hashlib.blake2b((text or "").encode(), digest_size=8).digest()
    return torch.tensor(list(digest), dtype=torch.float32) / 255 - 0.5


class ToyModel:
    """Tokens are colours on grids 1x1, 2x2, 4x4 (8 px each); the tiny model maps the encoded prompt to a colour."""

    def __init__(self, family: ToyText) -> None:
        self.family = family
        self.labels: list[str] = []
        self.geometries = (ModelGeometry(((1, 1), (2, 2), (4, 4)), STRIDE),)
        self.head = torch.nn.Linear(8, 3)
        torch.nn.init.normal_(self.head.weight, std=4.0, generator=torch.Generator().manual_seed(0))
        self.dtype, self.parameters = "float32", sum(p.numel() for p in self.head.parameters())

    def to(self, device: str) -> ToyModel:
        return self

    def encode(self, x: np.ndarray, device: str) -> list[torch.Tensor]:
        """uint8 (32, 32, 3) -> per scale the mean colour of each cell (h * w, 3)."""
        image = torch.from_numpy(np.array(x)).permute(2, 0, 1)[None].float()
        return [torch.nn.functional.adaptive_avg_pool2d(image, hw)[0].flatten(1).T for hw in self.geometries[0].scales]

    def pass_key(self, options: EditOptions) -> int:
        return 0

    def sample(self, rows: list[Row], device: str) -> ToySampling:
        return ToySampling(self, rows)


class ToySampling:
    def __init__(self, model: ToyModel, rows: list[Row]) -> None:
        self.model, self.rows, self.k, self.maps = model, rows, -1, []

    def __iter__(self) -> ToySampling:
        return self

    def __next__(self) -> int:
        if self.k + 1 >= len(self.model.geometries[0].scales):
            raise StopIteration
        self.k += 1
        self.maps.append([self._scale(row) for row in self.rows])
        return self.k

    def _scale(self, row: Row) -> torch.Tensor:
        h, w = self.model.geometries[0].scales[self.k]
        assert isinstance(row.conditioning, Prompt)
        colour = torch.sigmoid(self.model.head(fake_encoder(row.conditioning.text))) * 255
        noise = torch.randn(h * w, 3, generator=torch.Generator().manual_seed(row.seed + self.k))
        noise = noise * 8 * row.options.spread
        drawn = (colour + noise).clamp(0, 255)
        if row.source is None or row.regenerate is None:
            return drawn
        return torch.where(row.regenerate[self.k].view(-1, 1), drawn, row.source[self.k])

    def _picture(self, k: int, r: int) -> np.ndarray:
        h, w = self.model.geometries[0].scales[k]
        cells = self.maps[k][r].round().to(torch.uint8).view(h, w, 3).numpy()
        return np.ascontiguousarray(cells.repeat(SIDE // h, 0).repeat(SIDE // w, 1))

    def preview(self, k: int) -> list[np.ndarray]:
        return [self._picture(k, r) for r in range(len(self.rows))]

    def final(self, row: int) -> np.ndarray:
        return self._picture(len(self.maps) - 1, row)[None]


class ToyText:
    name = "toy-text"
    modes = frozenset({"inpaint", "generate"})
    options = frozenset({"cfg"})
    option_table = (SPREAD,)

    def fields(self, mode: str) -> tuple:
        return (PROMPT, NEGATIVE)

    def conditioning(self, fields: dict[str, Any]) -> Prompt:
        return Prompt(fields.get("prompt"), fields.get("negative_prompt"))

    def files(self, folder: Path) -> list[Path]:
        if not (folder / "toy.json").is_file():
            raise CheckpointError(f"No toy.json in {folder.name}.")
        return [folder / "toy.json"]

    def resolution(self, files: list[Path]) -> int:
        return json.loads(files[0].read_text())["side"]

    def load(self, files: list[Path], folder: Path | None, device: str, dtype: torch.dtype) -> ToyModel:
        return ToyModel(self)


@pytest.fixture
def models(tmp_path: Path) -> Iterator[Path]:
    """A models folder holding the toy text model as 'toy'; the family registered for the test."""
    register_family(ToyText())
    folder = tmp_path / "models" / "toy"
    folder.mkdir(parents=True)
    (folder / "model.json").write_text(json.dumps({"family": "toy-text"}))
    (folder / "toy.json").write_text(json.dumps({"side": SIDE}))
    yield tmp_path / "models"
    unregister_family("toy-text")


@pytest.fixture
def photo(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    Image.fromarray((rng.random((32, 32, 3)) * 255).astype(np.uint8)).save(tmp_path / "photo.png")
    mask = np.zeros((32, 32), np.uint8)
    mask[8:24, 8:24] = 255
    Image.fromarray(mask).save(tmp_path / "mask.png")
    return tmp_path / "photo.png"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_text_family_runs_with_its_prompt_recorded_and_other_families_fields_refused(models, photo):
    toy = load_model("toy", models, device="cpu")
    assert toy.info.family == "toy-text" and toy.info.class_names == [] and toy.modes == ["generate", "inpaint"]
    options = EditOptions.from_dict({"seed": 3, "spread": 0.5, "cfg": 2.0})
    fox = toy.run([EditRequest("generate", prompt="a red fox", options=options)])[0]
    assert fox.params["prompt"] == "a red fox" and fox.params["spread"] == 0.5 and fox.images[0].size == (SIDE, SIDE)
    owl = toy.run([EditRequest("generate", prompt="an owl", options=options)])[0]
    assert not np.array_equal(np.asarray(fox.images[0]), np.asarray(owl.images[0])), "the prompt changes nothing"
    edited = toy.inpaint(photo, photo.parent / "mask.png", EditOptions(seed=1), prompt="a red fox")
    before, after = np.asarray(Image.open(photo)), np.asarray(edited.images[0])
    outside = np.asarray(Image.open(photo.parent / "mask.png")) == 0
    assert np.array_equal(before[outside], after[outside]) and edited.params["prompt"] == "a red fox"

    demo = Editor.from_pretrained("demo", device="cpu")
    with pytest.raises(EditError, match=r"^demo takes no 'prompt' for generate; leave it out\.$"):
        demo.run([EditRequest("generate", prompt="a red fox")])
    with pytest.raises(EditError, match=r"^demo does not use the option 'spread'; leave it out\.$"):
        demo.run([EditRequest("generate", options=EditOptions.from_dict({"spread": 2.0}))])
    with pytest.raises(EditError, match=r"^toy takes no 'class_id' for generate; leave it out\.$"):
        toy.run([EditRequest("generate", class_id=1)])
    too_long = rf"^Field 'prompt' must be at most {PROMPT_CHARS} characters long, not {PROMPT_CHARS + 1}\.$"
    with pytest.raises(EditError, match=too_long):
        EditRequest("generate", prompt="x" * (PROMPT_CHARS + 1))
    with pytest.raises(EditError, match=r"^Field 'prompt' must be one line of text without control characters\.$"):
        EditRequest("generate", prompt="a fox\x1b[2J")
    with pytest.raises(EditError, match=r"^Field 'prompt' must be a text, not int\.$"):
        EditRequest("generate", prompt=3)


def test_the_cli_has_prompt_flags_records_the_prompt_and_skips_a_rerun(models, tmp_path, capsys):
    help_text = build_parser().format_help()
    assert "--prompt TEXT" in help_text and "--negative-prompt TEXT" in help_text and "--spread" in help_text
    out = tmp_path / "out"
    args = ["--mode", "generate", "--model", str(models / "toy"), "--prompt", "a red fox", "--seed", "0"]
    assert main([*args, "--spread", "0.5", "--out-dir", str(out)]) == 0
    params = read_params(out / "generated.generate.png")
    assert params["prompt"] == "a red fox" and params["spread"] == 0.5 and params["model"] == "toy"
    assert main([*args, "--spread", "0.5", "--out-dir", str(out)]) == 0
    assert "1 skipped" in capsys.readouterr().out
    assert main([*args[:-4], "--prompt", "a red fox\x07", "--out-dir", str(out)]) == 1
    assert "without control characters" in capsys.readouterr().err


def _studio(models: Path, mcp: bool = False) -> Any:
    from studio.layout import CSS, HEAD, build_app

    switch = ModelSwitch(lambda name, _: load_model(name, models, device="cpu", listed_only=True), models, "toy")
    demo = build_app(load_model("toy", models, device="cpu"), switch, mcp=mcp)
    demo.launch(
        prevent_thread_lock=True, server_name="127.0.0.1", server_port=_free_port(), css=CSS, head=HEAD, mcp_server=mcp
    )
    return demo


def test_the_endpoints_and_mcp_tools_take_a_prompt(models, photo):
    from gradio_client import Client, handle_file
    from mcp import ClientSession
    from mcp.client.streamable_http import streamable_http_client

    demo = _studio(models, mcp=True)
    try:
        client = Client(demo.local_url, verbose=False)
        named = {
            p["parameter_name"]: p
            for p in client.view_api(return_format="dict")["named_endpoints"]["/inpaint"]["parameters"]
        }
        assert named["prompt"]["type"]["anyOf"][0] == {"type": "string", "maxLength": PROMPT_CHARS}, named["prompt"]
        path, params = client.predict(
            image=handle_file(str(photo)), mask=handle_file(str(photo.parent / "mask.png")), prompt="a red fox",
            options={"seed": 1}, api_name="/inpaint",
        )  # fmt: skip
        assert params["prompt"] == "a red fox" and read_params(path)["prompt"] == "a red fox"
        with pytest.raises(Exception, match=f"must be at most {PROMPT_CHARS} characters long"):
            client.predict(prompt="y" * (PROMPT_CHARS + 1), api_name="/generate")

        async def call() -> Any:
            async with streamable_http_client(f"{demo.local_url}gradio_api/mcp/") as (read, write, _):
                async with ClientSession(read, write) as session:
                    await session.initialize()
                    tools = {t.name: t for t in (await session.list_tools()).tools}
                    name = next(n for n in tools if n.endswith("generate"))
                    assert tools[name].inputSchema["properties"]["prompt"]["anyOf"][0]["type"] == "string"
                    return await session.call_tool(name, {"prompt": "an owl", "options": {"seed": 2}})

        with ThreadPoolExecutor(1) as pool:
            result = pool.submit(asyncio.run, call()).result()
        assert not result.isError, result.content
        picture = next(c for c in result.content if c.type == "image")
        assert Image.open(__import__("io").BytesIO(base64.b64decode(picture.data))).size == (SIDE, SIDE)
    finally:
        demo.close()


def test_the_studio_shows_a_prompt_box_and_the_model_panel_swaps_it_for_the_class_list(models, browser):
    demo = _studio(models)
    page = browser.new_page()
    try:
        page.goto(demo.local_url)
        page.click("#tab-inpaint-button")
        prompt = page.locator("#tab-inpaint #prompt textarea, #tab-inpaint #prompt input").first
        prompt.wait_for(state="visible", timeout=60_000)
        page.click("#tab-generate-button")
        page.locator("#tab-generate #class-dd").wait_for(state="hidden", timeout=60_000)
        page.click("#model button.label-wrap")
        page.locator("#model-choice input").click()
        page.locator("ul[role='listbox'] li", has_text="demo").first.click()
        page.click("#load-model")
        page.locator("#tab-generate #class-dd").wait_for(state="visible", timeout=120_000)
        page.locator("#tab-generate #prompt").wait_for(state="hidden", timeout=60_000)
    finally:
        page.close()
        demo.close()
