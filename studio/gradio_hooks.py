"""The parts of Gradio the studio relies on that Gradio does not document, listed once: checked at start
(a Gradio without one is said in one sentence) and by tests/test_gradio_contract.py, which pins the
versions in requirements.txt to those it passes on.

Each entry: a dotted name and the parameters it must take first, in order (None: a class, present).
"""

from __future__ import annotations

import importlib
import inspect
from typing import Any

HOOKS: dict[str, tuple[str, ...] | None] = {
    # StudioBlocks overrides it: its checks of a call's values, answered in one sentence
    "gradio.blocks.Blocks.preprocess_data": ("self", "block_fn", "inputs", "state", "explicit_call"),
    # read by StudioBlocks.preprocess_data: a page-only handler has no fn; how many inputs it takes; its api_name
    "gradio.block_function.BlockFunction.__init__": ("self", "fn", "inputs"),
    # gradio_files replaces both module-wide: pictures cached whole, copies in the results ledger
    "gradio.processing_utils.save_pil_to_cache": ("img", "cache_dir", "name", "format"),
    "gradio.processing_utils.save_file_to_cache": ("file_path", "cache_dir"),
    "gradio.processing_utils.encode_pil_to_bytes": ("pil_image", "format"),
    "gradio.processing_utils.hash_bytes": ("bytes",),
    # api.value_input replaces it on an instance: a hidden input's JSON schema
    "gradio.components.base.Component.api_info": ("self",),
    # api.picture_input replaces it on an instance: the upload's path, without gr.File's stray temporary file
    "gradio.components.file.File.preprocess": ("self", "payload"),
    # runs.select reads the click from it (gr.SelectData fails inside Gradio on a call without one)
    "gradio.events.EventData.__init__": ("self", "target", "_data"),
    # api: a component's own refusal told apart from the studio's (print_exception=False)
    "gradio.exceptions.Error.__init__": ("self", "message", "duration", "visible", "title", "print_exception"),
    "gradio.exceptions.InvalidPathError": None,
    # launch.not_found_handlers: an unknown fn_index on /queue/join
    "gradio.route_utils.FnIndexInferError": None,
}
MCP_HOOKS: dict[str, tuple[str, ...] | None] = {  # mcp_tools, with --mcp only
    "gradio.mcp.GradioMCPServer.convert_strings_to_filedata": ("self", "value", "filedata_positions"),
    "gradio.mcp.GradioMCPServer._execute_tool_without_progress": ("self", "job"),
    "gradio.mcp.GradioMCPServer._execute_tool_with_progress": ("self", "job", "progress_token"),
}


def lookup(dotted: str) -> Any:
    """The object a dotted name names (a module, then attributes), or AttributeError / ImportError."""
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            found = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for name in parts[cut:]:
            found = getattr(found, name)
        return found
    raise ImportError(dotted)


def missing(mcp: bool = False) -> list[str]:
    """The hooks this Gradio lacks or takes otherwise (with the MCP server's when `mcp`)."""
    hooks = {**HOOKS, **(MCP_HOOKS if mcp else {})}
    absent = []
    for dotted, params in hooks.items():
        try:
            found = lookup(dotted)
            if params is not None:
                taken = tuple(inspect.signature(found).parameters)
                if taken[: len(params)] != params:
                    raise TypeError(taken)
            elif not inspect.isclass(found):
                raise TypeError(found)
        except (ImportError, AttributeError, TypeError, ValueError):
            absent.append(dotted)
    return absent


def problem(mcp: bool = False) -> str | None:
    """One sentence when this Gradio lacks a hook, else None."""
    absent = missing(mcp)
    if not absent:
        return None
    import gradio

    return (
        f"This Gradio ({gradio.__version__}) lacks {', '.join(absent)} as the studio uses it; install the "
        "Gradio that requirements.txt names (pip install -r requirements.txt)."
    )
