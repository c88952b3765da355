"""The studio's handlers: every run turns widget values into one `EditRequest` for `Editor.submit`.

The page keeps the full-resolution picture server-side (gr.State) from the moment it is opened;
the canvas only carries the display copy and the strokes. A user's mistake ends in one sentence
in the page and one line in the log; only real faults log a traceback.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gradio as gr
from PIL import Image

from editing import EditCancelled, EditError, EditJob, EditorProtocol, EditRequest, EditResult, load_image, save_png

from . import canvas_io
from .cells import cells_overlay
from .pictures import PREVIEW_MAX, canvas_copy, display_copy, grid_columns, tile
from .settings import Settings
from .tabs import Run, Values

log = logging.getLogger("var-edit-studio")
WORKDIR_PREFIX = "var-edit-app-"
STALE_LEGACY_SECONDS = 24 * 3600
API_FILES_KEPT = 64  # results of the /inpaint endpoint kept on disk (Gradio serves its own copies)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_workdirs(root: Path | None = None) -> list[Path]:
    """Remove the files folders of studios that are no longer running (a killed server leaves them);
    folders named without a process id (older versions) once they are a day old."""
    root = Path(root or tempfile.gettempdir())
    removed = []
    for folder in root.glob(f"{WORKDIR_PREFIX}*"):
        pid_text = folder.name[len(WORKDIR_PREFIX) :].split("-", 1)[0]
        if pid_text.isdigit():
            stale = not _alive(int(pid_text))
        else:
            stale = time.time() - folder.stat().st_mtime > STALE_LEGACY_SECONDS
        if stale and folder.is_dir():
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
    if removed:
        log.info("removed %d folder(s) left by studios that are no longer running", len(removed))
    return removed


class PictureOnItsWay(EditError):
    """The canvas shows a picture the server has not received yet (it follows in a moment)."""


def user_error(text: str) -> gr.Error:
    """A mistake the user can fix: one sentence in the page, one line in the log, no traceback."""
    text = " ".join(str(text).split()) or "Something went wrong."
    text = text if text[-1] in ".!?" else text + "."
    log.info("refused: %s", text)
    return gr.Error(text, print_exception=False)


def open_picture(source: Any) -> Image.Image:
    """A file or PIL image as upright RGB, or the user's one-sentence error."""
    try:
        return load_image(source)
    except EditError as e:
        raise user_error(str(e)) from e


class JobSlot:
    """A page's running edit (for Stop) and the folder of its last results (one per browser page,
    made when the page loads)."""

    def __init__(self, model: int = 0) -> None:
        self.job: EditJob | None = None
        self.run_dir: Path | None = None
        self.model = model  # Session.model_serial of the model this page's settings were made for

    @property
    def busy(self) -> bool:
        return self.job is not None and not self.job.done

    def keep_only(self, run_dir: Path | None) -> None:
        """Make `run_dir` the page's results folder, removing the one before: the page no longer shows it."""
        if self.run_dir is not None and self.run_dir != run_dir:
            shutil.rmtree(self.run_dir, ignore_errors=True)
        self.run_dir = run_dir


@dataclass
class Outputs:
    """The result widgets every run fills."""

    live: gr.Image
    status: gr.Textbox
    gallery: gr.Gallery
    seed: gr.Markdown
    last_seed: gr.State
    download: gr.DownloadButton
    cells: gr.Image
    paths: gr.State
    selected: gr.State
    original: gr.State
    shown: gr.State

    def all(self) -> list[gr.components.Component]:
        return list(vars(self).values())


