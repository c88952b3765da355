"""The four named endpoints through gradio_client, and the same four as MCP tools with --mcp."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from studio_server import running

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def app_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`python app.py --mcp` on a free port."""
    with running(["--mcp"], tmp_path_factory.mktemp("endpoints") / "app.log") as studio:
        yield studio.url


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("endpoint-files")
    rng = np.random.default_rng(0)
    Image.fromarray((rng.random((80, 96, 3)) * 255).astype(np.uint8)).save(d / "photo.png")
    mask = np.zeros((80, 96), np.uint8)
    mask[20:50, 30:70] = 255
    Image.fromarray(mask).save(d / "mask.png")
    return {"image": d / "photo.png", "mask": d / "mask.png"}


def test_four_endpoints_with_gradio_client(app_url, files):
    from gradio_client import Client, handle_file

    client = Client(app_url, verbose=False)
    image, mask = handle_file(str(files["image"])), handle_file(str(files["mask"]))
    before = np.asarray(Image.open(files["image"]).convert("RGB"))
    outside = np.asarray(Image.open(files["mask"])) < 128

    path, params = client.predict(image, mask, {"seed": 3}, api_name="/inpaint")
    after = np.asarray(Image.open(path).convert("RGB"))
    assert params["mode"] == "inpaint" and params["seed"] == 3 and np.array_equal(after[outside], before[outside])

    path, params = client.predict(image, {"left": 16, "bottom": 8}, {"seed": 4}, api_name="/outpaint")
    grown = np.asarray(Image.open(path).convert("RGB"))
    assert grown.shape == (88, 112, 3) and np.array_equal(grown[:80, 16:], before)

    path, params = client.predict(image, mask, 2, {"seed": 5}, api_name="/edit_class")
    assert params["mode"] == "edit_class" and params["class_id"] == 2
    assert np.array_equal(np.asarray(Image.open(path).convert("RGB"))[outside], before[outside])

    path, params = client.predict(1, {"seed": 6}, api_name="/generate")
    assert params["mode"] == "generate" and Image.open(path).size == (64, 64)

    with pytest.raises(Exception, match="Class 99 does not exist"):
        client.predict(99, {}, api_name="/generate")


def test_mcp_lists_the_four_tools(app_url):
    from mcp import ClientSession
    from mcp.client.streamable_http import streamable_http_client

    async def tools() -> dict[str, str]:
        async with streamable_http_client(f"{app_url}gradio_api/mcp/") as (read, write, _):
            async with ClientSession(read, write) as session:
                await session.initialize()
                listed = await session.list_tools()
                return {t.name: t.description or "" for t in listed.tools}

    found = asyncio.run(tools())
    for wanted in ("inpaint", "outpaint", "edit_class", "generate"):
        assert any(name.endswith(wanted) for name in found), found
    assert any("Grow a picture's canvas" in d for d in found.values()), found
