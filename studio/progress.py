"""What the status line says while an edit runs: where it is (a panorama's window i of n, the scale), the share
of all its work done, and the time left, estimated from the steps done so far."""

from __future__ import annotations

import time

from editing import Progress


def where(progress: Progress) -> str:
    """'window 3 of 20, scale 5/8', 'planning the whole, scale 2/8' or 'scale 5/8'."""
    scale = f"scale {progress.step}/{progress.total}"
    if progress.windows:
        return f"window {progress.window} of {progress.windows}, {scale}"
    if progress.work > progress.total:
        return f"planning the whole, {scale}"
    return scale


class Clock:
    """Time left from the pace of the steps done so far (counted from the first report: waiting for the
    device before it is not work)."""

    def __init__(self) -> None:
        self._first: tuple[float, int] | None = None

    def left(self, progress: Progress, now: float | None = None) -> float | None:
        """Seconds left, or None until a step past the first report has been timed."""
        now = time.monotonic() if now is None else now
        if self._first is None:
            self._first = (now, progress.done)
            return None
        began, done = self._first
        if progress.done <= done or not progress.work:
            return None
        return (now - began) / (progress.done - done) * (progress.work - progress.done)


def status_text(progress: Progress, left: float | None) -> str:
    """The status line of a running edit, starting with 'Scale', 'Window' or 'Planning'."""
    text = where(progress)
    text = text[0].upper() + text[1:]
    if progress.work:
        text += f" · {100 * progress.done / progress.work:.0f} % done"
    if left is not None:
        text += f" · about {duration(left)} left"
    return text


def duration(seconds: float) -> str:
    """'4 s', '2 min 05 s'."""
    seconds = max(0, round(seconds))
    return f"{seconds} s" if seconds < 60 else f"{seconds // 60} min {seconds % 60:02d} s"


def stopped_text(progress: Progress | None) -> str:
    """Where a stopped edit ended: ' after window 3 of 20, scale 5/8 (27 % done)' or ''."""
    if progress is None or not progress.total:
        return ""
    share = f" ({100 * progress.done / progress.work:.0f} % done)" if progress.work else ""
    return f" after {where(progress)}{share}"