class Session:
    """The shared model and the handlers of the studio."""

    def __init__(self, editor: EditorProtocol, time_limit: float | None = None) -> None:
        self.editor: EditorProtocol | None = editor  # None while another model is being loaded
        self.model_serial = 0  # goes up each time the shared model becomes a different one
        self.time_limit = time_limit
        self._api_dirs_lock = threading.Lock()
        remove_stale_workdirs()
        self._api_dirs: deque[Path] = deque(maxlen=API_FILES_KEPT)
        self.workdir = Path(tempfile.mkdtemp(prefix=f"{WORKDIR_PREFIX}{os.getpid()}-"))

    def close(self) -> None:
        """Remove the per-edit files."""
        shutil.rmtree(self.workdir, ignore_errors=True)

    @staticmethod
    def page_closed(slot: JobSlot | None) -> None:
        """A page went away: stop its edit and remove its results."""
        if isinstance(slot, JobSlot):
            if slot.busy:
                slot.job.cancel()
            slot.keep_only(None)

    # ---- model -------------------------------------------------------------------------
    def set_editor(self, editor: EditorProtocol | None, same_model: bool = False) -> None:
        """Make `editor` the shared model (None: none while another loads); pages notice unless same_model."""
        self.editor = editor
        if editor is not None and not same_model:
            self.model_serial += 1

    def current_editor(self) -> EditorProtocol:
        """The shared model, or the user's one sentence while another one is being loaded."""
        editor = self.editor
        if editor is None:
            raise user_error("The studio is loading another model; try again in a moment.")
        return editor

    def page_is_current(self, page: JobSlot | None) -> bool:
        """Whether a page's settings were made for the model the studio has now."""
        return not isinstance(page, JobSlot) or page.model == self.model_serial

    def model_summary(self) -> str:
        if self.editor is None:
            return "Loading a model…"
        info = self.editor.info
        return (
            f"**{info.name}** · {info.image_size}×{info.image_size} px · {info.num_classes} classes · "
            f"device `{info.device}` · precision `{info.dtype}` · {info.parameters / 1e6:.1f} M parameters · "
            f"{self.editor.num_scales} scales"
        )

    def class_choices(self) -> list[tuple[str, int]]:
        if self.editor is None:
            return []
        return [(f"{i}: {name}", i) for i, name in enumerate(self.editor.info.class_names)]

    def page_loaded(self) -> tuple[str, dict[str, Any], JobSlot]:
        """Model line and class list for a freshly opened page, and the page's own job slot."""
        return self.model_summary(), gr.update(choices=self.class_choices()), JobSlot(self.model_serial)

    # ---- the input picture -------------------------------------------------------------
    @staticmethod
    def _history_text(image: Image.Image, history: list[Image.Image]) -> str:
        versions = f"Earlier versions: {len(history)}" if history else "No earlier versions."
        return f"Picture: {image.width}×{image.height} px · {versions}"

    def _new_picture(self, image: Image.Image, history: list[Image.Image]) -> tuple[Any, ...]:
        """Outputs for the canvas, original, shown, history, history line and the page's known picture.
        The canvas gets the picture alone: any other change to it makes Gradio re-read it (canvas_io)."""
        shown = plain_copy(canvas_copy(image))
        return shown, image, shown, history, self._history_text(image, history), canvas_io.known_picture(shown)

    def open_file(self, path: str | None) -> tuple[Any, ...]:
        """A picture file becomes the new full-resolution input."""
        if not path:
            raise user_error("No file was received.")
        return self._new_picture(open_picture(path), [])

    def canvas_uploaded(self, payload: str | None) -> tuple[Any, ...]:
        """A picture dropped, pasted or photographed on the canvas becomes the input (the page's script
        sends it once, as a PNG; the canvas gets it back at the canvas's size, which the brush suits).
        The script also reports the pictures the server put there itself (Open, Continue, Back) as they
        appear: it recognises those, and they change nothing."""
        try:
            png = canvas_io.parse_picture(payload)
        except EditError as e:
            raise user_error(str(e)) from e
        if png is None:
            return (gr.skip(),) * 6
        return self._new_picture(open_picture(png), [])

    @staticmethod
    def canvas_input(
        payload: str | None, original: Image.Image | None, shown: Image.Image | None
    ) -> tuple[Image.Image, Image.Image, Image.Image]:
        """The full-resolution input, its display copy and the mask, from what the page's script read off
        the canvas (only the strokes travel: the picture is already here). EditError where the canvas
        does not hold the picture the server has (PictureOnItsWay: a new one still on its way)."""
        canvas = canvas_io.parse_mask(payload)
        if canvas.empty:
            raise EditError("Upload or paste a picture first.")
        if original is None or shown is None or not canvas.shows(shown):
            if shown is not None and canvas.size == shown.size:
                log.info("canvas fingerprint differs from the picture by %.1f", canvas.difference(shown))
            raise PictureOnItsWay("The picture on the canvas has not reached the server yet; try again in a moment.")
        return original, shown, canvas.mask_at(original.size)

    def continue_from(
        self, paths: list[str] | None, index: int, original: Image.Image | None, history: list[Image.Image]
    ) -> tuple[Any, ...]:
        """The selected candidate becomes the input; the previous input goes on the history."""
        if not paths:
            raise user_error("Run an edit first, then pick a candidate to continue from.")
        image = open_picture(paths[min(max(index, 0), len(paths) - 1)])
        return self._new_picture(image, [*history, original] if original is not None else list(history))

    def back(self, history: list[Image.Image]) -> tuple[Any, ...]:
        """Step back to the previous input."""
        if not history:
            raise user_error("There is no earlier version to go back to.")
        *history, image = history
        return self._new_picture(image, history)

    # ---- runs --------------------------------------------------------------------------
    def run_handler(
        self, run: Run, settings: Settings, mask_box: gr.Textbox, slot: gr.State, out: Outputs
    ) -> Callable[[Values], Iterator[dict[Any, Any]]]:
        """The one handler behind every run button: widget values -> EditRequest -> streamed result.
        mask_box: the hidden textbox the page's script fills with the canvas's mask (canvas_io)."""

        def handler(values: Values) -> Iterator[dict[Any, Any]]:
            editor = self.current_editor()  # the edit runs to its end on this model, whatever is loaded later
            page = values[slot]
            if not self.page_is_current(page):
                page.model = self.model_serial  # the page has been brought up to date (ModelPanelView.check_page)
                raise user_error(
                    f"The studio's model was switched to {editor.info.name} since this page set up its settings; "
                    "they and the class list now fit it, so check them and run again."
                )
            extra: dict[Any, Any] = {}
            try:
                fields = run.fields(values)
                options = settings.options(values, editor.defaults)
                picture = mask = None
                if run.uses_picture:
                    picture, shown, mask = self.canvas_input(values[mask_box], values[out.original], values[out.shown])
                    extra = {out.original: picture, out.shown: shown}
                    if run.uses_mask and not mask.getbbox():
                        raise EditError("Paint over the area to change first.")
                request = EditRequest(run.mode, picture, mask if run.uses_mask else None, options=options, **fields)
            except EditError as e:
                raise user_error(str(e)) from e
            if isinstance(page, JobSlot) and page.busy:
                raise user_error("Your previous edit is still running: wait for it, or press Stop first.")
            yield from self._stream(editor, request, page, extra, out)

        return handler

    def _stream(
        self, editor: EditorProtocol, request: EditRequest, slot: JobSlot | None, extra: dict[Any, Any], out: Outputs
    ) -> Iterator[dict[Any, Any]]:
        started = time.monotonic()
        job = editor.submit([request], previews=True, time_limit=self.time_limit)
        ended = finish_time(job)
        if isinstance(slot, JobSlot):
            slot.job = job
        yield {**extra, out.status: "Starting…"}
        step = total = 0
        try:
            for progress in job.updates():
                step, total = progress.step, progress.total
                if progress is not job.latest:
                    continue  # the page is behind the edit: show only the newest scale
                images = progress.previews.get(0) or []
                if images:
                    yield {out.live: tile(images), out.status: f"Scale {step}/{total}"}
            result = job.result()[0]
        except EditCancelled:
            where = f" after scale {step}/{total}" if total else ""
            gr.Warning(f"Stopped{where}; the input is unchanged.")
            yield {out.status: f"Stopped{where}."}
            return
        except EditError as e:
            yield {out.status: f"Failed: {e}"}
            raise user_error(str(e)) from e
        except Exception as e:
            log.exception("edit failed")
            yield {out.status: "Failed: the edit failed unexpectedly."}
            raise gr.Error("The edit failed unexpectedly; the server log has the details.") from e
        finally:
            if not job.done:
                job.cancel()  # the page went away: stop the edit at its next scale
        run_dir = Path(tempfile.mkdtemp(dir=self.workdir))
        if isinstance(slot, JobSlot):
            slot.keep_only(run_dir)
        yield self._finish(result, (ended[0] if ended else time.monotonic()) - started, run_dir, out)

    def _finish(self, result: EditResult, seconds: float, run_dir: Path, out: Outputs) -> dict[Any, Any]:
        """Save the candidates as PNGs (with parameters) into `run_dir` and fill the result widgets."""
        paths = [
            str(
                save_png(im, run_dir / f"var-edit-seed{result.seed}-{i + 1}.png", {**result.params, "candidate": i + 1})
            )
            for i, im in enumerate(result.images)
        ]
        n = len(paths)
        return {
            out.live: tile([display_copy(im, PREVIEW_MAX) for im in result.images]),
            out.status: f"Done: {n} candidate(s), seed {result.seed}, {seconds:.1f} s.",
            out.gallery: gr.update(
                value=[(p, f"#{i + 1} · seed {result.seed}") for i, p in enumerate(paths)],
                selected_index=0,
                columns=grid_columns(n),
            ),
            out.seed: f"Seed used: **{result.seed}**",
            out.last_seed: result.seed,
            out.download: gr.update(value=paths[0], interactive=True),
            out.cells: display_copy(cells_overlay(result.images[0], result.regenerated, result.region)),
            out.paths: paths,
            out.selected: 0,
        }

    @staticmethod
    def stop(slot: JobSlot | None) -> None:
        """Ask this page's running edit to stop at its next scale (the page has said "Stopping…" at
        once, itself: an answer from here could arrive after the run's last word and hide it)."""
        if isinstance(slot, JobSlot) and slot.job is not None and not slot.job.done:
            slot.job.cancel()

    @staticmethod
    def select(paths: list[str] | None, evt: gr.SelectData) -> tuple[int, Any]:
        """Remember the clicked candidate and point the download button at it."""
        index = int(evt.index) if paths else 0
        return index, gr.update(value=paths[index] if paths else None, interactive=bool(paths))

    # ---- API ----------------------------------------------------------------------------
    def api_run(self, data: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        """One request from an API caller (a JSON-like dict) -> (PNG path carrying its parameters, parameters).
        The endpoints return one picture, so only one candidate is made."""
        editor = self.current_editor()
        try:
            options = data.pop("options", None) or {}
            if not isinstance(options, dict):
                raise EditError('Options must be a JSON object such as {"seed": 1}.')
            if options.get("num_samples", 1) != 1:
                raise EditError("The endpoints return one picture: leave num_samples out or set it to 1.")
            request = EditRequest.from_dict({**data, "options": {**options, "num_samples": 1}}, editor.defaults)
            result = editor.submit([request], time_limit=self.time_limit).result()[0]
        except EditError as e:
            raise user_error(str(e)) from e
        run_dir = Path(tempfile.mkdtemp(dir=self.workdir))
        with self._api_dirs_lock:
            if len(self._api_dirs) == self._api_dirs.maxlen:  # Gradio has long copied the oldest one
                shutil.rmtree(self._api_dirs[0], ignore_errors=True)
            self._api_dirs.append(run_dir)
        path = save_png(result.images[0], run_dir / f"var-edit-seed{result.seed}.png", result.params)
        return str(path), result.params


BRUSH_COLOURS = ["#ff00ff", "#00e0ff", "#ffe600"]


def finish_time(job: EditJob) -> list[float]:
    """A list that gets the monotonic time at which `job` ends (the edit's own time, however far behind
    the page's streaming is)."""
    ended: list[float] = []

    def wait() -> None:
        try:
            job.result()
        except BaseException:  # the stream reports it
            pass
        ended.append(time.monotonic())

    threading.Thread(target=wait, name="var-edit-timer", daemon=True).start()
    return ended


def plain_copy(image: Image.Image) -> Image.Image:
    """`image` without its colour profile: the canvas then shows the very pixel values the model edits
    (and the page's fingerprint of the canvas matches the server's copy)."""
    if not any(key in image.info for key in ("icc_profile", "gamma", "chromaticity", "srgb")):
        return image
    copy = image.copy()
    copy.info = {k: v for k, v in image.info.items() if k not in ("icc_profile", "gamma", "chromaticity", "srgb")}
    return copy
