"""Gradio's MCP server (`--mcp`), mended for the studio: a tool answers with every output of its
endpoint, and the pictures an MCP client sends as data URLs go through the upload ledger (each counted
against --max-upload-mb and the caps in all and per visitor, refused in one sentence past them, and
removed once the tool call is done). Applied only when the studio serves MCP.
"""

from __future__ import annotations

import contextvars
from typing import Any

from editing.errors import quoted

from .uploads import MB, Uploads

_SENT: contextvars.ContextVar[tuple[str, ...]] = contextvars.ContextVar("mcp_pictures_sent", default=())


def mend(uploads: Uploads) -> None:
    """Patch Gradio's MCP server class (once): every output returned, data-URL pictures in `uploads`."""
    try:
        from gradio.mcp import GradioMCPServer
    except ImportError:  # gradio without its [mcp] extra: no MCP server to mend
        return
    if getattr(GradioMCPServer, "mended_for_studio", False):
        GradioMCPServer.mended_for_studio = uploads  # the newest studio's ledger
        return
    GradioMCPServer.mended_for_studio = uploads
    convert = GradioMCPServer.convert_strings_to_filedata
    without_progress = GradioMCPServer._execute_tool_without_progress
    with_progress = GradioMCPServer._execute_tool_with_progress

    def ledger(server: Any) -> Uploads:
        return type(server).mended_for_studio

    def pictures_counted(self: Any, value: Any, filedata_positions: list[list[str | int]]) -> Any:
        visitor = _visitor(self)
        urls = [v for v in _strings(value) if v.startswith("data:")]
        sizes = [len(url) * 3 // 4 for url in urls]
        uploads = ledger(self)
        if any(size > uploads.file_mb * MB for size in sizes):
            raise ValueError(
                f"A picture is larger than the {uploads.file_mb:g} MB this studio accepts per upload "
                "(--max-upload-mb); send a smaller one."
            )
        refusal = uploads.admit(visitor, sum(sizes))
        if refusal is not None:
            raise ValueError(refusal)
        paths: list[str] = []
        try:
            try:
                converted = convert(self, value, filedata_positions)
            except ValueError as e:  # Gradio's "Invalid file data format … Received: <the whole value>"
                raise ValueError(_first_words(str(e))) from None
            paths = _file_paths(converted)  # the data URLs' files (URLs stay URLs)
        finally:
            uploads.settle(visitor, sum(sizes), paths)
        _SENT.set(tuple(paths))
        return converted

    async def released_after(execute: Any, self: Any, *args: Any) -> Any:
        try:
            return await execute(self, *args)
        finally:
            ledger(self).release(*_SENT.get())

    async def every_output(self: Any, job: Any) -> list[Any]:
        """A two-output endpoint's result, a tuple that Gradio wraps in a list and sends as one text,
        unpacked: the picture reaches the client as a picture."""
        data = await released_after(without_progress, self, job)
        return list(data[0]) if len(data) == 1 and isinstance(data[0], tuple) else data

    async def progress_released(self: Any, job: Any, progress_token: Any) -> Any:
        return await released_after(with_progress, self, job, progress_token)

    GradioMCPServer.convert_strings_to_filedata = pictures_counted  # type: ignore[method-assign]
    GradioMCPServer._execute_tool_without_progress = every_output  # type: ignore[method-assign]
    GradioMCPServer._execute_tool_with_progress = progress_released  # type: ignore[method-assign]


def _visitor(server: Any) -> str:
    """The MCP client's address, as uploads are counted by."""
    try:
        client = server.mcp_server.request_context.request.client
    except (AttributeError, LookupError):
        return "unknown"
    return client.host if client else "unknown"


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list | tuple):
        return [s for v in value for s in _strings(v)]
    return []


def _file_paths(value: Any) -> list[str]:
    """The paths of the files (gradio_client's handle_file dicts) in `value`."""
    if isinstance(value, dict):
        if value.get("meta", {}).get("_type") == "gradio.FileData" and "url" not in value:
            return [str(value["path"])]
        return [p for v in value.values() for p in _file_paths(v)]
    if isinstance(value, list | tuple):
        return [p for v in value for p in _file_paths(v)]
    return []


def _first_words(text: str) -> str:
    """Gradio's refusal of a picture argument, its echo of the value cut to a quote."""
    head, sep, value = text.partition("Received: ")
    return f"{head}Received: {quoted(value)}." if sep else text
