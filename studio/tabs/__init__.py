"""The mode tabs, made from the mode registry (editing/modes): one tab per mode title, a widget per
field (shared by the modes of a tab), a run button per mode; `EXTRAS` adds a mode's own studio tools.

The fields the model families add (a class list, a prompt box) are shown only while a model of a
family that takes them is loaded (`Tab.family_widgets`), and the tabs and run buttons only of the modes the
loaded model's family runs (`Tab.runs_shown`: no Prompt edit tab beside a class model, no Class edit tab
beside a text model); the model panel swaps them when another model is loaded."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import gradio as gr

from editing import Mode, registered
from editing.modes import Field

Values = dict[gr.components.Component, Any]


@dataclass
class Run:
    """A run button: the request mode it starts, the tab's widgets it reads, and the request fields
    (class_id, margins, ...) those widgets give; `uses_mask`: the painted mask is part of the request."""

    mode: str
    button: gr.Button
    components: list[gr.components.Component] = field(default_factory=list)
    fields: Callable[[Values], dict[str, Any]] = lambda values: {}
    uses_mask: bool = True
    uses_picture: bool = True
    family_fields: frozenset[str] = frozenset()  # the fields families add: sent only where the model takes them

    def request_fields(self, values: Values, taken: list[str]) -> dict[str, Any]:
        """The widgets' request fields, less the family fields the loaded model does not take (`taken`)."""
        return {k: v for k, v in self.fields(values).items() if k not in self.family_fields or k in taken}


@dataclass
class Tab:
    """A mode tab: its runs, its field widgets by name, whether its modes use the painted mask, and the
    mode-specific tools (EXTRAS) built in it."""

    tab: gr.Tab
    runs: list[Run]
    widgets: dict[str, gr.components.Component]
    uses_mask: bool
    extras: list[Any]
    class_lists: list[gr.Dropdown] = field(default_factory=list)  # the widgets listing the model's classes
    family_widgets: dict[str, gr.components.Component] = field(default_factory=dict)  # by field name

    def runs_shown(self, modes: list[str]) -> dict[gr.components.Component, Any]:
        """Updates that show the tab and its run buttons where the loaded model runs their modes (`modes`)."""
        out: dict[gr.components.Component, Any] = {r.button: gr.update(visible=r.mode in modes) for r in self.runs}
        out[self.tab] = gr.update(visible=_tab_visible(any(run.mode in modes for run in self.runs)))
        return out


def _tab_visible(shown: bool) -> bool | str:
    """A tab's `visible`: "hidden" rather than False, so that it stays in the page and its button goes when it is
    hidden after the page was drawn (Gradio 6 keeps the button of a tab made invisible with False)."""
    return True if shown else "hidden"


# A mode's own studio tools, by mode name: called inside its tab with the tab's widgets (tabs/outpaint.py).
EXTRAS: dict[str, Callable[[dict[str, gr.components.Component]], Any]] = {}


def field_widget(f: Field, class_choices: list[tuple[str, int]], visible: bool = True) -> gr.components.Component:
    """The widget of one mode field, from its spec; visible: whether the loaded model takes it."""
    spec, info = f.spec, f.spec.help[:1].upper() + f.spec.help[1:]
    if f.widget == "classes":
        info = "Type to search; paint the area to change on the picture."
        first = 0 if class_choices else None  # a text model has no classes: nothing picked
        return gr.Dropdown(
            class_choices, value=first, label=spec.label, filterable=True, info=info, elem_id=f.elem_id, visible=visible
        )
    if spec.text:
        return gr.Textbox(
            f.default or "", label=spec.label, info=info, max_length=spec.max_length, lines=1,
            elem_id=f.elem_id or f"field-{f.name.replace('_', '-')}", visible=visible,
        )  # fmt: skip
    if spec.choices:
        value = spec.studio_default if spec.studio_default is not None else f.default
        return gr.Dropdown(
            list(spec.choices), value=value, label=spec.label, info=info, elem_id=f.elem_id, visible=visible
        )
    if spec.kind is bool:
        return gr.Checkbox(bool(f.default), label=spec.label, info=info, elem_id=f.elem_id, visible=visible)
    if spec.kind is float and spec.low is not None and spec.high is not None:
        value = spec.studio_default if spec.studio_default is not None else f.default
        return gr.Slider(
            spec.low, spec.high, value=value, step=spec.step, label=spec.label, info=info, elem_id=f.elem_id
        )
    precision = 0 if spec.kind is int else None
    return gr.Number(f.default, label=spec.label, precision=precision, minimum=spec.low, elem_id=f.elem_id)


def _run(mode: Mode, button: gr.Button, widgets: dict[str, gr.components.Component]) -> Run:
    own = {f.name: widgets[f.name] for f in mode.request_fields if not f.picture}
    added = frozenset(own) - {f.name for f in mode.fields}

    def fields(values: Values) -> dict[str, Any]:
        return {name: values[widget] for name, widget in own.items()}

    return Run(mode.name, button, list(own.values()), fields, mode.uses_mask, mode.uses_picture, added)


def _widgets(
    modes: list[Mode], class_choices: list[tuple[str, int]], taken: list[str]
) -> dict[str, gr.components.Component]:
    """One widget per field name of the modes of a tab (pictures come from the canvas); the fields families add
    are visible where the loaded model takes them (`taken`)."""
    widgets: dict[str, gr.components.Component] = {}
    own = {f.name for mode in modes for f in mode.fields}
    for f in (f for mode in modes for f in mode.request_fields if not f.picture):
        if f.name not in widgets:
            widgets[f.name] = field_widget(f, class_choices, f.name in own or f.name in taken)
    return widgets


def _tab(
    title: str, modes: list[Mode], class_choices: list[tuple[str, int]], taken: list[str], run_here: list[str]
) -> Tab:
    tab_id = modes[0].tab_id or modes[0].name
    shown = any(mode.name in run_here for mode in modes)
    with gr.Tab(title, id=tab_id, elem_id=f"tab-{tab_id}", visible=_tab_visible(shown)) as tab:
        gr.Markdown(" ".join(mode.doc for mode in modes))
        widgets = _widgets(modes, class_choices, taken)
        with gr.Row():
            buttons = [
                gr.Button(mode.button or mode.name, variant="primary" if i == 0 else "secondary",
                          elem_id=mode.button_id or f"run-{mode.name}", visible=mode.name in run_here)
                for i, mode in enumerate(modes)
            ]  # fmt: skip
        extras = [EXTRAS[mode.name](widgets) for mode in modes if mode.name in EXTRAS]
    runs = [_run(mode, button, widgets) for mode, button in zip(modes, buttons, strict=True)]
    classes = [widgets[f.name] for mode in modes for f in mode.request_fields if f.widget == "classes"]
    added = {name: widgets[name] for run in runs for name in run.family_fields}
    return Tab(tab, runs, widgets, any(mode.uses_mask for mode in modes), extras, classes[:1], added)


def build_tabs(class_choices: list[tuple[str, int]], taken: list[str], run_here: list[str]) -> list[Tab]:
    """Every registered mode's tab (inside the current gr.Tabs); modes with the same title share one.
    taken: the fields the loaded model's family adds (its conditioning), whose widgets are shown; run_here:
    the modes it runs, whose tabs and buttons are shown."""
    groups: dict[str, list[Mode]] = {}
    for mode in registered():
        groups.setdefault(mode.title or mode.name, []).append(mode)
    return [_tab(title, modes, class_choices, taken, run_here) for title, modes in groups.items()]
