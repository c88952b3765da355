"""The Model panel: every model the studio knows, and switching the shared model safely.

Only listed models can be loaded from the page (a path is a command-line choice). The switching
itself, with the old model dropped first and brought back on failure, is `editing.models.ModelSwitch`;
this module is its page. With switching locked (`--no-model-switch`, the default off loopback) the
load handler is not registered at all (a call to it is answered 404), and `ModelSwitch.switch` refuses
as well. Each page remembers the model its settings were made for
(`Page.model`); a run after someone else switched is refused once, in one sentence, while the
page's settings and classes are brought up to date.
"""

from __future__ import annotations

import html
import queue
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import gradio as gr

from editing import ModelEntry, ModelSwitch, SwitchError
from editing.families import foreign_options
from editing.models import format_size

from .page import Page
from .session import Session, user_error
from .settings import Settings
from .tabs import Tab

DEMO_NOTICE = (
    "**This is the demo model**: a 64-px toy trained on emoji, bundled for trying the studio, "
    "not for editing real pictures."
)
REAL_MODELS = (
    " For the published ImageNet models (256 and 512 px) or the text-guided Infinity ones, open **Model** below, "
    "pick one and press **Load** (it downloads once), or start the studio with one: `python app.py --model d16`."
)
REAL_MODELS_FIXED = (
    " The published ImageNet models (256 and 512 px) and the text-guided Infinity ones are started with "
    "`python app.py --model d16`."
)

BAR_EVERY = 0.15  # seconds between two updates of the download bar (the download reports far more often)


def models_table(entries: list[ModelEntry], loaded: str | None) -> str:
    """The listed models as a Markdown table: resolution, size on disk or to download, whether here, and what a
    published one needs in memory (an estimate from its parameter counts)."""
    rows = ["| Model | Resolution | Size | Here | Memory (estimate) |", "|---|---|---|---|---|"]
    for e in entries:
        name = f"**{e.name}** (loaded)" if e.name == loaded else e.name
        size = format_size(e.size) if e.present else f"{format_size(e.size)} to download"
        rows.append(f"| {name} | {_resolution(e)} | {size} | {'yes' if e.present else 'no'} | {_memory(e)} |")
    return "\n".join(rows + [MEMORY_NOTE])


def download_text(name: str | None, filename: str, done: int, total: int | None) -> tuple[str, int, int | None]:
    """(line, done, total) for the bar: bytes of a file coming, or the model being built once they are here."""
    if total and done >= total:
        return f"Loading {name}…", 0, None
    if not total:
        return f"Downloading {filename}: {format_size(done)}", 0, None
    return f"Downloading {filename}: {100 * done / total:.1f} % of {format_size(total)}", done, total


def progress_html(text: str, done: int = 0, total: int | None = None) -> str:
    """A progress bar with its line (no bar value while the amount is not known: a moving bar)."""
    value = f' value="{done}" max="{total}"' if total else ""
    bar = f'<progress style="width: 24em"{value}></progress>'
    return f'<div class="model-progress">{bar} <span>{html.escape(text)}</span></div>'


MEMORY_NOTE = (
    "\nMemory: weights and the KV cache of one picture, from parameter counts (16-bit on a GPU, float32 on a CPU); "
    "not measured, and activations come on top. A CPU runs every model, a 2B one at 1024 px in minutes per "
    "picture; see docs/models.md."
)


