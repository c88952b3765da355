"""The result files the studio keeps, capped: the studio's own copies (a page's candidates, the
endpoints' PNGs) and the copies Gradio serves of them and of the pictures a page is shown, together at
most `--max-results-mb`, and one visitor's at most `--max-results-per-visitor-mb`; past either, the
oldest are removed first (the newest is always kept: it is being served).

A visitor is a page or an API caller's session; a copy Gradio makes of a kept file belongs to the
same visitor, a picture Gradio caches from memory (a live preview) to nobody's in particular.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger("var-edit-studio")
MB = 1024 * 1024
TOTAL_MB = 1024.0  # --max-results-mb
VISITOR_MB = 256.0  # --max-results-per-visitor-mb


@dataclass
class _Kept:
    visitor: str | None
    size: int


class Results:
    """The ledger of kept result files, oldest first (total_mb / visitor_mb: the caps)."""

    def __init__(self, total_mb: float = TOTAL_MB, visitor_mb: float = VISITOR_MB) -> None:
        self.total_mb, self.visitor_mb = total_mb, visitor_mb
        self.total, self.per_visitor = int(total_mb * MB), int(visitor_mb * MB)
        self._kept: OrderedDict[str, _Kept] = OrderedDict()
        self._lock = threading.Lock()

    def held(self, visitor: str | None = None) -> int:
        """Bytes kept (by `visitor`, or in all)."""
        with self._lock:
            return self._bytes(visitor)

    def keep(self, path: str | Path, visitor: str | None = None) -> None:
        """A new result file (or a copy handed out again): the newest now; older ones go past a cap."""
        path = str(path)
        try:
            size = Path(path).stat().st_size
        except OSError:
            return
        with self._lock:
            self._kept.pop(path, None)
            self._kept[path] = _Kept(visitor, size)
            doomed = self._over(visitor, path)
        for old in doomed:
            _remove(old)

    def copied(self, source: str | Path, copy: str | Path) -> None:
        """Gradio made `copy` of `source` to serve it: the copy of a kept file is its visitor's."""
        with self._lock:
            kept = self._kept.get(str(source)) or self._kept.get(str(Path(source).resolve()))
        if kept is not None:  # a file of the studio's own (others: Gradio's, not a visitor's doing)
            self.keep(copy, kept.visitor)

    def _over(self, visitor: str | None, newest: str) -> list[str]:
        """Drop the oldest entries past the caps (never `newest`) -> their paths: first the visitor's own
        past theirs, then anyone's past the total. Holds the lock."""
        if self._bytes(None) <= self.total and (visitor is None or self._bytes(visitor) <= self.per_visitor):
            return []
        self._forget_missing()
        doomed = []
        passes = ([(visitor, self.per_visitor)] if visitor is not None else []) + [(None, self.total)]
        for who, cap in passes:
            held = self._bytes(who)
            for path, kept in list(self._kept.items()):
                if held <= cap or path == newest:
                    break
                if who is None or kept.visitor == who:
                    del self._kept[path]
                    doomed.append(path)
                    held -= kept.size
        return doomed

    def _bytes(self, visitor: str | None) -> int:
        return sum(k.size for k in self._kept.values() if visitor in (None, k.visitor))

    def _forget_missing(self) -> None:
        """Forget files removed by others (a page's old results, Gradio's cache sweep)."""
        for path in [p for p in self._kept if not Path(p).exists()]:
            del self._kept[path]


def _remove(path: str) -> None:
    file = Path(path)
    file.unlink(missing_ok=True)
    try:
        file.parent.rmdir()  # Gradio keeps each copy in a folder of its own, a page each run's results
    except OSError:
        pass
