"""Gradio under contract: every part of Gradio the studio relies on that Gradio does not document is
named here with the parameters the studio calls it with, and checked on the installed Gradio (the
versions requirements.txt pins are those this passes on); a studio started on a Gradio without one
says so in one sentence and stops."""

from __future__ import annotations

import inspect
import os
import subprocess
import sys
from pathlib import Path

import gradio as gr

from studio import gradio_hooks

ROOT = Path(__file__).resolve().parent.parent
EXPECTED = {  # what the studio's code calls, by name and first parameters (None: a class)
    "gradio.blocks.Blocks.preprocess_data": ("self", "block_fn", "inputs", "state", "explicit_call"),
    "gradio.block_function.BlockFunction.__init__": ("self", "fn", "inputs"),
    "gradio.processing_utils.save_pil_to_cache": ("img", "cache_dir", "name", "format"),
    "gradio.processing_utils.save_file_to_cache": ("file_path", "cache_dir"),
    "gradio.processing_utils.encode_pil_to_bytes": ("pil_image", "format"),
    "gradio.processing_utils.hash_bytes": ("bytes",),
    "gradio.components.base.Component.api_info": ("self",),
    "gradio.components.file.File.preprocess": ("self", "payload"),
    "gradio.events.EventData.__init__": ("self", "target", "_data"),
    "gradio.exceptions.Error.__init__": ("self", "message", "duration", "visible", "title", "print_exception"),
    "gradio.exceptions.InvalidPathError": None,
    "gradio.route_utils.FnIndexInferError": None,
    "gradio.mcp.GradioMCPServer.convert_strings_to_filedata": ("self", "value", "filedata_positions"),
    "gradio.mcp.GradioMCPServer._execute_tool_without_progress": ("self", "job"),
    "gradio.mcp.GradioMCPServer._execute_tool_with_progress": ("self", "job", "progress_token"),
}


def test_every_hook_is_listed_and_present_on_this_gradio():
    assert {**gradio_hooks.HOOKS, **gradio_hooks.MCP_HOOKS} == EXPECTED
    assert gradio_hooks.missing(mcp=True) == []
    for dotted, params in EXPECTED.items():
        found = gradio_hooks.lookup(dotted)
        if params is None:
            assert inspect.isclass(found), dotted
        else:
            assert tuple(inspect.signature(found).parameters)[: len(params)] == params, dotted
    major, minor = (int(n) for n in gr.__version__.split(".")[:2])
    pin = next(line for line in (ROOT / "requirements.txt").read_text().splitlines() if line.startswith("gradio>"))
    assert pin == f"gradio>={major}.{minor},<{major}.{minor + 1}", "pin the Gradio this test passes on"


def test_what_the_studio_reads_off_gradio_objects():
    """The attributes behind the signatures: an event's data, a handler's function and inputs, an
    error's flag, the instance `api_info` Gradio asks a component for, the fn_index table."""
    from gradio.block_function import BlockFunction

    assert gr.EventData(None, {"index": 2})._data == {"index": 2}
    box = gr.JSON()
    box.api_info = lambda: {"type": "integer"}
    assert box.api_info() == {"type": "integer"}
    assert gr.Error("x", print_exception=False).print_exception is False
    with gr.Blocks() as demo:
        button = gr.Button()
        button.click(None, [button], [button], js="() => 1")
    fn = demo.fns[0]
    assert isinstance(fn, BlockFunction) and fn.fn is None and fn.inputs == [button]
    assert isinstance(demo.fns, dict)  # an unknown fn_index is a KeyError on /queue/join


def test_a_studio_on_a_gradio_without_a_hook_says_so_in_one_sentence(tmp_path):
    """A Gradio without `save_file_to_cache` (as a later version might be): the start stops, saying so."""
    shim = tmp_path / "sitecustomize.py"
    shim.write_text("import gradio.processing_utils as p\ndel p.save_file_to_cache\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(ROOT)]), "TMPDIR": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, str(ROOT / "app.py"), "--port", "0"], env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode != 0 and "Traceback" not in done.stderr, done.stderr[-2000:]
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("error: This Gradio (") and "gradio.processing_utils.save_file_to_cache" in last, last
    assert not list(tmp_path.glob("var-edit-app-*")), "the studio's folder is removed"
