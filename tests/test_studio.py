"""The studio without a browser: settings generated from the option table, the launcher's errors,
and what importing and stopping it leave behind."""

from __future__ import annotations

import dataclasses
import os
import socket
import subprocess
import sys
from pathlib import Path

import gradio as gr
from studio_server import Studio

from editing import EditOptions
from editing.options import option
from studio.settings import build_settings

ROOT = Path(__file__).resolve().parent.parent


def test_a_new_option_shows_up_in_the_settings():
    extended = dataclasses.make_dataclass(
        "Extended",
        [("sharpen", float, option(0.0, float, "Sharpen", "Sharpens edges.", low=0.0, high=1.0, step=0.1))],
        bases=(EditOptions,),
        frozen=True,
    )
    with gr.Blocks():
        settings = build_settings(EditOptions(cfg=4.0), 8, extended)
    widget = settings.widgets["sharpen"]
    assert isinstance(widget, gr.Slider) and widget.label == "Sharpen" and widget.info == "Sharpens edges."
    values = {w: w.value for w in settings.components}
    values[widget] = 0.3
    options = settings.options(values, EditOptions(cfg=4.0))
    assert isinstance(options, extended) and options.sharpen == 0.3 and options.cfg == 4.0
    assert settings.widgets["num_samples"].value == 4  # the table's studio default


def test_importing_the_studio_changes_no_environment():
    # OpenCV itself sets LD_LIBRARY_PATH when imported: compare after the libraries are in.
    code = (
        "import os, cv2, gradio, torch; before = dict(os.environ); import studio, studio.layout, app; "
        "print(dict(os.environ) == before)"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "True"


def test_a_taken_port_is_one_sentence():
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        run = subprocess.run(
            [sys.executable, "app.py", "--port", str(port)], cwd=ROOT, capture_output=True, text=True, timeout=120
        )
    assert run.returncode != 0
    assert f"port {port} on 127.0.0.1 is taken; pass another with --port N, or --port 0" in run.stderr
    assert "Traceback" not in run.stderr


def test_sigterm_removes_the_studio_files(tmp_path):
    studio = Studio([], tmp_path / "app.log", env={**os.environ, "TMPDIR": str(tmp_path)})
    assert list(tmp_path.glob("var-edit-app-*")), "the studio made no folder for its files"
    studio.stop()  # SIGTERM
    assert studio.proc.returncode == 0, studio.log[-3000:]
    assert not list(tmp_path.glob("var-edit-app-*"))


def test_a_killed_studio_leaves_nothing_after_the_next_start(tmp_path):
    from studio.workdir import remove_stale_workdirs

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = tmp_path / f"var-edit-app-{dead.pid}-abc"
    stale.mkdir()
    (stale / "result.png").write_bytes(b"x" * 1000)
    alive = tmp_path / f"var-edit-app-{os.getpid()}-def"
    alive.mkdir()
    assert remove_stale_workdirs(tmp_path) == [stale]
    assert not stale.exists() and alive.exists()
