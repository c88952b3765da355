"""The named endpoints (one per mode) through gradio_client, raw HTTP and MCP (`python app.py --mcp`)."""

from __future__ import annotations

import asyncio
import base64
import io
import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import requests
from PIL import Image
from studio_server import Studio, running

ROOT = Path(__file__).resolve().parent.parent
FILE = {"_type": "gradio.FileData"}


@pytest.fixture(scope="module")
def studio(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Studio]:
    """`python app.py --mcp` on a free port."""
    with running(["--mcp"], tmp_path_factory.mktemp("endpoints") / "app.log") as started:
        yield started


def test_four_endpoints_with_gradio_client(studio, photo_and_mask):
    from gradio_client import Client, handle_file

    client = Client(studio.url, verbose=False)
    image, mask = handle_file(str(photo_and_mask["image"])), handle_file(str(photo_and_mask["mask"]))
    before = np.asarray(Image.open(photo_and_mask["image"]).convert("RGB"))
    outside = np.asarray(Image.open(photo_and_mask["mask"])) < 128

    path, params = client.predict(image, mask, {"seed": 3}, api_name="/inpaint")
    after = np.asarray(Image.open(path).convert("RGB"))
    assert params["mode"] == "inpaint" and params["seed"] == 3 and np.array_equal(after[outside], before[outside])

    path, params = client.predict(image, left=16, bottom=8, options={"seed": 4}, api_name="/outpaint")
    grown = np.asarray(Image.open(path).convert("RGB"))
    assert grown.shape == (88, 112, 3) and np.array_equal(grown[:80, 16:], before)
    assert (params["left"], params["right"], params["bottom"]) == (16, 0, 8)

    path, params = client.predict(image, mask, 2, {"seed": 5}, api_name="/edit_class")
    assert params["mode"] == "edit_class" and params["class_id"] == 2
    assert np.array_equal(np.asarray(Image.open(path).convert("RGB"))[outside], before[outside])

    path, params = client.predict(1, {"seed": 6}, api_name="/generate")
    assert params["mode"] == "generate" and Image.open(path).size == (64, 64)

    with pytest.raises(Exception, match="Class 99 does not exist"):
        client.predict(99, {}, api_name="/generate")
    # The range quoted is the loaded model's (the demo's classes), not a bound of the field.
    with pytest.raises(Exception, match=r"Class -1 does not exist: this model has classes 0 to \d \(\d+ for none\)\."):
        client.predict(image, mask, -1, {}, api_name="/edit_class")
    with pytest.raises(Exception, match="'class_id' must be a whole number"):
        client.predict(image, mask, 2.5, {}, api_name="/edit_class")


def _upload(url: str, path: Path) -> dict:
    response = requests.post(f"{url}gradio_api/upload", files={"files": path.open("rb")}, timeout=30)
    return {"path": response.json()[0], "meta": FILE}


def _call(url: str, name: str, body: str) -> tuple[str, object]:
    """POST a raw JSON body (NaN and Infinity tokens allowed) -> (event, data) of the call's end."""
    posted = requests.post(
        f"{url}gradio_api/call/{name}", data=body, headers={"Content-Type": "application/json"}, timeout=30
    )
    assert posted.status_code == 200, posted.text
    stream = requests.get(f"{url}gradio_api/call/{name}/{posted.json()['event_id']}", timeout=120).text
    event = [line[7:] for line in stream.splitlines() if line.startswith("event: ")][-1]
    data = [line[6:] for line in stream.splitlines() if line.startswith("data: ")][-1]
    return event, json.loads(data)


