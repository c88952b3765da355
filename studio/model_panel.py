"""The Model panel: every model the studio knows, and switching the shared model safely.

Only listed models can be loaded from the page (a path is a command-line choice). A switch drops
the old model before loading the new one, so two large models never sit in memory together; one
that fails brings the old model back (or the demo) and says why in one sentence. With switching
locked (`--no-model-switch`, the default off loopback) the load handler is not registered at all,
and `ModelSwitch.switch` refuses as well. Each page remembers the model its settings were made for
(`Page.model`); a run after someone else switched is refused once, in one sentence, while the
page's settings and classes are brought up to date.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gradio as gr

from editing import Editor, ModelEntry, free_memory, list_models
from editing.catalog import format_size

from .page import Page
from .session import Session, user_error
from .settings import Settings

log = logging.getLogger("var-edit-studio")

FileProgress = Callable[[str, int, "int | None"], None]  # (filename, bytes done, bytes in all or None)
Loader = Callable[[str, "FileProgress | None"], Editor]  # a listed name -> its model
DEMO_NOTICE = (
    "**This is the demo model**: a 64-px toy trained on emoji, bundled for trying the studio, "
    "not for editing real pictures."
)
REAL_MODELS = (
    " For the published ImageNet models (256 and 512 px), open **Model** below, pick one and press **Load** "
    "(it downloads once), or start the studio with one: `python app.py --model d16`."
)
REAL_MODELS_FIXED = " The published ImageNet models (256 and 512 px) are started with `python app.py --model d16`."

PROGRESS = gr.Progress()  # a handler's default: Gradio hands each call its own


class SwitchError(ValueError):
    """A switch that did not happen, in one sentence."""


class ModelSwitch:
    """The models the page may load (what `list_models` lists) and the switching of the shared model.

    load: turns a listed name into an Editor; fetch: downloads what a listed model lacks, following
    the download, while the old model still serves (None: load does it all); current: the listed
    name of the model the studio started with (None: given by files, which `restore` loads again);
    allowed: False locks the model.
    """

    def __init__(
        self,
        load: Loader,
        models_dir: str | Path | None = None,
        current: str | None = None,
        restore: Callable[[], Editor] | None = None,
        allowed: bool = True,
        fetch: Callable[[str, FileProgress | None], object] | None = None,
    ) -> None:
        self.load = load
        self.fetch = fetch
        self.models_dir = models_dir
        self.current = current
        self.restore = restore
        self.allowed = allowed
        self._lock = threading.Lock()

    def entries(self) -> list[ModelEntry]:
        """Every listed model, as it is on this machine now."""
        return list_models(self.models_dir)

    def switch(self, session: Session, name: str | None, progress: FileProgress | None = None) -> Editor:
        """Make the listed model `name` the studio's model. The old one is dropped first (edits already
        running finish on it); on failure it is loaded again, else the demo, and SwitchError says why."""
        if not self.allowed:
            raise SwitchError("This studio's model is fixed; it is chosen where the studio is started (--model).")
        if not name:
            raise SwitchError("Pick a model in the list first.")
        if name not in {e.name for e in self.entries()}:
            raise SwitchError("Only the listed models can be loaded here; pick one from the list.")
        if not self._lock.acquire(blocking=False):
            raise SwitchError("Another model is being loaded right now; try again when it is done.")
        try:
            if self.fetch is not None:
                try:
                    self.fetch(name, progress)
                except Exception as e:
                    kept = session.editor.info.name if session.editor is not None else "the current model"
                    raise SwitchError(f"{self._reason(e, name)}; {kept} stays loaded.") from e
            session.set_editor(None)
            free_memory()
            try:
                editor = self.load(name, progress)
            except Exception as e:
                reason = self._reason(e, name)
                raise SwitchError(f"{reason}; {self._bring_back(session)} is loaded again.") from e
            session.set_editor(editor)
            self.current, self.restore = name, None
            return editor
        finally:
            self._lock.release()

    def _reason(self, e: Exception, name: str) -> str:
        """Why a fetch or load failed, as the start of one sentence, with the models folder named as such
        where it was given as a full path (the page's visitors need not learn the server's folders)."""
        if not isinstance(e, ValueError):  # CheckpointError, EditError: already one sentence
            log.exception("loading model %s failed", name)
            return f"{name} could not be loaded (the server log has the details)"
        text = " ".join(str(e).split()).rstrip(".")
        folder = str(self.models_dir or "").rstrip("/")
        if folder and Path(folder).is_absolute():
            text = text.replace(folder + "/", "the models folder").replace(folder, "the models folder")
        return text

    def _bring_back(self, session: Session) -> str:
        """Load the model from before a failed switch, else the demo; its name."""
        free_memory()
        try:
            editor = self.restore() if self.restore is not None else self.load(self.current or "demo", None)
            session.set_editor(editor, same_model=True)
        except Exception:
            log.exception("loading the previous model again failed; loading the demo")
            editor = self.load("demo", None)
            session.set_editor(editor)
            self.current, self.restore = "demo", None
        return editor.info.name


def models_table(entries: list[ModelEntry], loaded: str | None) -> str:
    """The listed models as a Markdown table: resolution, size on disk or to download, whether here."""
    rows = ["| Model | Resolution | Size | Here |", "|---|---|---|---|"]
    for e in entries:
        name = f"**{e.name}** (loaded)" if e.name == loaded else e.name
        size = format_size(e.size) if e.present else f"{format_size(e.size)} to download"
        rows.append(f"| {name} | {_resolution(e)} | {size} | {'yes' if e.present else 'no'} |")
    return "\n".join(rows)


def _resolution(e: ModelEntry) -> str:
    return f"{e.resolution} px" if e.resolution else "unreadable"


def _choice_label(e: ModelEntry) -> str:
    where = format_size(e.size) if e.present else f"downloads {format_size(e.size)}"
    return f"{e.name} · {_resolution(e)} · {where}"


@dataclass
class ModelPanel:
    """The panel's widgets (choice and button exist only where switching is allowed)."""

    info: gr.Markdown
    notice: gr.Markdown
    table: gr.Markdown
    choice: gr.Dropdown | None
    button: gr.Button | None

    def outputs(self) -> list[gr.components.Component]:
        return [w for w in (self.info, self.notice, self.table, self.choice) if w is not None]


