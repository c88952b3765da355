"""VAR editing studio: a local Gradio app to in-paint, out-paint and re-class images."""

from __future__ import annotations

import os

# Keep the app offline: these must be set before gradio (or huggingface_hub) is imported.
os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"

import argparse
import atexit
import dataclasses
import html
import logging
import queue
import shutil
import socket
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import gradio as gr
import numpy as np
from PIL import Image

from editing import (
    EditCancelled,
    EditError,
    EditOptions,
    Editor,
    EditResult,
    available_models,
    load_image,
    outpaint_canvas,
    save_png,
)

log = logging.getLogger("var-edit-app")

DISPLAY_MAX = 1024  # big photos are shown as a downscaled copy; edits use the full-size original
# The settings widgets, in the order the run handlers receive them.
SETTING_FIELDS = (
    *("cfg", "top_k", "top_p", "random_seed", "seed", "num_samples"),
    *("strength", "dilation", "feather", "more_smooth", "policy", "fill"),
)
CSS = "#live-preview img, #candidates img {image-rendering: pixelated;}"

Loader = Callable[[str], Editor]
Editable = dict[str, Any] | None  # gr.ImageEditor value: background, layers, composite
Picture = Image.Image | None
Job = Callable[[Callable[[int, int, list[Image.Image]], None], threading.Event], EditResult]


def _message(text: str) -> str:
    """Escape a user-facing sentence (gr.Error renders HTML) and make sure it ends with a period."""
    text = " ".join(str(text).split()) or "Something went wrong."
    return html.escape(text if text[-1] in ".!?" else text + ".")


def open_image(source: str | Path | Image.Image) -> Image.Image:
    """A file or PIL image as upright RGB, or gr.Error with editing's one-sentence reason."""
    try:
        return load_image(source)
    except EditError as exc:
        raise gr.Error(_message(str(exc))) from exc


def display_copy(image: Image.Image) -> Image.Image:
    """The picture shown on the canvas: big photos as a downscaled copy, others as they are."""
    longest = max(image.size)
    if longest <= DISPLAY_MAX:
        return image
    scale = DISPLAY_MAX / longest
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    return image.resize(size, Image.Resampling.LANCZOS)


def same_picture(a: Image.Image, b: Image.Image | None) -> bool:
    """Whether ``a`` is (up to canvas round-trip noise) the picture ``b``."""
    if b is None or a.size != b.size:
        return False
    diff = np.abs(np.asarray(a.convert("RGB"), np.int16) - np.asarray(b.convert("RGB"), np.int16))
    return float(diff.mean()) < 2.0


def mask_from_layers(layers: Sequence[Image.Image], size: tuple[int, int]) -> Image.Image:
    """Union of the painted layers' alpha, as an 'L' mask (255 = regenerate) of ``size``."""
    union = np.zeros((size[1], size[0]), bool)
    for layer in layers:
        alpha = layer.convert("RGBA").getchannel("A").point(lambda v: 255 if v > 0 else 0)
        if alpha.size != size:  # a display copy: scale the strokes to the full-resolution original
            alpha = alpha.resize(size, Image.Resampling.BILINEAR).point(lambda v: 255 if v >= 128 else 0)
        union |= np.asarray(alpha) > 0
    return Image.fromarray(union.astype(np.uint8) * 255, "L")


