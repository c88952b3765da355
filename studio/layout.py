"""The page: picture canvas and mode tabs on the left, live preview and candidates on the right."""

from __future__ import annotations

import atexit
from importlib import resources
from typing import Any

import gradio as gr

from editing import EditOptions, EditorProtocol
from editing.families import foreign_options
from editing.turns import EDITS_AT_ONCE

from . import canvas_io, gradio_files, history, page
from .again import PRESS_JS, again
from .api import StudioBlocks, add_endpoints
from .compare import compare_selected
from .mask_panel import MaskPanel
from .model_panel import ModelPanelView, ModelSwitch
from .pictures import BRUSH_COLOURS, BRUSH_SIZE
from .results import Results
from .runs import CANDIDATES, Outputs, run_handler, select
from .session import Session, user_error
from .settings import build_settings
from .tabs import build_tabs
from .tabs import outpaint as _outpaint  # noqa: F401  (registers out-paint's preview tool)
from .uploads import Uploads
from .workdir import Workdir

CSS = """
#live-preview img, #candidates img, #mask-cells img {image-rendering: pixelated;}
#candidates .grid-wrap {height: auto; max-height: none; min-height: 0;}
#candidates .thumbnail-item {aspect-ratio: auto; height: auto;}
#candidates .thumbnail-item img {width: 100%; height: auto; object-fit: contain;}
#candidates .gallery-item:only-child {width: 50%;}
#candidates .caption-label {position: static; transform: none; max-width: 100%; background: none; color: inherit;}
#candidates .thumbnail-item:has(img.wide) {grid-column: 1 / -1;}
#live-preview [data-testid='block-label'], #candidates [data-testid='block-label'],
#compare [data-testid='block-label'],
#mask-cells [data-testid='block-label'], #cells [data-testid='block-label'] {position: static;}
#canvas [data-testid='block-label'] {max-width: calc(100% - 180px); overflow-wrap: anywhere; white-space: normal;}
#page-title h1 {font-size: 1.6rem; margin-bottom: 0.2rem;}
@media (min-width: 1024px) {
  #result-column {position: sticky; top: 8px; align-self: flex-start;}
  #result-column #live-preview img {max-height: 40vh;}
}
@media (max-width: 640px) {
  #candidates .grid-container {grid-template-columns: repeat(2, minmax(0, 1fr)) !important;}
}
"""  # candidates at their own shape (photos are rarely square), the box as tall as they are, one at half width,
# panoramas (marked wide by the page's script) across the whole row, captions under the picture; the labels of
# pictures above them, never over them, the canvas's wrapped beside its toolbar; on wide
# screens the result column stays in view while the left column scrolls to the run buttons; on phones two a row
# launch with css=CSS, head=HEAD: the page's script that reads the canvas, and the one for upload messages
UPLOADS_JS = (resources.files("studio") / "static" / "uploads.js").read_text(encoding="utf-8")
HEAD = canvas_io.HEAD + "<script>" + UPLOADS_JS + "</script>"
STOPPING_JS = "(status) => /^(Starting|Waiting|Scale|Window|Planning)/.test(status || '') ? 'Stopping…' : status"