def _memory(e: ModelEntry) -> str:
    if e.memory is None:
        return "-"
    return f"GPU {format_size(e.memory.gpu)}, CPU {format_size(e.memory.cpu)}"


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
    bar: gr.HTML  # the download's progress while a model loads

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
        self._tabs: list[Tab] = []

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
            bar = gr.HTML("", visible=False, elem_id="model-progress")
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
        self.panel = ModelPanel(info, self._notice, table, choice, button, bar)
        return self.panel

    def page_state(self) -> dict[Any, Any]:
        """Updates that show the shared model as it is now: panel, notice, settings, the tabs and run buttons of
        the modes its family runs, and the class lists and prompt boxes it takes (the others hidden)."""
        assert self.panel is not None and self._settings is not None
        editor = self.session.editor
        entries = self.switch.entries() if self.switch is not None else []
        notice = self.notice_text()
        out: dict[Any, Any] = {
            self.panel.info: self.session.model_summary(),
            self.panel.notice: gr.update(value=notice, visible=bool(notice)),
            self.panel.table: models_table(entries, self._loaded_name()),
            **self._family_widgets(),
        }
        if self.panel.choice is not None:
            choices = [(_choice_label(e), e.name) for e in entries]
            out[self.panel.choice] = gr.update(choices=choices, value=self._loaded_name())
        if editor is not None:
            out.update(self._settings.show(editor.defaults, editor.num_scales, foreign_options(editor.info.family)))
        return out

    def _family_widgets(self) -> dict[Any, Any]:
        """The tabs and run buttons of the modes the model runs, the tabs' class lists (with the model's classes)
        and other family fields, shown where it takes them."""
        taken, modes = self.session.taken_fields(), self.session.modes_run()
        out: dict[Any, Any] = {}
        for tab in self._tabs:
            if self.session.editor is not None:  # while another model loads, the tabs stay as they are
                out.update(tab.runs_shown(modes))
            for name, widget in tab.family_widgets.items():
                out[widget] = gr.update(visible=name in taken)
            for classes in tab.class_lists:
                shown = next((name in taken for name, w in tab.family_widgets.items() if w is classes), True)
                choices = self.session.class_choices()
                out[classes] = gr.update(choices=choices, value=0 if choices else None, visible=shown)
        return out

    def wire(self, demo: gr.Blocks, settings: Settings, tabs: list[Tab], page: gr.State) -> None:
        """The panel's events: a new page shows the model loaded now (the page was built for the start
        model), and, where switching is allowed, Load."""
        assert self.panel is not None
        self._settings, self._tabs = settings, tabs
        family = [w for tab in tabs for w in (tab.tab, *(r.button for r in tab.runs), *tab.family_widgets.values(),
                                              *tab.class_lists)]  # fmt: skip
        self._refresh = [*self.panel.outputs(), *dict.fromkeys(family), *settings.components]
        demo.load(self.page_state, None, self._refresh, show_progress="hidden", api_visibility="private")
        switch = self.switch
        if switch is None or not switch.allowed:
            return  # nothing on the server can switch the model: no handler to call
        assert self.panel.choice is not None and self.panel.button is not None

        bar = self.panel.bar

        def load_model(name: str | None, state: Page | None) -> Iterator[dict]:
            """Switch in the background; the bar follows the download byte by byte, then the panel shows the model."""
            events: queue.Queue[tuple[str, int, int | None] | None] = queue.Queue()
            outcome: dict[str, Any] = {}

            def work() -> None:
                try:
                    outcome["editor"] = switch.switch(self.session, name, lambda *e: events.put(e))
                except SwitchError as e:
                    outcome["error"] = e
                finally:
                    events.put(None)

            threading.Thread(target=work, name="var-edit-model-load", daemon=True).start()
            yield {bar: gr.update(value=progress_html(f"Loading {name}…"), visible=True)}
            shown = 0.0
            while (event := events.get()) is not None:
                while not events.empty() and events.queue[0] is not None:
                    event = events.get()  # only the latest report matters
                if time.monotonic() - shown >= BAR_EVERY:
                    shown = time.monotonic()
                    yield {bar: progress_html(*download_text(name, *event))}
            if "error" in outcome:
                yield {bar: gr.update(value="", visible=False)}
                raise user_error(str(outcome["error"]))
            if isinstance(state, Page):
                state.model = self.session.model_serial
            gr.Info(f"Loaded model {outcome['editor'].info.name}.")
            yield {**self.page_state(), bar: gr.update(value="", visible=False)}

        self.panel.button.click(
            load_model,
            [self.panel.choice, page],
            [*self._refresh, bar],
            api_name="load_model",
            api_visibility="private",
            concurrency_limit=1,
            concurrency_id="load",
            show_progress="hidden",
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
