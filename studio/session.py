"""The studio's shared state: the model every page uses, the studio's folder, and how a visitor's
mistake is said (one sentence in the page, one line in the log; only real faults log a traceback).

The handlers live by what they do: `history` (the input picture and its earlier versions), `runs`
(a run streamed into the page), `mask_panel`, `model_panel`, `api` (the named endpoints, which
call `Session.api_run`), `page` (one page's state), `workdir` (the temporary folder).
"""

from __future__ import annotations

import errno
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import gradio as gr
from PIL import Image

from editing import EditError, EditOptions, EditorProtocol, EditRequest, load_image, save_png
from editing.families import not_run

from .page import Page
from .results import Results
from .uploads import Uploads
from .workdir import Workdir

log = logging.getLogger("var-edit-studio")
SENTENCE_CHARS = 400  # the longest refusal said


def user_error(text: str) -> gr.Error:
    """A mistake the user can fix: one sentence in the page, one line in the log, no traceback."""
    text = " ".join(str(text).split()) or "Something went wrong."
    if len(text) > SENTENCE_CHARS:  # a value echoed by someone else's message
        text = text[:SENTENCE_CHARS] + "…"
    text = text if text[-1] in ".!?" else text + "."
    log.info("refused: %s", text)
    return gr.Error(text, print_exception=False)


@contextmanager
def full_disk_said() -> Iterator[None]:
    """Writes inside: a disk with no room left is said in one sentence (nothing is left half-written)."""
    try:
        yield
    except OSError as e:
        if e.errno in (errno.ENOSPC, errno.EDQUOT):
            raise user_error(
                "The server's disk is full, so the result could not be saved; try again later "
                "(the studio's operator should free some space)."
            ) from e
        raise


def open_picture(source: Any) -> Image.Image:
    """A file or PIL image as upright RGB, or the user's one-sentence error."""
    try:
        return load_image(source)
    except EditError as e:
        raise user_error(str(e)) from e


class Session:
    """The shared model (switched by the Model panel), the time an edit may run, the studio's folder
    (workdir: made here unless `launch` made it first, to put Gradio's cache in it), the uploads
    it holds (handlers release what they were sent) and the results it keeps (capped)."""

    def __init__(
        self,
        editor: EditorProtocol,
        time_limit: float | None = None,
        workdir: Workdir | None = None,
        uploads: Uploads | None = None,
        results: Results | None = None,
    ) -> None:
        self.editor: EditorProtocol | None = editor  # None while another model is being loaded
        self.model_serial = 0  # goes up each time the shared model becomes a different one
        self.time_limit = time_limit
        self.workdir = workdir or Workdir()
        self.uploads = uploads or Uploads()
        self.results = results or Results()

    def close(self) -> None:
        """Remove the studio's files."""
        self.workdir.close()

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

    def page_is_current(self, page: Page | None) -> bool:
        """Whether a page's settings were made for the model the studio has now."""
        return not isinstance(page, Page) or page.model == self.model_serial

    def model_summary(self) -> str:
        if self.editor is None:
            return "Loading a model…"
        info = self.editor.info
        conditioning = f"{len(info.class_names)} classes" if info.class_names else "text prompts"
        return (
            f"**{info.name}** · {info.image_size}×{info.image_size} px · {conditioning} · "
            f"device `{info.device}` · precision `{info.dtype}` · {info.parameters / 1e6:.1f} M parameters · "
            f"{self.editor.num_scales} scales"
        )

    def class_choices(self) -> list[tuple[str, int]]:
        if self.editor is None:
            return []
        return [(f"{i}: {name}", i) for i, name in enumerate(self.editor.info.class_names)]

    def taken_fields(self) -> list[str]:
        """The request fields the loaded model's family adds (class_id; prompt ...): their widgets are shown."""
        return [] if self.editor is None else list(self.editor.info.fields)

    def modes_run(self) -> list[str]:
        """The edit modes the loaded model's family runs: their tabs and run buttons are shown."""
        return [] if self.editor is None else list(self.editor.modes)

    def page_loaded(self) -> tuple[str, Page]:
        """Model line for a freshly opened page, and the page's own state."""
        return self.model_summary(), Page(self.model_serial)

    def api_run(
        self, mode: str, fields: dict[str, Any], options: Any, visitor: str | None = None
    ) -> tuple[str, dict[str, Any]]:
        """One request from an API caller: a mode, its fields (pictures: the caller's uploads) and an options
        object -> (PNG path carrying its parameters, parameters). The endpoints return one picture, so only
        one candidate is made; the uploads it names are removed once it is done. visitor: the caller's
        session (its edits share one turn on the device)."""
        try:
            return self._api_run(mode, fields, options, visitor)
        finally:
            self.uploads.release(fields.get("image"), fields.get("mask"))

    def _api_run(
        self, mode: str, fields: dict[str, Any], options: Any, visitor: str | None
    ) -> tuple[str, dict[str, Any]]:
        editor = self.current_editor()
        try:
            if mode not in editor.modes:
                raise not_run(editor.info.name, mode, editor.modes)
            options = {} if options is None else options
            if not isinstance(options, dict):
                raise EditError('Options must be a JSON object such as {"seed": 1}.')
            if options.get("num_samples", 1) != 1:
                raise EditError("The endpoints return one picture: leave num_samples out or set it to 1.")
            chosen = EditOptions.from_dict({**options, "num_samples": 1}, editor.defaults)
            request = EditRequest(mode, options=chosen, **fields)
            result = editor.submit([request], time_limit=self.time_limit, visitor=visitor).result()[0]
        except EditError as e:
            raise user_error(str(e)) from e
        with full_disk_said():
            folder = self.workdir.run_folder()
            path = save_png(result.images[0], folder / f"var-edit-seed{result.seed}.png", result.params)
        self.results.keep(path, visitor)
        return str(path), result.params
