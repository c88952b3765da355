"""The studio's front doors as the tests reach them from this process: the studio built here on a models folder
and served on a free loopback port, and MCP tool calls in one client session."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from editing.models import ModelSwitch, load_model


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch(demo: Any, mcp: bool = False) -> None:
    """`demo.launch` in this process, tried again where a busy machine fails Gradio's own check that the page
    answers within 3 s ("When localhost is not accessible, a shareable link must be created")."""
    from studio.layout import CSS, HEAD

    for attempt in range(3):
        try:
            demo.launch(
                prevent_thread_lock=True, server_name="127.0.0.1", server_port=free_port(), css=CSS, head=HEAD,
                mcp_server=mcp,
            )  # fmt: skip
            return
        except ValueError as e:
            if "localhost is not accessible" not in str(e) or attempt == 2:
                raise
            demo.close()


@contextmanager
def studio_on(models: Path, name: str, mcp: bool = False) -> Iterator[Any]:
    """The studio on model `name` of the folder `models` (its model panel lists that folder), served from this
    process for the `with` block; `mcp`: with its MCP server."""
    from studio.layout import build_app

    switch = ModelSwitch(lambda n, _: load_model(n, models, device="cpu", listed_only=True), models, name)
    demo = build_app(load_model(name, models, device="cpu"), switch, mcp=mcp)
    launch(demo, mcp)
    try:
        yield demo
    finally:
        demo.close()


def mcp_calls(url: str, calls: list[tuple[str, dict[str, Any]]]) -> tuple[dict[str, Any], list[Any]]:
    """In one MCP session on the studio at `url`: its tools by name, and the result of each call (the tool whose
    name ends with the given one, with the given arguments)."""
    from mcp import ClientSession
    from mcp.client.streamable_http import streamable_http_client

    async def run() -> tuple[dict[str, Any], list[Any]]:
        async with streamable_http_client(f"{url}gradio_api/mcp/") as (read, write, _):
            async with ClientSession(read, write) as session:
                await session.initialize()
                tools = {t.name: t for t in (await session.list_tools()).tools}
                results = []
                for suffix, arguments in calls:
                    results.append(await session.call_tool(next(n for n in tools if n.endswith(suffix)), arguments))
                return tools, results

    with ThreadPoolExecutor(1) as pool:  # a loop of its own (a browser test's Playwright may hold this thread's)
        return pool.submit(asyncio.run, run()).result()
