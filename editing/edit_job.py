"""`EditJob`: the one handle through which a caller follows, stops and collects a running edit.

The pipeline reports each finished scale to the job; the caller iterates `updates()` for
previews (or polls `latest`), calls `cancel()` to stop at the next scale, and `result()` to get
the results or the error. Nothing else travels between the caller and the sampling loop.
"""

from __future__ import annotations

import queue
import threading
import time
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from PIL import Image

from .errors import EditCancelled, EditError

if TYPE_CHECKING:
    from collections.abc import Hashable, Iterator

    from .compose import EditResult


@dataclass(frozen=True)
class Progress:
    """Scale `step` of `total` is done; previews[i]: the candidates so far of request i (its index in
    the list given to `Editor.run`), for the requests of the pass that is running. ahead: before the
    first scale, other visitors whose turn on the device comes first (step and total are then 0)."""

    step: int
    total: int
    previews: dict[int, list[Image.Image]]
    ahead: int = 0
    window: int = 0  # the panorama window being drawn, from 1 (0: no window), counted over all candidates
    windows: int = 0
    done: int = 0  # scales done in the whole edit, every pass counted (a panorama's plan, then its windows)
    work: int = 0  # scales in the whole edit (0: not known)


_DONE = object()


class EditJob:
    """A running (or finished) `Editor.run`. previews: whether the pipeline renders previews for it;
    time_limit: seconds after which the edit ends at its next scale with an EditError; visitor: who
    asked (a page, an API caller; None: a visitor of its own): visitors take turns on the device."""

    def __init__(
        self, previews: bool = False, time_limit: float | None = None, visitor: Hashable | None = None
    ) -> None:
        self.previews = previews
        self.visitor: Hashable = object() if visitor is None else visitor  # not the job: turns remember visitors
        self.ended_at: float | None = None  # time.monotonic() when the edit ended (done, failed or stopped)
        self.time_limit = time_limit
        self._deadline = None if time_limit is None else time.monotonic() + time_limit
        self.latest: Progress | None = None
        self._passes = 1  # sampling passes the edit makes (Editor.run says), and the one running (from 1)
        self._pass = 0
        self._window = (0, 0)
        self._cancel = threading.Event()
        self._finished = threading.Event()
        self._updates: queue.Queue[object] = queue.Queue()
        self._results: list[EditResult] | None = None
        self._error: BaseException | None = None

    # ---- for the caller ---------------------------------------------------------------
    def cancel(self) -> None:
        """Stop at the next scale; `result()` then raises EditCancelled."""
        self._cancel.set()

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    @property
    def done(self) -> bool:
        return self._finished.is_set()

    def updates(self, timeout: float | None = None) -> Iterator[Progress]:
        """Every progress report in order, ending when the job ends (then call `result()`)."""
        while True:
            item = self._updates.get(timeout=timeout)
            if item is _DONE:
                return
            yield item  # type: ignore[misc]

    def result(self, timeout: float | None = None) -> list[EditResult]:
        """One EditResult per request, in order; raises the edit's error (EditError, EditCancelled, ...)."""
        if not self._finished.wait(timeout):
            raise TimeoutError("The edit is still running.")
        if self._error is not None:
            raise self._error
        assert self._results is not None
        return self._results

    # ---- for the pipeline -------------------------------------------------------------
    def check(self) -> None:
        """Raise EditCancelled if the caller asked to stop, EditError past the time limit."""
        if self._cancel.is_set():
            raise EditCancelled("Stopped.")
        if self._deadline is not None and time.monotonic() > self._deadline:
            raise EditError(
                f"The edit took longer than the {self.time_limit:g} s allowed per edit (--max-edit-seconds); "
                "ask for fewer candidates or a smaller picture."
            )

    def waiting(self, ahead: int) -> None:
        """Before its first scale the edit waits for `ahead` other visitors' turns (reported once)."""
        if self.latest is None:
            self.report(Progress(0, 0, {}, ahead))

    def expect(self, passes: int) -> None:
        """The edit makes `passes` sampling passes of the same scales (a panorama: its plan, then each window)."""
        self._passes = max(1, passes)

    def next_pass(self, window: int = 0, windows: int = 0) -> None:
        """A sampling pass starts (a panorama's window `window` of `windows`, or 0 of 0)."""
        self._pass += 1
        self._window = (window, windows)

    def report(self, progress: Progress) -> None:
        if progress.total and not progress.work:
            before = max(self._pass, 1) - 1
            progress = replace(
                progress,
                window=self._window[0],
                windows=self._window[1],
                done=before * progress.total + progress.step,
                work=max(self._passes, before + 1) * progress.total,
            )
        self.latest = progress
        self._updates.put(progress)

    def finish(self, results: list[EditResult] | None = None, error: BaseException | None = None) -> None:
        self._results, self._error = results, error
        self.ended_at = time.monotonic()
        self._finished.set()
        self._updates.put(_DONE)
