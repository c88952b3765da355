"""Pictures an MCP client sends as data URLs are uploads like any other: counted against
--max-upload-mb and the caps in all and per visitor, refused in one sentence past them, and removed
once the tool call is done. The `mcp` client against `python app.py --mcp`, in a TMPDIR of the test's own."""

from __future__ import annotations

import asyncio
import base64
import io
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
from PIL import Image
from studio_server import running

CAPS = ["--mcp", "--max-upload-mb", "1", "--max-uploads-per-visitor-mb", "2.5", "--max-uploads-mb", "10"]


def _data_url(picture: np.ndarray) -> str:
    buffer = io.BytesIO()
    Image.fromarray(picture).save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def _calls(url: str, calls: list[dict]) -> list[tuple[bool, list]]:
    """Each call's arguments to the in-paint tool -> (is an error, content), in one MCP session."""
    from mcp import ClientSession
    from mcp.client.streamable_http import streamable_http_client

    async def run() -> list[tuple[bool, list]]:
        async with streamable_http_client(f"{url}gradio_api/mcp/") as (read, write, _):
            async with ClientSession(read, write) as session:
                await session.initialize()
                name = next(t.name for t in (await session.list_tools()).tools if t.name.endswith("inpaint"))
                out = []
                for arguments in calls:
                    result = await session.call_tool(name, arguments)
                    out.append((result.isError, result.content))
                return out

    with ThreadPoolExecutor(1) as pool:  # a loop of its own (a browser test may hold the main thread's)
        return pool.submit(asyncio.run, run()).result()


def _text(content: list) -> str:
    return " ".join(getattr(c, "text", "") for c in content)


def test_mcp_pictures_are_counted_refused_past_the_caps_and_removed(tmp_path: Path):
    rng = np.random.default_rng(0)
    small = _data_url(rng.integers(0, 256, (64, 64, 3), np.uint8))
    mask = np.zeros((64, 64), np.uint8)
    mask[16:40, 16:40] = 255
    small_mask = _data_url(mask)
    too_big = _data_url(rng.integers(0, 256, (700, 700, 3), np.uint8))  # about 1.4 MB
    big = _data_url(rng.integers(0, 256, (520, 520, 3), np.uint8))  # about 0.8 MB
    (tmp_path / "tmp").mkdir()
    env = {**os.environ, "TMPDIR": str(tmp_path / "tmp")}
    with running(CAPS, tmp_path, env) as studio:
        cache = next((tmp_path / "tmp").glob("var-edit-app-*")) / "gradio"
        [(failed, content)] = _calls(studio.url, [{"image": small, "mask": small_mask, "options": {"seed": 1}}])
        assert not failed and any(c.type == "image" for c in content), _text(content)
        left = [p for p in cache.rglob("*") if p.is_file() and not p.name.startswith("var-edit-seed")]
        assert left == [], f"the pictures sent stayed: {left}"

        [(failed, content)] = _calls(studio.url, [{"image": too_big, "mask": small_mask}])
        assert failed and _text(content) == (
            "A picture is larger than the 1 MB this studio accepts per upload (--max-upload-mb); send a smaller one."
        )
        # Hold 1.9 MB of this visitor's 2.5 MB in plain uploads: a 0.8 MB picture more is past the cap.
        with httpx.Client(timeout=60) as client:
            for _ in range(2):
                held = client.post(studio.url + "gradio_api/upload", files=[("files", ("b.bin", os.urandom(950_000)))])
                assert held.status_code == 200, held.text
        [(failed, content)] = _calls(studio.url, [{"image": big, "mask": small_mask}])
        assert failed and "(--max-uploads-per-visitor-mb)" in _text(content), _text(content)
        assert "Traceback" not in studio.log
