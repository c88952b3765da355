"""A run: the one handler behind every run button (widget values -> `EditRequest` -> `Editor.submit`),
streamed into the page scale by scale, its candidates saved as PNGs carrying their parameters."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gradio as gr
import numpy as np
from PIL import Image

from editing import EditCancelled, EditError, EditorProtocol, EditRequest, EditResult, Progress, save_png

from . import canvas_io
from .cells import cells_view, redrawn
from .compare import before_view, compare_update
from .page import Page
from .pictures import PREVIEW_MAX, display_copy, grid_columns, tile
from .progress import Clock, status_text, stopped_text
from .session import Session, full_disk_said, user_error
from .settings import Settings
from .tabs import Run, Values

log = logging.getLogger("var-edit-studio")
CANDIDATES = "Candidates"
EARLIER = "Candidates of the run before (this run's come when it ends)"


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
    continue_: gr.Button
    compare: gr.ImageSlider
    before: gr.State

    def all(self) -> list[gr.components.Component]:
        return list(vars(self).values())

    def earlier(self, running: bool, results: bool = True) -> dict[Any, Any]:
        """While a run goes, the candidates shown are the run before's: marked so, neither downloaded nor
        continued from by mistake; afterwards (stopped, failed) they are offered again where there are some."""
        return {
            self.gallery: gr.update(label=EARLIER if running else CANDIDATES),
            self.download: gr.update(interactive=not running and results),
            self.continue_: gr.update(interactive=not running),
            self.compare: gr.update(visible=not running and results),
        }


def run_handler(
    session: Session, run: Run, settings: Settings, mask_box: gr.Textbox, page: gr.State, out: Outputs
) -> Callable[[Values], Iterator[dict[Any, Any]]]:
    """The handler of one run button. mask_box: the hidden textbox the page's script fills with the
    canvas's mask (canvas_io); page: the page's `Page` state."""

    def handler(values: Values) -> Iterator[dict[Any, Any]]:
        editor = session.current_editor()  # the edit runs to its end on this model, whatever is loaded later
        state = values[page]
        if not session.page_is_current(state):
            state.model = session.model_serial  # the page has been brought up to date (ModelPanelView.check_page)
            raise user_error(
                f"The studio's model was switched to {editor.info.name} since this page set up its settings; "
                "they and the class list now fit it, so check them and run again."
            )
        extra: dict[Any, Any] = {}
        try:
            fields = run.request_fields(values, editor.info.fields)
            options = settings.options(values, editor.defaults)
            picture = mask = None
            if run.uses_picture:
                picture, shown, mask = canvas_io.read_canvas(values[mask_box], values[out.original], values[out.shown])
                extra = {out.original: picture, out.shown: shown}
                if run.uses_mask and not mask.getbbox():
                    raise EditError("Paint over the area to change first.")
            request = EditRequest(run.mode, picture, mask if run.uses_mask else None, options=options, **fields)
        except EditError as e:
            raise user_error(str(e)) from e
        if isinstance(state, Page) and state.busy:
            raise user_error("Your previous edit is still running: wait for it, or press Stop first.")
        yield from stream(session, editor, request, state, extra, out)

    return handler


def stream(
    session: Session,
    editor: EditorProtocol,
    request: EditRequest,
    page: Page | None,
    extra: dict[Any, Any],
    out: Outputs,
) -> Iterator[dict[Any, Any]]:
    """Submit `request` and yield the page's updates: the newest scale's previews, then the results."""
    started = time.monotonic()
    visitor = page.visitor if isinstance(page, Page) else None
    job = editor.submit([request], previews=True, time_limit=session.time_limit, visitor=visitor)
    if isinstance(page, Page):
        page.job = job
    had_results = isinstance(page, Page) and page.results is not None
    yield {**extra, out.status: "Starting…", **out.earlier(True)}
    last: Progress | None = None
    clock = Clock()
    try:
        for progress in job.updates():
            if progress.ahead:
                yield {out.status: waiting_text(progress.ahead)}
                continue
            last = progress
            left = clock.left(progress)
            if progress is not job.latest:
                continue  # the page is behind the edit: show only the newest scale
            images = progress.previews.get(0) or []
            if images:
                yield {out.live: tile(images), out.status: status_text(progress, left)}
        result = job.result()[0]
    except EditCancelled:
        where = stopped_text(last)
        gr.Warning(f"Stopped{where}; the input is unchanged.")
        yield {out.status: f"Stopped{where}.", **out.earlier(False, had_results)}
        return
    except EditError as e:
        yield {out.status: f"Failed: {e}", **out.earlier(False, had_results)}
        raise user_error(str(e)) from e
    except Exception as e:
        log.exception("edit failed")
        yield {out.status: "Failed: the edit failed unexpectedly.", **out.earlier(False, had_results)}
        raise gr.Error("The edit failed unexpectedly; the server log has the details.") from e
    finally:
        if not job.done:
            job.cancel()  # the page went away: stop the edit at its next scale
    assert job.ended_at is not None  # the job is done
    with full_disk_said():
        results = session.workdir.run_folder()
        if isinstance(page, Page):
            page.keep_only(results)
        done = finish(result, job.ended_at - started, results, out, extra.get(out.original))
    for path in done[out.paths]:
        session.results.keep(path, visitor)
    yield done


def finish(
    result: EditResult, seconds: float, folder: Path, out: Outputs, picture: Image.Image | None = None
) -> dict[Any, Any]:
    """Save the candidates as PNGs (with parameters) into `folder` and fill the result widgets.
    seconds: the edit's own time, however far behind the page's streaming was; picture: the input (None:
    generated), for the before/after slider."""
    before = before_view(picture, result)
    paths = [
        str(save_png(im, folder / f"var-edit-seed{seed}.png", result.png_params(i)))
        for i, (im, seed) in enumerate(zip(result.images, result.seeds, strict=True))
    ]
    n = len(paths)
    return {
        out.live: tile([display_copy(im, PREVIEW_MAX) for im in result.images]),
        out.status: f"Done: {n} candidate(s), seed {result.seed}, {seconds:.1f} s.",
        out.continue_: gr.update(interactive=True),
        out.gallery: gr.update(
            label=CANDIDATES,
            value=[(p, f"#{i + 1} · seed {seed}") for i, (p, seed) in enumerate(zip(paths, result.seeds, strict=True))],
            selected_index=0,
            columns=grid_columns(n),
        ),
        out.seed: f"Seed used: **{result.seed}**",
        out.last_seed: result.seed,
        out.download: gr.update(value=paths[0], interactive=True),
        out.cells: cells_view(result.images[0], result_cells(result), result.region),
        out.paths: paths,
        out.selected: 0,
        out.before: before,
        out.compare: compare_update(before, result.images[0]),
    }


def result_cells(result: EditResult) -> np.ndarray | None:
    """The cells `result` changed on the picture (as the mask panel's view counts them before a run)."""
    mask = np.asarray(result.mask) >= 128
    return redrawn(result.regenerated, result.region, mask, bool(result.params.get("paste_back", True)))


def waiting_text(ahead: int) -> str:
    """The status line of an edit waiting for the device."""
    others = "1 other visitor's edit goes" if ahead == 1 else f"{ahead} other visitors' edits go"
    return f"Waiting, number {ahead + 1} in line: {others} first, then they take turns with yours, one scale each."


def select(paths: list[str] | None, evt: gr.EventData) -> tuple[int, Any]:
    """Remember the clicked candidate and point the download button at it. `evt` is read as the click
    it should be (gr.SelectData would fail inside Gradio, with a traceback, on a call without one)."""
    click = getattr(evt, "_data", None)
    if not isinstance(click, dict) or not isinstance(click.get("index"), int):
        raise user_error("Pick a candidate by clicking it in the page.")
    index = click["index"] if paths and 0 <= click["index"] < len(paths) else 0
    return index, gr.update(value=paths[index] if paths else None, interactive=bool(paths))
