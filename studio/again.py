"""Make this one again: the picked candidate's own seed (recorded in its PNG) into the settings, one
candidate, and its mode's run button pressed, so the same picture and mask give that candidate alone,
pixel for pixel (`EditResult.seeds`)."""

from __future__ import annotations

from typing import Any

from editing import EditError, get_mode, read_params

from .session import user_error

# Presses the run button whose id the handler gave (the run reads the canvas as any run does).
PRESS_JS = "(id) => { const button = id && document.getElementById(id); if (button) button.click(); }"


def again(paths: list[str] | None, index: int) -> tuple[Any, ...]:
    """For candidate `index` of the last run's PNGs -> the 'Random seed' box (off), its seed, the number of
    candidates (1) and the id of its mode's run button."""
    if not paths:
        raise user_error("Run an edit first, then pick the candidate to make again.")
    try:
        params = read_params(paths[min(max(index, 0), len(paths) - 1)])
        mode = get_mode(params.get("mode"))
    except (OSError, EditError) as e:
        raise user_error("That candidate's file is gone; run the edit again.") from e
    seed = params.get("candidate_seed")
    if not isinstance(seed, int):
        raise user_error("That candidate does not record its own seed; run the edit again.")
    return False, seed, 1, mode.button_id or f"run-{mode.name}"
