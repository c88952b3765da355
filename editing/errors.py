"""Errors a user can cause; each message is one sentence saying what to do."""


class EditError(ValueError):
    """An edit that cannot run as asked (bad input, out of memory, ...)."""


class EditCancelled(RuntimeError):
    """The user stopped the edit."""
