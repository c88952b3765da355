"""The named endpoints, one per registered mode (editing/modes), for gradio_client, raw HTTP and MCP.

Each endpoint takes the mode's fields as its own inputs (pictures as the caller's uploads, every other
field a JSON value with its own schema) and the options as one object; it returns one picture as a
PNG carrying its parameters, and the parameters. No field can stand for another, for the picture or
for the mode. The docstrings are what an agent reads when the studio runs with --mcp (Gradio turns
each endpoint into a tool).
"""

from __future__ import annotations

import inspect
import json
import re
from pathlib import Path
from typing import Any

import gradio as gr
from gradio.exceptions import InvalidPathError
from pydantic import ValidationError

from editing import EditOptions, Mode, option_fields, registered
from editing.errors import quoted
from editing.families import DEFAULT_FAMILY, FAMILIES, defaults_text, runs
from editing.modes import Field, get_mode, mode_names
from editing.options import OptionSpec, range_text

from . import mcp_tools
from .session import Session, user_error

RETURNS = "The picture (PNG with its parameters in its metadata) and those parameters."


class StudioBlocks(gr.Blocks):
    """gr.Blocks whose own input checks (a file the caller did not upload, a malformed file, too few or
    too many values, a page-only handler called by its number) answer an API caller with one sentence
    instead of `{"error": null}` and a traceback."""

    async def preprocess_data(self, block_fn: Any, inputs: list[Any], state: Any, explicit_call: bool = False) -> Any:
        if block_fn.fn is None:  # a handler that runs in the page only (js=...), called by its fn_index
            raise user_error("This handler runs in the page only; the server has nothing to run for it.")
        if len(inputs) > len(block_fn.inputs):
            raise user_error(f"This takes {len(block_fn.inputs)} values, and {len(inputs)} were sent.")
        if block_fn.api_name in mode_names() and len(inputs) > len(parameters(get_mode(block_fn.api_name))[0]):
            # a mode's endpoint sent up to its options: the other families' fields after them are not given
            inputs = [*inputs, *[None] * (len(block_fn.inputs) - len(inputs))]
        try:
            return await super().preprocess_data(block_fn, inputs, state, explicit_call)
        except gr.Error as e:
            if not getattr(e, "print_exception", True):
                raise  # the studio's own sentence
            raise user_error(_gradio_refusal(str(e.message))) from e
        except InvalidPathError as e:
            raise user_error(
                "Pictures must be your own uploads (gradio_client: handle_file; MCP: a URL or a data URL); "
                "a file on the server cannot be named."
            ) from e
        except ValidationError as e:
            raise user_error(
                "A picture must be sent as an uploaded file (gradio_client: handle_file), not as a text or a number."
            ) from e
        except ValueError as e:  # too few or too many values for the endpoint
            raise user_error(str(e).split("\n", 1)[0]) from e


def _gradio_refusal(text: str) -> str:
    """A component's own refusal (a choice not offered, …) with the value it echoes cut to a quote."""
    choice = re.fullmatch(r"Value: (.*) is not in the list of choices: (.*)", text, re.DOTALL)
    if choice is not None:
        return f"{quoted(choice[1])} is not one of the choices; pick one of {choice[2]}"
    return text


def json_schema(spec: OptionSpec) -> dict[str, Any]:
    """The JSON schema of one field or option."""
    if spec.kind is bool:
        schema: dict[str, Any] = {"type": "boolean"}
    elif spec.text:
        schema = {"type": "string", "maxLength": spec.max_length}
    elif spec.kind is str:
        schema = {"type": "string", "enum": list(spec.choices or ())}
    else:
        schema = {"type": "integer" if spec.kind is int else "number"}
        schema.update({k: v for k, v in (("minimum", spec.low), ("maximum", spec.high)) if v is not None})
    return {"anyOf": [schema, {"type": "null"}]} if spec.nullable else schema


def value_input(label: str, schema: dict[str, Any], default: Any = None) -> gr.JSON:
    """A hidden API input that hands its JSON value on unchanged (the mode checks it) and publishes
    `schema` (gr.JSON's own is not valid JSON schema, so MCP clients refused every call). The method is
    replaced on the instance: a subclass of a Gradio component would make Gradio write a stub file here."""
    box = gr.JSON(None if default is None else json.dumps(default), label=label)  # a default: optional for clients
    box.api_info = lambda: schema  # type: ignore[method-assign]
    return box