def build_app(
    editor: EditorProtocol,
    models: ModelSwitch | None = None,
    concurrency: int = EDITS_AT_ONCE,
    options_cls: type = EditOptions,
    time_limit: float | None = None,
    keep_files: float = 3600,
    workdir: Workdir | None = None,
    uploads: Uploads | None = None,
    results: Results | None = None,
    mcp: bool = False,
) -> gr.Blocks:
    """The editing studio around `editor` (for embedding: `build_app(editor).launch(css=CSS, head=HEAD)`).

    models: the listed models and switching between them for the Model panel (None: the model is
    fixed and no list is shown); concurrency: how many
    visitors' edits are accepted at once (their passes take turns on the device); options_cls: the
    option table the settings are generated from; time_limit: seconds an edit may run; keep_files:
    seconds after which served result files are deleted (a page keeps only its latest results);
    workdir: the studio's temporary folder (None: a new one), removed at exit; uploads: the ledger of
    uploads (caps: launch with app_kwargs={"middleware": [uploads.middleware()]}); results: the ledger
    of result files kept (None: the default caps); mcp: the studio will be launched with mcp_server=True.
    """
    session = Session(editor, time_limit, workdir, uploads, results)
    gradio_files.install(session.results)
    model_view = ModelPanelView(session, models)
    # Gradio's copies of served files: swept every 10 minutes, removed after keep_files seconds.
    with StudioBlocks(title="VAR editing studio", delete_cache=(600, int(keep_files))) as demo:
        gr.Markdown(
            "# VAR editing studio\nPaint over what should change, pick a mode, press run. "
            "Each result streams coarse-to-fine, one scale at a time.",
            elem_id="page-title",
        )
        model_view.build_notice()
        original = gr.State(None)  # the full-resolution input picture (PIL RGB), kept on the server
        shown = gr.State(None)  # the copy shown on the canvas
        earlier = gr.State([])  # earlier inputs, for "Back"
        paths = gr.State([])  # PNG files of the last run's candidates
        selected = gr.State(0)
        before = gr.State(None)  # the input as the compare slider shows it
        last_seed = gr.State(None)
        # This page's Page (made on page load): its running edit, for Stop, and its result files,
        # removed when the page closes (Gradio deletes a closed page's state with this callback).
        page_state = gr.State(None, delete_callback=page.page_closed)

        with gr.Row(equal_height=False):
            with gr.Column(scale=1):
                canvas = gr.ImageEditor(
                    label="Paint what to change",
                    type="pil",
                    image_mode="RGBA",
                    sources=("upload", "clipboard", "webcam"),
                    brush=gr.Brush(default_size=BRUSH_SIZE, colors=BRUSH_COLOURS, color_mode="defaults"),
                    eraser=gr.Eraser(default_size=BRUSH_SIZE),
                    layers=gr.LayerOptions(allow_additional_layers=True, layers=["Mask"]),
                    transforms=(),
                    format="png",
                    canvas_size=(512, 512),
                    interactive=True,  # no event reads it (canvas_io), so Gradio would make it a plain picture
                    elem_id="canvas",
                )
                with gr.Row():
                    open_btn = gr.UploadButton("Open image file…", file_types=["image"], size="sm", elem_id="open-file")
                    clear_btn = gr.Button("Clear mask", size="sm", elem_id="clear-mask")
                    back_btn = gr.Button("Back", size="sm", elem_id="back")
                # Hidden: what the page's script reads off the canvas (canvas_io), and which picture it should show.
                mask_box = canvas_io.hidden_box("canvas-mask")
                picture_box = canvas_io.hidden_box("canvas-picture")
                known_box = gr.Textbox("", visible=False, elem_id="canvas-known")
                changed_btn = canvas_io.changed_button()
                # Hidden: the page's script (uploads.js) presses it for a file on the canvas that is not a picture.
                not_image_btn = gr.Button("Not an image", visible="hidden", elem_id="canvas-not-image")
                # The mode tabs and their run buttons right under the picture (in view while painting at
                # 1280x720), the mask tools below them.
                with gr.Tabs():
                    tabs = build_tabs(session.class_choices(), session.taken_fields(), session.modes_run())
                runs = [run for tab in tabs for run in tab.runs]
                stop_btn = gr.Button("Stop", variant="stop", elem_id="stop")
                history_md = gr.Markdown("No earlier versions.", elem_id="history")
                mask_panel = MaskPanel(session)
                mask_accordion = mask_panel.build()
                with gr.Row():
                    reuse_btn = gr.Button("Reuse last seed", size="sm", elem_id="reuse-seed")
                hidden = foreign_options(editor.info.family)
                settings = build_settings(
                    editor.defaults, editor.num_scales, options_cls, editor.limits.candidates, hidden
                )

            with gr.Column(scale=1, elem_id="result-column"):
                live = gr.Image(
                    label="Live preview (coarse to fine)",
                    type="pil",
                    format="png",
                    interactive=False,
                    buttons=[],  # its corner buttons covered the last preview on a phone; Download PNG is below
                    elem_id="live-preview",
                )
                status = gr.Textbox(label="Status", interactive=False, elem_id="status")
                gallery = gr.Gallery(
                    label=CANDIDATES,
                    columns=4,
                    height="auto",
                    format="png",
                    allow_preview=False,
                    object_fit="contain",
                    elem_id="candidates",
                )
                seed_md = gr.Markdown(elem_id="seed-used")
                compare = gr.ImageSlider(
                    label="Before / after: drag the line over the picture",
                    type="pil",
                    format="png",
                    interactive=False,
                    visible=False,
                    elem_id="compare",
                )
                with gr.Row():
                    continue_btn = gr.Button("Continue from this", elem_id="continue")
                    again_btn = gr.Button("Make this one again", elem_id="again")
                    download = gr.DownloadButton("Download PNG", interactive=False, elem_id="download")
                again_box = gr.Textbox("", visible=False, elem_id="again-run")  # the run button to press
                show_cells = gr.Checkbox(False, label="Show the regenerated token cells")
                cells = gr.Image(
                    label="Regenerated cells",
                    type="pil",
                    format="png",
                    interactive=False,
                    visible=False,
                    elem_id="cells",
                )

        panel = model_view.build()
        model_view.wire(demo, settings, tabs, page_state)  # it swaps the class lists and prompt boxes

        mask_panel.wire(
            mask_box, original, shown, settings, clear_btn, [(t.tab, t.uses_mask) for t in tabs], mask_accordion
        )
        out = Outputs(
            live, status, gallery, seed_md, last_seed, download, cells, paths, selected, original, shown,
            continue_btn, compare, before,
        )  # fmt: skip
        # Progress, queue position and error marks go on the status line only, not on every output.
        run_kw: dict[str, Any] = {"concurrency_id": "edit", "show_progress_on": [status], "api_visibility": "private"}
        quick: dict[str, Any] = {"show_progress": "hidden", "api_visibility": "private"}
        # No event reads the canvas, listens to it or shows its progress on it (canvas_io: Gradio would
        # export the picture again and again): a script in the page reads the strokes for a run, and a
        # new picture once, into hidden boxes (a script-only event); the handler reads those.
        picture = [mask_box, original, shown, page_state]
        for run in runs:
            inputs = {*picture, *run.components, *settings.components}
            handler = run_handler(session, run, settings, mask_box, page_state, out)
            read = run.button.click(None, [mask_box], [mask_box], js=canvas_io.READ_MASK_JS, **quick)
            checked = read.then(
                model_view.check_page, [page_state], model_view.refresh_outputs, concurrency_limit=None, **quick
            )
            checked.success(handler, inputs, out.all(), **run_kw)
        # "Stopping…" at once, in the page, while a run shows its progress; then the server stops it.
        stopping = stop_btn.click(None, [status], [status], js=STOPPING_JS, **quick)
        stopping.then(page.stop, [page_state], None, concurrency_limit=None, **quick)

        new_picture = [canvas, original, shown, earlier, history_md, known_box]
        to_canvas = {**quick, "show_progress_on": [history_md]}
        open_btn.upload(session.uploads.releasing(history.open_file), [open_btn], new_picture, **to_canvas)
        read = changed_btn.click(None, [picture_box, known_box], [picture_box], js=canvas_io.READ_PICTURE_JS, **quick)
        read.then(history.canvas_uploaded, [picture_box], new_picture, **to_canvas)
        not_image_btn.click(history.not_an_image, None, None, **quick)
        back_btn.click(history.back, [earlier], new_picture, **to_canvas)
        continue_btn.click(history.continue_from, [paths, selected, original, earlier], new_picture, **to_canvas)
        picked = gallery.select(select, [paths], [selected, download], **quick)
        picked.success(compare_selected, [paths, selected, before], [compare], **quick)
        show_cells.change(lambda on: gr.update(visible=on), [show_cells], [cells], **quick)
        seed_widget = settings.widgets.get("seed")
        if seed_widget is not None:
            reuse_btn.click(
                lambda s: (False, s) if s is not None else (gr.skip(), gr.skip()),
                [last_seed],
                [settings.random_seed, seed_widget],
                **quick,
            )

        if seed_widget is not None and "num_samples" in settings.widgets:
            again_to = [settings.random_seed, seed_widget, settings.widgets["num_samples"], again_box]
            pressed = again_btn.click(again, [paths, selected], again_to, **quick)
            pressed.success(None, [again_box], None, js=PRESS_JS, **quick)

        def picture_of(values: dict[Any, Any]) -> Any:
            try:
                return canvas_io.read_canvas(values[mask_box], values[original], values[shown])[0]
            except ValueError as e:  # EditError: one sentence
                raise user_error(str(e)) from e

        for extra in (extra for tab in tabs for extra in tab.extras):
            extra.wire(mask_box, picture_of, {mask_box, original, shown})

        demo.load(session.page_loaded, None, [panel.info, page_state], **quick)
        add_endpoints(session, mcp)
    demo.queue(default_concurrency_limit=concurrency)
    atexit.register(session.close)
    return demo
