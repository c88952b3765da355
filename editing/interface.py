"""What an editor offers its callers: the one interface the local `Editor` and the Ray Serve
`RemoteEditor` both implement, and that the studio is written against."""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from .compose import EditResult
from .edit_job import EditJob
from .limits import Limits
from .options import EditOptions
from .request import EditRequest


@dataclass(frozen=True)
class ModelInfo:
    """What is loaded: name, picture size in px, its family, the class names (empty for a model conditioned
    on text), the request fields its family adds (class_id; prompt, negative_prompt) and the non-shared
    options it uses, where it runs, its compute precision and parameters in all."""

    name: str
    image_size: int
    family: str
    class_names: list[str]
    fields: list[str]
    options: list[str]
    device: str
    dtype: str
    parameters: int


@runtime_checkable
class EditorProtocol(Protocol):
    """An editor: a model ready to run edit requests, here or on workers."""

    name: str
    defaults: EditOptions  # the model's default options
    limits: Limits  # what one request may ask for

    @property
    def info(self) -> ModelInfo: ...

    @property
    def resolution(self) -> int:
        """The model's picture size in px."""
        ...

    @property
    def num_scales(self) -> int: ...

    @property
    def modes(self) -> list[str]:
        """The edit modes the model runs."""
        ...

    def run(self, requests: Sequence[EditRequest]) -> list[EditResult]:
        """Requests -> one result each, in order (raises the first EditError)."""
        ...

    def submit(
        self,
        requests: Sequence[EditRequest],
        previews: bool = False,
        time_limit: float | None = None,
        visitor: Hashable | None = None,
    ) -> EditJob:
        """Start the requests in the background; follow, stop and collect them through the job (visitor:
        who asks; visitors take turns on the device)."""
        ...

    def preview_cells(self, request: EditRequest) -> EditResult:
        """What an edit would redraw (mask, cells, region; no images), without running it."""
        ...