class ModelPanelView:
    """Builds the panel and its events around a session, its settings and class list."""

    def __init__(self, session: Session, switch: ModelSwitch | None) -> None:
        self.session = session
        self.switch = switch
        self.panel: ModelPanel | None = None
        self._notice: gr.Markdown | None = None
        self._refresh: list[gr.components.Component] = []
        self._settings: Settings | None = None
        self._classes: gr.Dropdown | None = None

    @property
    def can_switch(self) -> bool:
        return self.switch is not None and self.switch.allowed

    def _loaded_name(self) -> str | None:
        """The listed name of the loaded model (None: not a listed one, or loading)."""
        if self.switch is None or self.session.editor is None:
            return None
        return self.switch.current

    def notice_text(self) -> str:
        """The demo notice (empty for any other model)."""
        editor = self.session.editor
        if editor is None or editor.name != "demo":
            return ""
        return DEMO_NOTICE + (REAL_MODELS if self.can_switch else REAL_MODELS_FIXED)

    def build_notice(self) -> gr.Markdown:
        """The demo notice, where the page starts (call inside the Blocks, near the top)."""
        text = self.notice_text()
        self._notice = gr.Markdown(text, visible=bool(text), elem_id="demo-notice")
        return self._notice

    def build(self) -> ModelPanel:
        """The Model accordion (call inside the Blocks, after build_notice)."""
        entries = self.switch.entries() if self.switch is not None else []
        with gr.Accordion("Model", open=False, elem_id="model"):
            info = gr.Markdown(self.session.model_summary(), elem_id="model-info")
            table = gr.Markdown(models_table(entries, self._loaded_name()), visible=bool(entries), elem_id="model-list")
            choice = button = None
            if self.can_switch:
                with gr.Row():
                    choice = gr.Dropdown(
                        [(_choice_label(e), e.name) for e in entries],
                        value=self._loaded_name() if self._loaded_name() in {e.name for e in entries} else None,
                        label="Model to load",
                        allow_custom_value=False,
                        elem_id="model-choice",
                    )
                    button = gr.Button("Load", elem_id="load-model")
            elif self.switch is not None:
                gr.Markdown(
                    "The model is fixed on this server (`--no-model-switch`); it is chosen where the studio "
                    "is started.",
                    elem_id="model-fixed",
                )
        assert self._notice is not None, "build_notice() first"
        self.panel = ModelPanel(info, self._notice, table, choice, button)
        return self.panel

    def page_state(self) -> dict[Any, Any]:
        """Updates that show the shared model as it is now: panel, notice, settings and class list."""
        assert self.panel is not None and self._settings is not None and self._classes is not None
        editor = self.session.editor
        entries = self.switch.entries() if self.switch is not None else []
        notice = self.notice_text()
        out: dict[Any, Any] = {
            self.panel.info: self.session.model_summary(),
            self.panel.notice: gr.update(value=notice, visible=bool(notice)),
            self.panel.table: models_table(entries, self._loaded_name()),
            self._classes: gr.update(choices=self.session.class_choices(), value=0),
        }
        if self.panel.choice is not None:
            choices = [(_choice_label(e), e.name) for e in entries]
            out[self.panel.choice] = gr.update(choices=choices, value=self._loaded_name())
        if editor is not None:
            out.update(self._settings.show(editor.defaults, editor.num_scales))
        return out

    def wire(self, demo: gr.Blocks, settings: Settings, classes: gr.Dropdown, page: gr.State) -> None:
        """The panel's events: a new page shows the model loaded now (the page was built for the start
        model), and, where switching is allowed, Load."""
        assert self.panel is not None
        self._settings, self._classes = settings, classes
        self._refresh = [*self.panel.outputs(), classes, *settings.components]
        demo.load(self.page_state, None, self._refresh, show_progress="hidden", api_visibility="private")
        switch = self.switch
        if switch is None or not switch.allowed:
            return  # nothing on the server can switch the model: no handler to call
        assert self.panel.choice is not None and self.panel.button is not None

        def load_model(name: str | None, state: Page | None, progress: gr.Progress = PROGRESS) -> dict:
            def follow(filename: str, done: int, total: int | None) -> None:
                if total and done >= total:
                    progress(None, desc=f"Loading {name}…")
                else:
                    progress((done, total) if total else None, desc=f"Downloading {filename}", unit="bytes")

            progress(None, desc=f"Loading {name}…")
            try:
                editor = switch.switch(self.session, name, follow)
            except SwitchError as e:
                raise user_error(str(e)) from e
            if isinstance(state, Page):
                state.model = self.session.model_serial
            gr.Info(f"Loaded model {editor.info.name}.")
            return self.page_state()

        self.panel.button.click(
            load_model,
            [self.panel.choice, page],
            self._refresh,
            api_name="load_model",
            api_visibility="private",
            concurrency_limit=1,
            concurrency_id="load",
            show_progress_on=[self.panel.info],
        )

    def check_page(self, page: Page | None) -> dict[Any, Any]:
        """Before a run: a page whose settings were made for another model gets the current model's (the
        run then refuses once, in one sentence); otherwise nothing changes."""
        if self.session.page_is_current(page):
            return {c: gr.skip() for c in self._refresh}
        return self.page_state()

    @property
    def refresh_outputs(self) -> list[gr.components.Component]:
        """What check_page may update."""
        return self._refresh
