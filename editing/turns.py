"""Turns on the device: held one step (a scale, a decode, an encoding) at a time, taken round-robin by visitor.

Several edits in flight (several visitors of one studio) share the device step by step. When the
device comes free, the waiting visitor served least recently goes next, and one visitor's own steps
go in the order asked. So a visitor waits for at most one step of each other visitor per step of its
own, however many or however long their edits are, and one visitor sending many edits gets no more
turns than one sending one. A plain lock would not do: the thread that just released it usually
takes it straight back.
"""

from __future__ import annotations

import itertools
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterator
from contextlib import contextmanager

# Edits a studio accepts at once by default. They take turns step by step, so a small edit beside
# N - 1 others takes about N times its time alone: 8 keeps the demo model's small edit (0.15-1 s
# alone on 2 CPU cores) within 10 s whatever else runs, and 8 clients at once never queue in Gradio.
# Each accepted edit holds its pictures in memory (docs/operating.md: about 8x its RGB bytes).
EDITS_AT_ONCE = 8
REMEMBERED = 4096  # visitors whose last turn is remembered; a forgotten one counts as never served


class Turns:
    """`with turns(visitor):` waits for the device, visitors round-robin, and holds it until the block ends."""

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._waiting: list[tuple[Hashable, int]] = []  # (visitor, ticket), in the order asked
        self._served: OrderedDict[Hashable, int] = OrderedDict()  # visitor -> number of its last turn
        self._tickets = itertools.count()
        self._turn = 0
        self._busy = False

    @contextmanager
    def __call__(self, visitor: Hashable | None = None, waiting: Callable[[int], None] | None = None) -> Iterator[None]:
        """visitor: who asks (None: a visitor of its own); waiting(n) is called once, before waiting,
        when n > 0 other visitors' steps come first."""
        me = (object() if visitor is None else visitor, next(self._tickets))
        with self._changed:
            self._waiting.append(me)
            ahead = self._ahead(me)
            if ahead and waiting is not None:
                waiting(ahead)
            self._changed.wait_for(lambda: not self._busy and self._next() == me)
            self._waiting.remove(me)
            self._busy = True
            self._turn += 1
            self._served[me[0]] = self._turn
            self._served.move_to_end(me[0])
            if len(self._served) > REMEMBERED:
                self._served.popitem(last=False)
        try:
            yield
        finally:
            with self._changed:
                self._busy = False
                self._changed.notify_all()

    def _key(self, entry: tuple[Hashable, int]) -> tuple[int, int]:
        return self._served.get(entry[0], 0), entry[1]

    def _next(self) -> tuple[Hashable, int]:
        return min(self._waiting, key=self._key)

    def _ahead(self, me: tuple[Hashable, int]) -> int:
        """Other visitors' steps that come before `me`: the one holding the device and those waiting first."""
        mine = self._key(me)
        first = {entry[0] for entry in self._waiting if entry[0] != me[0] and self._key(entry) < mine}
        return len(first) + self._busy
