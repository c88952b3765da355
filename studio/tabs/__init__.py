"""The mode tabs, made from the mode registry (editing/modes): one tab per mode title, a widget per
field (shared by the modes of a tab), a run button per mode; `EXTRAS` adds a mode's own studio tools."""

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


# A mode's own studio tools, by mode name: called inside its tab with the tab's widgets (tabs/outpaint.py).
EXTRAS: dict[str, Callable[[dict[str, gr.components.Component]], Any]] = {}


def field_widget(f: Field, class_choices: list[tuple[str, int]]) -> gr.components.Component:
    """The widget of one mode field, from its spec."""
    spec, info = f.spec, f.spec.help[:1].upper() + f.spec.help[1:]
    if f.widget == "classes":
        info = "Type to search; paint the area to change on the picture."
        return gr.Dropdown(class_choices, value=0, label=spec.label, filterable=True, info=info, elem_id=f.elem_id)
    if spec.choices:
        return gr.Dropdown(list(spec.choices), value=f.default, label=spec.label, info=info, elem_id=f.elem_id)
    if spec.kind is bool:
        return gr.Checkbox(bool(f.default), label=spec.label, info=info, elem_id=f.elem_id)
    if spec.kind is float and spec.low is not None and spec.high is not None:
        value = spec.studio_default if spec.studio_default is not None else f.default
        return gr.Slider(
            spec.low, spec.high, value=value, step=spec.step, label=spec.label, info=info, elem_id=f.elem_id
        )
    precision = 0 if spec.kind is int else None
    return gr.Number(f.default, label=spec.label, precision=precision, minimum=spec.low, elem_id=f.elem_id)


def _run(mode: Mode, button: gr.Button, widgets: dict[str, gr.components.Component]) -> Run:
    own = {f.name: widgets[f.name] for f in mode.request_fields if not f.picture}

    def fields(values: Values) -> dict[str, Any]:
        return {name: values[widget] for name, widget in own.items()}

    return Run(mode.name, button, list(own.values()), fields, mode.uses_mask, mode.uses_picture)


def _widgets(modes: list[Mode], class_choices: list[tuple[str, int]]) -> dict[str, gr.components.Component]:
    """One widget per field name of the modes of a tab (pictures come from the canvas)."""
    widgets: dict[str, gr.components.Component] = {}
    for f in (f for mode in modes for f in mode.request_fields if not f.picture):
        if f.name not in widgets:
            widgets[f.name] = field_widget(f, class_choices)
    return widgets


def _tab(title: str, modes: list[Mode], class_choices: list[tuple[str, int]]) -> Tab:
    tab_id = modes[0].tab_id or modes[0].name
    with gr.Tab(title, id=tab_id, elem_id=f"tab-{tab_id}") as tab:
        gr.Markdown(" ".join(mode.doc for mode in modes))
        widgets = _widgets(modes, class_choices)
        with gr.Row():
            buttons = [
                gr.Button(mode.button or mode.name, variant="primary" if i == 0 else "secondary",
                          elem_id=mode.button_id or f"run-{mode.name}")
                for i, mode in enumerate(modes)
            ]  # fmt: skip
        extras = [EXTRAS[mode.name](widgets) for mode in modes if mode.name in EXTRAS]
    runs = [_run(mode, button, widgets) for mode, button in zip(modes, buttons, strict=True)]
    classes = [widgets[f.name] for mode in modes for f in mode.request_fields if f.widget == "classes"]
    return Tab(tab, runs, widgets, any(mode.uses_mask for mode in modes), extras, classes[:1])


def build_tabs(class_choices: list[tuple[str, int]]) -> list[Tab]:
    """Every registered mode's tab (inside the current gr.Tabs); modes with the same title share one."""
    groups: dict[str, list[Mode]] = {}
    for mode in registered():
        groups.setdefault(mode.title or mode.name, []).append(mode)
    return [_tab(title, modes, class_choices) for title, modes in groups.items()]