def options_schema(options_cls: type = EditOptions) -> dict[str, Any]:
    """The options object: every option of the table (others are refused with a sentence)."""
    properties = {
        name: {**json_schema(spec), "description": f"{spec.label}: {spec.help} Default: {defaults_text(name, value)}."}
        for name, value, spec in option_fields(options_cls)
    }
    return {"anyOf": [{"type": "object", "properties": properties}, {"type": "null"}]}  # unknown keys: refused


def picture_input(label: str) -> gr.File:
    """A hidden API input for a picture: the path of the caller's upload. Its `preprocess` is replaced on
    the instance: gr.File's own leaves an empty temporary file in Gradio's cache for every file it is sent."""
    box = gr.File(label=label)
    box.preprocess = lambda payload: None if payload is None else str(payload.path)  # type: ignore[method-assign]
    return box


def field_input(f: Field) -> gr.components.Component:
    if f.picture:
        return picture_input(f.name)
    return value_input(f.name, {**json_schema(f.spec), "description": f.spec.help}, f.default)


def parameters(mode: Mode) -> tuple[list[Field], list[Field]]:
    """A mode endpoint's fields before `options` (the mode's own and the default family's: the positional API
    stays as it was when another family registers) and after it (other families' conditioning, e.g. `prompt`)."""
    if not runs(FAMILIES[DEFAULT_FAMILY], mode.name):
        return list(mode.request_fields), []
    first = [f for f in mode.request_fields if f in mode.fields or f.name in mode.family_fields(DEFAULT_FAMILY)]
    return first, [f for f in mode.request_fields if f not in first]


def _docstring(mode: Mode) -> str:
    first, rest = parameters(mode)
    args = [f"    {f.name}: {f.spec.help}{range_text(f.spec)}" for f in first]
    args.append('    options: optional settings, e.g. {"seed": 1}; unknown keys are refused.')
    args += [f"    {f.name}: {f.spec.help}{range_text(f.spec)}" for f in rest]
    return f"{mode.doc}\n\nArgs:\n" + "\n".join(args) + f"\nReturns:\n    {RETURNS}"


def endpoint(session: Session, mode: Mode) -> Any:
    """The function behind a mode's endpoint: its parameters are the mode's fields and `options` (`parameters`)."""
    first, rest = parameters(mode)

    def call(*values: Any) -> tuple[str, dict[str, Any]]:
        *values, request = values
        options = values[len(first)]
        fields = values[: len(first)] + values[len(first) + 1 :]
        given = {f.name: Path(v) if isinstance(v, str) and f.picture else v
                 for f, v in zip(first + rest, fields, strict=True)}  # fmt: skip
        return session.api_run(mode.name, given, options, _visitor(request))

    kind = inspect.Parameter.POSITIONAL_OR_KEYWORD

    def parameter(f: Field) -> inspect.Parameter:
        return inspect.Parameter(f.name, kind, default=inspect.Parameter.empty if f.required else f.default)

    params = [parameter(f) for f in first]
    params.append(inspect.Parameter("options", kind, default=None))
    # After `options` (which has a default), so a family's required field is checked by its mode, not here.
    params += [parameter(f).replace(default=None) for f in rest]
    # Gradio hands the caller's request to a parameter annotated gr.Request (not an input of the endpoint)
    params.append(inspect.Parameter("request", kind, default=None, annotation=gr.Request))
    call.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    call.__annotations__ = {"request": gr.Request}
    call.__name__ = call.__qualname__ = mode.name
    call.__doc__ = _docstring(mode)
    return call


def _visitor(request: gr.Request | None) -> str | None:
    """An API caller is its session (one gradio_client Client, one MCP connection): its edits share one turn
    on the device."""
    return None if request is None else request.session_hash


def add_endpoints(session: Session, mcp: bool = False) -> None:
    """Create one endpoint per registered mode inside the current gr.Blocks (their widgets stay hidden);
    mcp: they are also served as MCP tools (Gradio's MCP server is mended for them)."""
    if mcp:
        mcp_tools.mend(session.uploads)
    with gr.Row(visible=False):
        result, params = gr.Image(label="result", type="filepath", format="png"), gr.JSON(label="params")
        for mode in registered():
            first, rest = parameters(mode)
            options = value_input("options", options_schema())
            inputs = [*(field_input(f) for f in first), options, *(field_input(f) for f in rest)]
            trigger = gr.Button(visible=False)
            trigger.click(endpoint(session, mode), inputs, [result, params], api_name=mode.name, concurrency_id="edit")
