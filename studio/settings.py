"""The settings panel, generated from the option table (`editing.option_fields`).

Numbers become sliders with the table's range and step, booleans checkboxes, choices radios, the
seed a number box with a "random" checkbox; advanced options sit in their own accordion. Widget
values go back through `EditOptions.from_dict`, so the table's checks apply here too.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gradio as gr

from editing import EditOptions, option_fields
from editing.options import OptionSpec

# Sliders for options whose table range is far wider than anyone drags (e.g. top_k up to 2^17).
SLIDER_MAX = {"top_k": 4096, "dilation": 8, "feather": 32, "cfg": 20.0}
RANDOM = "random"  # what the seed box shows while "Random seed" is ticked


@dataclass
class Settings:
    """The widgets by option name (plus the seed's 'random' box) and the options class they make."""

    widgets: dict[str, gr.components.Component]
    random_seed: gr.Checkbox
    options_cls: type

    @property
    def components(self) -> list[gr.components.Component]:
        return [*self.widgets.values(), self.random_seed]

    def options(self, values: dict[gr.components.Component, Any], defaults: EditOptions) -> EditOptions:
        """The widget values as options of `options_cls` (checked by the table)."""
        given = {name: values[w] for name, w in self.widgets.items()}
        if values[self.random_seed] or given.get("seed") in (None, ""):
            given["seed"] = None
        return self.options_cls.from_dict(given, defaults)

    def show(
        self, defaults: EditOptions, num_scales: int, hidden: frozenset[str] = frozenset()
    ) -> dict[gr.components.Component, Any]:
        """Updates that put the widgets back to a (new) model's defaults; `hidden`: the options its family
        does not use (other families' own)."""
        out: dict[gr.components.Component, Any] = {}
        for name, default, spec in option_fields(self.options_cls):
            value = _studio_value(getattr(defaults, name, default), default, spec)
            shown = name not in hidden
            if name == "strength":
                out[self.widgets[name]] = gr.update(value=value, maximum=max(0, num_scales - 1), visible=shown)
            else:
                out[self.widgets[name]] = gr.update(value=value, visible=shown)
        out[self.random_seed] = getattr(defaults, "seed", None) is None
        return out


def _studio_value(value: Any, default: Any, spec: OptionSpec) -> Any:
    """What the page starts with: the table's studio default where it has one and the model keeps the table's."""
    return spec.studio_default if spec.studio_default is not None and value == default else value


def _widget(
    name: str, value: Any, spec: OptionSpec, num_scales: int, most: int, visible: bool = True
) -> gr.components.Component:
    info = spec.help
    elem_id = f"opt-{name.replace('_', '-')}"
    if spec.kind is bool:
        return gr.Checkbox(value, label=spec.label, info=info, elem_id=elem_id, visible=visible)
    if spec.choices:
        return gr.Radio(list(spec.choices), value=value, label=spec.label, info=info, elem_id=elem_id, visible=visible)
    if spec.text:
        return gr.Textbox(value or "", label=spec.label, info=info, max_length=spec.max_length, elem_id=elem_id,
                          visible=visible)  # fmt: skip
    if name == "seed":
        return gr.Number(value, label=spec.label, info=info, precision=0, placeholder=RANDOM, elem_id=elem_id)
    high = SLIDER_MAX.get(name, spec.high)
    if name == "strength":
        high = max(0, num_scales - 1)
    if name == "num_samples":  # the studio's limit (--max-candidates), said beside the box
        high = min(high, most)
        info = f"{info} Up to {high} here."
    step = spec.step or (1 if spec.kind is int else 0.01)
    return gr.Slider(
        spec.low, high, value=value, step=step, label=spec.label, info=info, elem_id=elem_id, visible=visible
    )


def build_settings(
    defaults: EditOptions,
    num_scales: int,
    options_cls: type = EditOptions,
    max_candidates: int = 64,
    hidden: frozenset[str] = frozenset(),
) -> Settings:
    """Create the settings widgets (inside the current gr.Blocks), basic ones first. max_candidates:
    the studio's limit on candidates per edit (the Candidates slider goes up to it); hidden: the options
    the loaded model's family does not use (shown again when a model that does is loaded)."""
    widgets: dict[str, gr.components.Component] = {}
    fields = option_fields(options_cls)
    basic = [f for f in fields if not f[2].advanced]
    advanced = [f for f in fields if f[2].advanced]
    with gr.Accordion("Settings", open=False, elem_id="settings"):
        random_seed = gr.Checkbox(
            getattr(defaults, "seed", None) is None,
            label="Random seed",
            info="A new seed every run.",
            elem_id="random-seed",
        )
        for name, default, spec in basic:
            value = _studio_value(getattr(defaults, name, default), default, spec)
            widgets[name] = _widget(name, value, spec, num_scales, max_candidates, name not in hidden)
        with gr.Accordion("Advanced", open=False, elem_id="settings-advanced"):
            for name, default, spec in advanced:
                value = _studio_value(getattr(defaults, name, default), default, spec)
                widgets[name] = _widget(name, value, spec, num_scales, max_candidates, name not in hidden)
    seed = widgets.get("seed")
    if seed is not None:  # ticked: the box empties (its placeholder says "random"); a typed seed unticks it
        quick: dict[str, Any] = {"show_progress": "hidden", "api_visibility": "private", "queue": False}
        random_seed.input(lambda on: None if on else gr.skip(), [random_seed], [seed], **quick)
        seed.input(lambda v: False if v not in (None, "") else gr.skip(), [seed], [random_seed], **quick)
    return Settings(widgets, random_seed, options_cls)