def test_hostile_requests_get_one_sentence_and_read_no_file(studio, photo_and_mask, tmp_path):
    """A server path or another mode in any field, fractional classes, NaN / Infinity / texts for numbers."""
    secret = tmp_path / "secret.png"
    Image.new("RGB", (40, 40), "red").save(secret)
    server_file = json.dumps({"path": str(secret), "meta": FILE})
    image = json.dumps(_upload(studio.url, photo_and_mask["image"]))
    mask = json.dumps(_upload(studio.url, photo_and_mask["mask"]))
    path = json.dumps(str(secret))
    probes = {
        "outpaint": [
            f'[{image}, {{"image": {path}, "right": 1}}, 0, 0, 0, null, null]',
            f'[{image}, 8, 0, 0, 0, null, {{"image": {path}}}]',
            f'[{image}, 8, 0, 0, 0, null, {{"mode": "generate"}}]',
            f'[{image}, {{"mode": "generate"}}, 0, 0, 0, null, null]',
            f"[{server_file}, 8, 0, 0, 0, null, null]",
            f"[{path}, 8, 0, 0, 0, null, null]",
            f"[{image}, 8, 0, 0, 0, {server_file}, null]",
            f"[{image}, NaN, 0, 0, 0, null, null]",
            f"[{image}, Infinity, 0, 0, 0, null, null]",
            f'[{image}, "8", 0, 0, 0, null, null]',
            f"[{image}, 2.5, 0, 0, 0, null, null]",
            f"[{image}, 0, 0, 0, 0, NaN, null]",
        ],
        "edit_class": [
            f"[{image}, {mask}, 2.5, null]",
            f'[{image}, {mask}, "2", null]',
            f"[{image}, {mask}, NaN, null]",
            f'[{image}, {mask}, 2, {{"seed": Infinity}}]',
            f'[{image}, {mask}, 2, {{"cfg": NaN}}]',
            f"[{image}, {server_file}, 2, null]",
        ],
        "inpaint": [f'[{image}, {mask}, {{"mask": {path}, "image": {path}}}]', f"[{image}, {mask}, [1]]"],
        "generate": [
            "[-Infinity, null]",
            '[{"image": ' + path + "}, null]",
            "[1, " + server_file + "]",
            '[1, {"num_samples": 2.5}]',
            "[1]",
        ],
    }
    for name, bodies in probes.items():
        for body in bodies:
            event, data = _call(studio.url, name, f'{{"data": {body}}}')
            assert event == "error", (name, body, data)
            text = data["error"]
            assert isinstance(text, str) and text.endswith(".") and ". " not in text.rstrip("."), (name, body, text)
    assert "Traceback" not in studio.log, studio.log[-3000:]


def _data_url(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode()


def test_an_mcp_client_calls_every_tool_and_gets_a_picture(studio, photo_and_mask):
    from mcp import ClientSession
    from mcp.client.streamable_http import streamable_http_client

    image, mask = _data_url(photo_and_mask["image"]), _data_url(photo_and_mask["mask"])
    arguments = {
        "inpaint": {"image": image, "mask": mask, "options": {"seed": 1}},
        "outpaint": {"image": image, "right": 16, "options": {"seed": 2}},
        "edit_class": {"image": image, "mask": mask, "class_id": 3, "options": {"seed": 3}},
        "generate": {"class_id": 1, "options": {"seed": 4}},
    }
    sizes = {"inpaint": (96, 80), "outpaint": (112, 80), "edit_class": (96, 80), "generate": (64, 64)}

    async def call_all() -> dict[str, list]:
        async with streamable_http_client(f"{studio.url}gradio_api/mcp/") as (read, write, _):
            async with ClientSession(read, write) as session:
                await session.initialize()
                tools = {t.name: t for t in (await session.list_tools()).tools}
                out = {}
                for wanted, args in arguments.items():
                    name = next(n for n in tools if n.endswith(wanted))
                    assert "{}" not in json.dumps(tools[name].inputSchema["properties"]), tools[name].inputSchema
                    result = await session.call_tool(name, args)
                    assert not result.isError, (wanted, result.content)
                    out[wanted] = result.content
                return out

    # A thread of its own: a browser test's Playwright may have left an event loop on the main thread.
    with ThreadPoolExecutor(1) as pool:
        answers = pool.submit(asyncio.run, call_all()).result()
    for mode, content in answers.items():
        pictures = [c for c in content if c.type == "image"]
        assert pictures, (mode, content)
        picture = Image.open(io.BytesIO(base64.b64decode(pictures[0].data)))
        assert picture.size == sizes[mode], (mode, picture.size)