def tile(images: Sequence[Image.Image], gap: int = 4, min_height: int = 256) -> Image.Image:
    """Candidates side by side (enlarged when tiny) for the live preview."""
    height = max(im.height for im in images)
    width = sum(im.width for im in images) + gap * (len(images) - 1)
    sheet = Image.new("RGB", (width, height), (255, 255, 255))
    x = 0
    for im in images:
        sheet.paste(im.convert("RGB"), (x, 0))
        x += im.width + gap
    factor = max(1, min_height // height)
    if factor > 1:
        sheet = sheet.resize((sheet.width * factor, sheet.height * factor), Image.Resampling.NEAREST)
    return sheet


def options_from_settings(defaults: EditOptions, values: Sequence[Any]) -> EditOptions:
    """EditOptions from the settings widgets, in SETTING_FIELDS order."""
    s = dict(zip(SETTING_FIELDS, values, strict=True))
    seed = None if s["random_seed"] or s["seed"] in (None, "") else int(s["seed"])
    return dataclasses.replace(
        defaults,
        seed=seed,
        cfg=float(s["cfg"]),
        top_k=int(s["top_k"]),
        top_p=float(s["top_p"]),
        num_samples=int(s["num_samples"]),
        strength=int(s["strength"]),
        dilation=int(s["dilation"]),
        feather=int(s["feather"]),
        more_smooth=bool(s["more_smooth"]),
        policy=str(s["policy"]),
        fill=str(s["fill"]),
    )


def options_from_dict(defaults: EditOptions, given: dict[str, Any]) -> EditOptions:
    """EditOptions from an API caller's dict, checked field by field."""
    fields = {f.name for f in dataclasses.fields(defaults)}
    changes: dict[str, Any] = {}
    for key, value in given.items():
        if key not in fields:
            raise gr.Error(_message(f"Unknown option '{key}'; valid options are {', '.join(sorted(fields))}"))
        current = getattr(defaults, key)
        if value is None and key == "seed":
            changes[key] = None
            continue
        kind = int if key == "seed" else type(current)
        try:
            if kind is bool and not isinstance(value, bool):
                raise TypeError(key)
            changes[key] = kind(value)
        except (TypeError, ValueError) as exc:
            raise gr.Error(_message(f"Option '{key}' must be a {kind.__name__}")) from exc
    return dataclasses.replace(defaults, **changes)


class Studio:
    """The shared model and the event handlers of the editing studio."""

    def __init__(self, editor: Editor, loader: Loader | None = None) -> None:
        self.editor = editor
        self.loader = loader or (lambda name: Editor.from_pretrained(name))
        self._load_lock = threading.Lock()
        self.workdir = Path(tempfile.mkdtemp(prefix="var-edit-app-"))
        atexit.register(shutil.rmtree, self.workdir, True)

    # ---- model -----------------------------------------------------------------
    def model_summary(self) -> str:
        """Markdown line describing the loaded model."""
        info = self.editor.info
        return (
            f"**{html.escape(info.name)}** · {info.image_size}×{info.image_size} px · "
            f"{info.num_classes} classes · device `{info.device}` · precision `{info.dtype}` · "
            f"{info.parameters / 1e6:.1f} M parameters · {self.editor.num_scales} scales"
        )

    def class_choices(self) -> list[tuple[str, int]]:
        """(label, class id) pairs for the class dropdown."""
        return [(f"{i}: {name}", i) for i, name in enumerate(self.editor.info.class_names)]

    def refresh(self) -> tuple[str, dict[str, Any], threading.Event]:
        """Model info and class list for a freshly opened page, and the page's own stop signal."""
        return self.model_summary(), gr.update(choices=self.class_choices()), threading.Event()

    def load_model(self, name: str | None, path: str | None) -> list[Any]:
        """Switch model; on failure show why and keep the previous one."""
        target = (path or "").strip() or (name or "").strip()
        if not target:
            raise gr.Error("Choose a model or type the path of a model folder.")
        with self._load_lock:
            try:
                editor = self.loader(target)
            except ValueError as exc:  # EditError / CheckpointError: one sentence for the user
                raise gr.Error(_message(str(exc))) from exc
            except Exception as exc:
                log.exception("loading model %s failed", target)
                first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                raise gr.Error(_message(f"Could not load the model '{target}': {first}")) from exc
            self.editor = editor
        gr.Info(f"Loaded model {html.escape(editor.info.name)}.")
        d = editor.default_options()
        return [
            self.model_summary(),
            gr.update(choices=self.class_choices(), value=0),
            d.cfg,
            d.top_k,
            d.top_p,
            d.seed is None,
            d.seed if d.seed is not None else 0,
            d.num_samples,
            gr.update(maximum=max(0, editor.num_scales - 1), value=d.strength),
            d.dilation,
            d.feather,
            d.more_smooth,
            d.policy,
            d.fill,
        ]

    # ---- input picture ------------------------------------------------------------
    def open_file(self, path: str | None) -> tuple[Any, ...]:
        """Load a picture file as the new full-resolution input."""
        if not path:
            raise gr.Error("No file was received.")
        image = open_image(path)
        shown = display_copy(image)
        return shown, image, shown, [], self._history_text([])

    def canvas_uploaded(self, value: dict[str, Any] | None) -> tuple[Any, ...]:
        """A picture dropped on the canvas becomes the original (the canvas is left alone:
        writing back to the editor while it digests its own upload races in the browser)."""
        background = (value or {}).get("background")
        if background is None:
            raise gr.Error("The canvas could not read that picture; try another file.")
        image = open_image(background)
        return image, image, [], self._history_text([])

    @staticmethod
    def _history_text(history: list[Image.Image]) -> str:
        return f"Earlier versions: {len(history)}" if history else "No earlier versions."

    @staticmethod
    def current_input(
        value: dict[str, Any] | None, original: Image.Image | None, shown: Image.Image | None
    ) -> tuple[Image.Image, Image.Image, Image.Image]:
        """The full-resolution input, its display copy and the mask painted on the canvas."""
        background = (value or {}).get("background")
        if background is None:
            raise gr.Error("Upload or paste a picture first.")
        on_canvas = open_image(background)
        if original is None or not same_picture(on_canvas, shown):
            original, shown = on_canvas, on_canvas  # pasted / webcam picture: the canvas is the original
        mask = mask_from_layers((value or {}).get("layers") or [], original.size)
        return original, shown, mask

    def continue_from(
        self, paths: list[str] | None, index: int, original: Image.Image | None, history: list[Image.Image]
    ) -> tuple[Any, ...]:
        """Make the selected candidate the new input, remembering the previous input."""
        if not paths:
            raise gr.Error("Run an edit first, then pick a candidate to continue from.")
        image = open_image(paths[min(max(index, 0), len(paths) - 1)])
        history = [*history, original] if original is not None else list(history)
        shown = display_copy(image)
        return shown, image, shown, history, self._history_text(history)

    def back(self, history: list[Image.Image]) -> tuple[Any, ...]:
        """Step back to the previous input."""
        if not history:
            raise gr.Error("There is no earlier version to go back to.")
        *history, image = history
        shown = display_copy(image)
        return shown, image, shown, history, self._history_text(history)

    @staticmethod
    def clear_mask(shown: Image.Image | None) -> Image.Image | None:
        """Remove every painted stroke, keeping the picture."""
        return shown

    # ---- out-paint preview ----------------------------------------------------------
    @staticmethod
    def _margins(left: Any, right: Any, top: Any, bottom: Any, zoom: Any) -> dict[str, Any]:
        margins = {
            k: int(v or 0) for k, v in zip(("left", "right", "top", "bottom"), (left, right, top, bottom), strict=True)
        }
        if any(v < 0 for v in margins.values()):
            raise gr.Error("Margins cannot be negative.")
        zoom_out = float(zoom or 1.0)
        if zoom_out <= 1.0 and not any(margins.values()):
            raise gr.Error("Set at least one margin or a zoom-out factor above 1.")
        return {**margins, "zoom_out": zoom_out if zoom_out > 1.0 else None}

    def preview_outpaint(
        self, value: dict[str, Any] | None, original: Image.Image | None, shown: Image.Image | None, *margins: Any
    ) -> tuple[Image.Image, str]:
        """The grown canvas, with the area to be generated tinted."""
        image, _, _ = self.current_input(value, original, shown)
        kw = self._margins(*margins)
        try:
            canvas, mask = outpaint_canvas(image, kw["left"], kw["right"], kw["top"], kw["bottom"], kw["zoom_out"])
        except EditError as exc:
            raise gr.Error(_message(str(exc))) from exc
        tint = Image.new("RGB", canvas.size, (255, 0, 255))
        shown_canvas = Image.composite(Image.blend(canvas.convert("RGB"), tint, 0.35), canvas.convert("RGB"), mask)
        size = f"{image.width}×{image.height} → {canvas.width}×{canvas.height} px"
        return shown_canvas, f"New canvas: {size}; the tinted area will be generated."

    # ---- running edits ----------------------------------------------------------------
    def _stream(
        self, job: Job, cancel: threading.Event | None, extra: dict[Any, Any], out: dict[str, Any]
    ) -> Iterator[dict[Any, Any]]:
        """Run ``job`` in a worker thread and stream its previews; ends with the result or a message."""
        cancel = cancel if isinstance(cancel, threading.Event) else threading.Event()
        cancel.clear()
        events: queue.Queue[tuple[str, Any]] = queue.Queue()

        def preview(step: int, total: int, images: list[Image.Image]) -> None:
            events.put(("preview", (step, total, images)))

        def work() -> None:
            try:
                events.put(("done", job(preview, cancel)))
            except EditCancelled:
                events.put(("cancelled", None))
            except EditError as exc:
                events.put(("error", str(exc)))
            except Exception:
                log.exception("edit failed")
                events.put(("error", "The edit failed unexpectedly; the server log has the details."))

        started = time.monotonic()
        worker = threading.Thread(target=work, name="var-edit", daemon=True)
        worker.start()
        yield {**extra, out["status"]: "Starting…"}
        step = total = 0
        try:
            while True:
                kind, payload = events.get()
                if kind == "preview":
                    step, total, images = payload
                    yield {out["live"]: tile(images), out["status"]: f"Scale {step}/{total}"}
                elif kind == "cancelled":
                    where = f" at scale {step}/{total}" if total else ""
                    gr.Warning(f"Stopped{where}; the input is unchanged.")
                    yield {out["status"]: f"Stopped{where}."}
                    return
                elif kind == "error":
                    yield {out["status"]: f"Failed: {payload}"}
                    raise gr.Error(_message(payload))
                else:
                    yield self._finish(payload, time.monotonic() - started, out)
                    return
        finally:
            if worker.is_alive():
                cancel.set()  # the page went away: stop the worker at its next scale

    def _finish(self, res: EditResult, seconds: float, out: dict[str, Any]) -> dict[Any, Any]:
        """Save the candidates as PNGs (with parameters) and fill the result widgets."""
        run_dir = Path(tempfile.mkdtemp(dir=self.workdir))
        paths = [
            str(save_png(im, run_dir / f"var-edit-seed{res.seed}-{i + 1}.png", {**res.params, "candidate": i + 1}))
            for i, im in enumerate(res.images)
        ]
        return {
            out["live"]: tile(res.images),
            out["status"]: f"Done: {len(paths)} candidate(s), seed {res.seed}, {seconds:.1f} s.",
            out["gallery"]: gr.update(
                value=[(p, f"#{i + 1} · seed {res.seed}") for i, p in enumerate(paths)], selected_index=0
            ),
            out["seed"]: f"Seed used: **{res.seed}**",
            out["last_seed"]: res.seed,
            out["download"]: gr.update(value=paths[0], interactive=True),
            out["cells"]: res.cells,
            out["paths"]: paths,
            out["selected"]: 0,
        }

    def run_inpaint(self, out: dict[str, Any]) -> Callable[..., Iterator[dict[Any, Any]]]:
        """Handler: regenerate the painted area."""

        def handler(
            value: Editable, original: Picture, shown: Picture, cancel: threading.Event | None, *settings: Any
        ) -> Iterator[dict[Any, Any]]:
            image, shown, mask = self.current_input(value, original, shown)
            if not mask.getbbox():
                raise gr.Error("Paint over the area to regenerate first.")
            editor = self.editor
            opts = options_from_settings(editor.default_options(), settings)
            job: Job = lambda cb, ev: editor.inpaint(image, mask, options=opts, on_preview=cb, cancel=ev)
            yield from self._stream(job, cancel, {out["original"]: image, out["shown"]: shown}, out)

        return handler

    def run_class(self, out: dict[str, Any]) -> Callable[..., Iterator[dict[Any, Any]]]:
        """Handler: turn the painted area into the chosen class."""

        def handler(
            value: Editable,
            original: Picture,
            shown: Picture,
            cancel: threading.Event | None,
            class_id: int | None,
            *settings: Any,
        ) -> Iterator[dict[Any, Any]]:
            if class_id is None:
                raise gr.Error("Choose a class first.")
            image, shown, mask = self.current_input(value, original, shown)
            if not mask.getbbox():
                raise gr.Error("Paint over the area to turn into the class first.")
            editor = self.editor
            opts = options_from_settings(editor.default_options(), settings)
            cid = int(class_id)
            job: Job = lambda cb, ev: editor.edit_class(image, mask, cid, options=opts, on_preview=cb, cancel=ev)
            yield from self._stream(job, cancel, {out["original"]: image, out["shown"]: shown}, out)

        return handler

    def run_generate(self, out: dict[str, Any]) -> Callable[..., Iterator[dict[Any, Any]]]:
        """Handler: draw a new picture of the chosen class from scratch."""

        def handler(cancel: threading.Event | None, class_id: int | None, *settings: Any) -> Iterator[dict[Any, Any]]:
            if class_id is None:
                raise gr.Error("Choose a class first.")
            editor = self.editor
            opts = options_from_settings(editor.default_options(), settings)
            cid = int(class_id)
            job: Job = lambda cb, ev: editor.generate(cid, options=opts, on_preview=cb, cancel=ev)
            yield from self._stream(job, cancel, {}, out)

        return handler

    def run_outpaint(self, out: dict[str, Any]) -> Callable[..., Iterator[dict[Any, Any]]]:
        """Handler: grow the canvas and fill the new border."""

        def handler(
            value: Editable,
            original: Picture,
            shown: Picture,
            cancel: threading.Event | None,
            *margins_and_settings: Any,
        ) -> Iterator[dict[Any, Any]]:
            image, shown, _ = self.current_input(value, original, shown)
            kw = self._margins(*margins_and_settings[:5])
            settings = margins_and_settings[5:]
            editor = self.editor
            opts = options_from_settings(editor.default_options(), settings)
            job: Job = lambda cb, ev: editor.outpaint(image, **kw, options=opts, on_preview=cb, cancel=ev)
            yield from self._stream(job, cancel, {out["original"]: image, out["shown"]: shown}, out)

        return handler

    @staticmethod
    def stop(cancel: threading.Event | None) -> None:
        """Ask this session's running edit to stop at its next scale (not queued behind it)."""
        if isinstance(cancel, threading.Event):
            cancel.set()

    # ---- results ---------------------------------------------------------------------
    @staticmethod
    def select(paths: list[str] | None, evt: gr.SelectData) -> tuple[int, Any]:
        """Remember the clicked candidate and point the download button at it."""
        index = int(evt.index) if paths else 0
        return index, gr.update(value=paths[index] if paths else None, interactive=bool(paths))

    # ---- API ----------------------------------------------------------------------------
    def api_inpaint(
        self, image_file: str | None, mask_file: str | None, options: dict[str, Any] | None
    ) -> tuple[str, dict[str, Any]]:
        """In-paint an image file where the mask file is white (or opaque, for an RGBA mask);
        returns the first candidate as a PNG carrying its parameters, and the parameters."""
        if not image_file or not mask_file:
            raise gr.Error("Send both an image file and a mask file.")
        if options is not None and not isinstance(options, dict):
            raise gr.Error('Options must be a JSON object such as {"seed": 1}.')
        editor = self.editor
        opts = options_from_dict(editor.default_options(), options or {})
        try:
            res = editor.inpaint(image_file, mask_file, options=opts)
        except EditError as exc:
            raise gr.Error(_message(str(exc))) from exc
        run_dir = Path(tempfile.mkdtemp(dir=self.workdir))
        path = save_png(res.images[0], run_dir / f"var-edit-seed{res.seed}.png", res.params)
        return str(path), res.params


def build_app(editor: Editor, loader: Loader | None = None, concurrency: int = 1) -> gr.Blocks:
    """Build the editing studio around ``editor``; ``loader`` turns a model name/path into an Editor."""
    studio = Studio(editor, loader)
    d = editor.default_options()
    brush = max(4, editor.info.image_size // 8)  # radius in picture pixels: a few token cells wide
    with gr.Blocks(title="VAR editing studio", delete_cache=(3600, 86400)) as demo:
        gr.Markdown(
            "# VAR editing studio\nPaint over what should change, pick a mode, press run. "
            "Each result streams coarse-to-fine, one scale at a time."
        )
        original = gr.State(None)  # full-resolution input picture (PIL RGB)
        shown = gr.State(None)  # the copy shown on the canvas
        history = gr.State([])  # earlier inputs, for "Back"
        paths = gr.State([])  # PNG files of the last run's candidates
        selected = gr.State(0)
        last_seed = gr.State(None)
        cancel = gr.State(None)  # this page's threading.Event (made on page load) that Stop sets

        with gr.Row(equal_height=False):
            with gr.Column(scale=1):
                canvas = gr.ImageEditor(
                    label="Picture: paint over the area to change",
                    type="pil",
                    image_mode="RGBA",
                    sources=("upload", "clipboard", "webcam"),
                    brush=gr.Brush(default_size=brush, colors=["#ff00ff", "#00e0ff", "#ffe600"], color_mode="defaults"),
                    eraser=gr.Eraser(default_size=brush),
                    layers=gr.LayerOptions(allow_additional_layers=True, layers=["Mask"]),
                    transforms=(),
                    format="png",
                    canvas_size=(512, 512),
                    elem_id="canvas",
                )
                with gr.Row():
                    open_btn = gr.UploadButton("Open image file…", file_types=["image"], size="sm", elem_id="open-file")
                    clear_btn = gr.Button("Clear mask", size="sm", elem_id="clear-mask")
                    back_btn = gr.Button("Back", size="sm", elem_id="back")
                history_md = gr.Markdown("No earlier versions.", elem_id="history")
                with gr.Tabs():
                    with gr.Tab("In-paint", id="inpaint"):
                        gr.Markdown("Regenerates the painted area; everything else is kept.")
                        inpaint_btn = gr.Button("In-paint", variant="primary", elem_id="run-inpaint")
                    with gr.Tab("Out-paint", id="outpaint", elem_id="tab-outpaint"):
                        with gr.Row():
                            left = gr.Number(0, label="Left (px)", precision=0, minimum=0, elem_id="out-left")
                            right = gr.Number(0, label="Right (px)", precision=0, minimum=0, elem_id="out-right")
                            top = gr.Number(0, label="Top (px)", precision=0, minimum=0, elem_id="out-top")
                            bottom = gr.Number(0, label="Bottom (px)", precision=0, minimum=0, elem_id="out-bottom")
                        zoom = gr.Slider(
                            1.0,
                            4.0,
                            value=1.0,
                            step=0.25,
                            label="Zoom-out factor",
                            info="Above 1 it replaces the margins and grows every side evenly.",
                        )
                        with gr.Row():
                            preview_btn = gr.Button("Preview canvas", elem_id="preview-canvas")
                            outpaint_btn = gr.Button("Out-paint", variant="primary", elem_id="run-outpaint")
                        canvas_preview = gr.Image(label="Grown canvas", type="pil", format="png", interactive=False)
                        canvas_note = gr.Markdown()
                    with gr.Tab("Class edit", id="class", elem_id="tab-class"):
                        class_dd = gr.Dropdown(
                            studio.class_choices(),
                            value=0,
                            label="Class",
                            filterable=True,
                            info="Type to search; paint the area to change on the picture.",
                            elem_id="class-dd",
                        )
                        with gr.Row():
                            class_btn = gr.Button("Apply class", variant="primary", elem_id="run-class")
                            generate_btn = gr.Button("Generate new picture", elem_id="run-generate")
                stop_btn = gr.Button("Stop", variant="stop", elem_id="stop")
                with gr.Accordion("Settings", open=False, elem_id="settings"):
                    with gr.Row():
                        cfg = gr.Slider(0.0, 20.0, value=d.cfg, step=0.1, label="Guidance (cfg)")
                        top_k = gr.Slider(0, 4096, value=d.top_k, step=1, label="Top-k (0 = off)")
                        top_p = gr.Slider(0.0, 1.0, value=d.top_p, step=0.01, label="Top-p")
                    with gr.Row():
                        random_seed = gr.Checkbox(d.seed is None, label="Random seed", elem_id="random-seed")
                        seed = gr.Number(d.seed if d.seed is not None else 0, label="Seed", precision=0, elem_id="seed")
                        reuse_btn = gr.Button("Reuse last seed", size="sm")
                    with gr.Row():
                        num_samples = gr.Slider(
                            1, 8, value=d.num_samples, step=1, label="Candidates", elem_id="num-samples"
                        )
                        strength = gr.Slider(
                            0,
                            max(0, editor.num_scales - 1),
                            value=d.strength,
                            step=1,
                            label="Strength: first regenerated scale",
                            info="Used by the 'strength' policy.",
                        )
                    with gr.Row():
                        dilation = gr.Slider(0, 8, value=d.dilation, step=1, label="Mask dilation (tokens)")
                        feather = gr.Slider(0, 32, value=d.feather, step=1, label="Feather (px)")
                    with gr.Row():
                        policy = gr.Radio(
                            ["touch", "compat", "strength", "touch-all"],
                            value=d.policy,
                            label="Mask policy",
                            info="touch: every fine cell the mask touches (coarse cells it mostly covers); "
                            "compat: the original authors' rule; strength: keep the coarse scales (layout, "
                            "colour); touch-all: every touched cell on every scale.",
                        )
                        fill = gr.Radio(["original", "neutral"], value=d.fill, label="Fill under the mask")
                        more_smooth = gr.Checkbox(d.more_smooth, label="More smooth")

            with gr.Column(scale=1):
                live = gr.Image(
                    label="Live preview (coarse to fine)",
                    type="pil",
                    format="png",
                    interactive=False,
                    elem_id="live-preview",
                )
                status = gr.Textbox(label="Status", interactive=False, elem_id="status")
                gallery = gr.Gallery(
                    label="Candidates",
                    columns=4,
                    format="png",
                    allow_preview=False,
                    object_fit="contain",
                    elem_id="candidates",
                )
                seed_md = gr.Markdown(elem_id="seed-used")
                with gr.Row():
                    continue_btn = gr.Button("Continue from this", elem_id="continue")
                    download = gr.DownloadButton("Download PNG", interactive=False, elem_id="download")
                show_cells = gr.Checkbox(False, label="Show the regenerated token cells")
                cells = gr.Image(
                    label="Regenerated cells",
                    type="pil",
                    format="png",
                    interactive=False,
                    visible=False,
                    elem_id="cells",
                )

        with gr.Accordion("Model", open=False, elem_id="model"):
            names = available_models()
            with gr.Row():
                model_dd = gr.Dropdown(
                    names,
                    value=editor.info.name if editor.info.name in names else None,
                    label="Model",
                    allow_custom_value=True,
                )
                model_path = gr.Textbox(
                    label="…or a model folder",
                    placeholder="/path/to/folder with vae + var checkpoints",
                    elem_id="model-path",
                )
                load_btn = gr.Button("Load model", elem_id="load-model")
            model_md = gr.Markdown(studio.model_summary(), elem_id="model-info")

        with gr.Row(visible=False):  # the named API endpoint ("/inpaint") for gradio_client and scripts
            api_image = gr.File(label="image")
            api_mask = gr.File(label="mask")
            api_options = gr.JSON(label="options")
            api_result = gr.Image(label="result", type="filepath", format="png")
            api_params = gr.JSON(label="params")
            api_btn = gr.Button("api")

        settings = [cfg, top_k, top_p, random_seed, seed, num_samples]
        settings += [strength, dilation, feather, more_smooth, policy, fill]  # SETTING_FIELDS order
        out = {
            "live": live,
            "status": status,
            "gallery": gallery,
            "seed": seed_md,
            "last_seed": last_seed,
            "download": download,
            "cells": cells,
            "paths": paths,
            "selected": selected,
            "original": original,
            "shown": shown,
        }
        outputs = list(out.values())
        # Progress, queue position and error marks go on the status line only, not on every output.
        run_kw: dict[str, Any] = {"concurrency_id": "edit", "show_progress_on": [status], "api_visibility": "private"}
        quick: dict[str, Any] = {"show_progress": "hidden", "api_visibility": "private"}
        picture = [canvas, original, shown]
        inpaint_btn.click(studio.run_inpaint(out), [*picture, cancel, *settings], outputs, **run_kw)
        class_btn.click(studio.run_class(out), [*picture, cancel, class_dd, *settings], outputs, **run_kw)
        generate_btn.click(studio.run_generate(out), [cancel, class_dd, *settings], outputs, **run_kw)
        outpaint_btn.click(
            studio.run_outpaint(out), [*picture, cancel, left, right, top, bottom, zoom, *settings], outputs, **run_kw
        )
        stop_btn.click(studio.stop, [cancel], None, concurrency_limit=None, **quick)

        new_picture = [canvas, original, shown, history, history_md]
        open_btn.upload(studio.open_file, [open_btn], new_picture, **quick)
        canvas.upload(studio.canvas_uploaded, [canvas], new_picture[1:], **quick)
        clear_btn.click(studio.clear_mask, [shown], [canvas], **quick)
        back_btn.click(studio.back, [history], new_picture, **quick)
        continue_btn.click(studio.continue_from, [paths, selected, original, history], new_picture, **quick)
        gallery.select(studio.select, [paths], [selected, download], **quick)
        show_cells.change(lambda on: gr.update(visible=on), [show_cells], [cells], **quick)
        reuse_btn.click(
            lambda s: (False, s) if s is not None else (gr.update(), gr.update()),
            [last_seed],
            [random_seed, seed],
            **quick,
        )
        preview_btn.click(
            studio.preview_outpaint,
            [*picture, left, right, top, bottom, zoom],
            [canvas_preview, canvas_note],
            show_progress_on=[canvas_note],
            api_visibility="private",
        )
        load_btn.click(
            studio.load_model,
            [model_dd, model_path],
            [model_md, class_dd, *settings],
            concurrency_limit=1,
            concurrency_id="load",
            show_progress_on=[model_md],
            api_visibility="private",
        )
        demo.load(studio.refresh, None, [model_md, class_dd, cancel], **quick)
        api_btn.click(
            studio.api_inpaint,
            [api_image, api_mask, api_options],
            [api_result, api_params],
            api_name="inpaint",
            concurrency_id="edit",
        )
    demo.queue(default_concurrency_limit=concurrency)
    return demo


def free_port(host: str) -> int:
    """A TCP port that is free right now on ``host``."""
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    p = argparse.ArgumentParser(description="VAR editing studio (Gradio).")
    p.add_argument("--model", default="demo", help="'demo', a zoo name (d16..d36) or a folder with vae/var checkpoints")
    p.add_argument("--vae", help="VQ-VAE checkpoint file (use with --var instead of --model)")
    p.add_argument("--var", help="VAR transformer checkpoint file (use with --vae)")
    p.add_argument("--device", help="cpu, cuda, cuda:1, ... (default: cuda if available)")
    p.add_argument("--dtype", help="float32, float16 or bfloat16 (default: the model's choice)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=7860, help="port (0 = any free port)")
    p.add_argument("--share", action="store_true", help="create a public Gradio share link (off by default)")
    p.add_argument("--auth", help="require a login, given as user:password")
    p.add_argument("--max-upload-mb", type=float, default=50.0, help="largest accepted upload in MB")
    p.add_argument("--concurrency", type=int, default=1, help="edits run at once on the device (default 1)")
    args = p.parse_args(argv)
    if bool(args.vae) != bool(args.var):
        p.error("--vae and --var must be given together")
    if args.auth is not None and ":" not in args.auth:
        p.error("--auth must look like user:password")
    if args.concurrency < 1:
        p.error("--concurrency must be at least 1")
    return args


def main(argv: Sequence[str] | None = None) -> None:
    """Load the model and serve the studio."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    args = parse_args(argv)

    def loader(name: str) -> Editor:
        return Editor.from_pretrained(name, device=args.device, dtype=args.dtype)

    try:
        editor = (
            Editor.from_files(args.vae, args.var, device=args.device, dtype=args.dtype)
            if args.vae
            else loader(args.model)
        )
    except (ValueError, OSError) as exc:  # EditError, CheckpointError, missing files
        raise SystemExit(f"error: {exc}") from exc
    demo = build_app(editor, loader, args.concurrency)
    auth = tuple(args.auth.split(":", 1)) if args.auth else None
    demo.launch(
        server_name=args.host,
        server_port=args.port or free_port(args.host),
        share=args.share,
        auth=auth,
        max_file_size=int(args.max_upload_mb * 1024 * 1024),
        ssr_mode=False,
        css=CSS,
        footer_links=["api"],
    )


if __name__ == "__main__":
    main()
