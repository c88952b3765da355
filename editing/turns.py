"""Turns on the device: a first-come, first-served lock held one scale at a time.

Several edits in flight (several visitors of one studio) share the device scale by scale, in the
order they asked, so a small edit waits for one scale of a big one, not for all of it. A plain
lock would not do: the thread that just released it usually takes it straight back.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager


class Turns:
    """`with turns():` waits for the device in first-come order and holds it until the block ends."""

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._waiting: deque[object] = deque()
        self._busy = False

    @contextmanager
    def __call__(self) -> Iterator[None]:
        me = object()
        with self._changed:
            self._waiting.append(me)
            self._changed.wait_for(lambda: not self._busy and self._waiting[0] is me)
            self._waiting.popleft()
            self._busy = True
        try:
            yield
        finally:
            with self._changed:
                self._busy = False
                self._changed.notify_all()
