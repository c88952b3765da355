"""Errors a user can cause; each message is one sentence saying what to do, quoting what it was sent
at most QUOTE_CHARS characters long (a hostile value of megabytes never reaches an answer or a log)."""

import reprlib
from typing import Any

QUOTE_CHARS = 80
_REPR = reprlib.Repr()  # containers shown with a few items, each bounded
_REPR.maxstring = _REPR.maxother = QUOTE_CHARS


class EditError(ValueError):
    """An edit that cannot run as asked (bad input, out of memory, ...)."""


class EditCancelled(RuntimeError):
    """The user stopped the edit."""


def quoted(value: Any) -> str:
    """`value` as a refusal quotes it: its repr, at most QUOTE_CHARS characters (a longer text says its length)."""
    if isinstance(value, str):
        return repr(value) if len(value) <= QUOTE_CHARS else f"{value[:QUOTE_CHARS]!r}… ({len(value)} characters)"
    text = _REPR.repr(value)
    return text if len(text) <= QUOTE_CHARS else text[:QUOTE_CHARS] + "…"
