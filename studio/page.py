"""`Page`: what the server keeps for one open browser page, made when the page loads."""

from __future__ import annotations

import secrets
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from editing import EditJob


@dataclass(eq=False)  # compared and hashed by identity: one page is one visitor
class Page:
    """model: the Session.model_serial this page's settings were made for; job: its running (or last)
    edit, for Stop; results: the folder of its last results (the only ones it still shows); visitor: the page's
    key in the device's turns (a key, not the page: the turns remember visitors without keeping pages alive)."""

    model: int = 0
    job: EditJob | None = None
    results: Path | None = None
    visitor: str = field(default_factory=lambda: secrets.token_hex(8))

    @property
    def busy(self) -> bool:
        return self.job is not None and not self.job.done

    def stop(self) -> None:
        """Ask the running edit to stop at its next scale."""
        if self.busy:
            self.job.cancel()

    def keep_only(self, results: Path | None) -> None:
        """Make `results` the page's results folder, removing the one before: the page no longer shows it."""
        if self.results is not None and self.results != results:
            shutil.rmtree(self.results, ignore_errors=True)
        self.results = results

    def close(self) -> None:
        """The page went away: stop its edit and remove its results."""
        self.stop()
        self.keep_only(None)


def page_closed(page: Page | None) -> None:
    """Gradio's callback when a page's state is deleted (the page closed or timed out)."""
    if isinstance(page, Page):
        page.close()


def stop(page: Page | None) -> None:
    """Stop this page's running edit at its next scale (the page has said "Stopping…" at once, itself:
    an answer from here could arrive after the run's last word and hide it)."""
    if isinstance(page, Page):
        page.stop()
