"""What visitors upload (Gradio's `POST /gradio_api/upload`): a cap on what the studio holds in all
and per visitor, refused in one sentence naming the flag; each upload removed as soon as the handler
that was sent it has read it, and an upload nothing used within UNUSED_SECONDS removed then.

`Uploads.middleware()` goes into the app Gradio builds (launch(app_kwargs={"middleware": [...]})):
it admits or refuses an upload by its Content-Length before Gradio reads a byte, and records the
files Gradio answers with. A visitor is a client address. Only files recorded here are ever removed.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import json
import logging
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from starlette.middleware import Middleware

from .bounds import Message, Receive, Scope, Send, answer

log = logging.getLogger("var-edit-studio")
MB = 1024 * 1024
FILE_MB = 50.0  # largest one upload (--max-upload-mb)
TOTAL_MB = 1024.0  # most uploads held at once in all (--max-uploads-mb): a laptop's disk does not notice
VISITOR_MB = 256.0  # most uploads one visitor holds at once (--max-uploads-per-visitor-mb)
UNUSED_SECONDS = 600  # an upload no handler was sent within this long is removed
UPLOAD_ROUTE = "/gradio_api/upload"
LOOPBACK = ("127.0.0.1", "::1")
DISK_FULL = "The server's disk is full, so the upload could not be kept; try again later."
MCP_RELAY = "mcp-relay"  # the visitor of Gradio's MCP server uploading what an MCP client sent



@dataclass
class _Held:
    visitor: str
    size: int
    since: float


class Uploads:
    """The uploads the studio holds. total_mb / visitor_mb: most held at once in all / per visitor
    (--max-uploads-mb, --max-uploads-per-visitor-mb); file_mb: largest one file (--max-upload-mb);
    folder: Gradio's cache, where an upload cut short by a full disk leaves its temporary file."""

    def __init__(
        self,
        total_mb: float = TOTAL_MB,
        visitor_mb: float = VISITOR_MB,
        file_mb: float = FILE_MB,
        unused_seconds: float = UNUSED_SECONDS,
        folder: Path | None = None,
    ) -> None:
        self.folder = folder  # where Gradio writes uploads as they come (its cache): partial ones removed from it
        self.total, self.per_visitor = int(total_mb * MB), int(visitor_mb * MB)
        self.total_mb, self.visitor_mb, self.file_mb = total_mb, visitor_mb, file_mb
        self.unused_seconds = unused_seconds
        self._held: dict[str, list[_Held]] = {}  # path -> who uploaded it (the same file may come twice)
        self._reserved: dict[str, int] = {}  # visitor -> bytes of uploads under way
        self._lock = threading.Lock()

    def held(self, visitor: str | None = None) -> int:
        """Bytes held (by `visitor`, or in all), uploads under way included."""
        with self._lock:
            return self._held_bytes(visitor)

    def _held_bytes(self, visitor: str | None) -> int:
        files = sum(h.size for hs in self._held.values() for h in hs if visitor in (None, h.visitor))
        under_way = sum(n for v, n in self._reserved.items() if visitor in (None, v))
        return files + under_way

    def admit(self, visitor: str, length: int, per_visitor: bool = True) -> str | None:
        """Reserve `length` bytes for an upload, or the sentence that refuses it (per_visitor=False: only the
        cap in all applies, for bytes already counted to the visitor who sent them)."""
        self.sweep()
        with self._lock:
            if self._held_bytes(None) + length > self.total:
                return (
                    f"The studio already holds its {self.total_mb:g} MB of uploads (--max-uploads-mb); "
                    "try again in a few minutes, when older uploads have been removed."
                )
            if per_visitor and self._held_bytes(visitor) + length > self.per_visitor:
                return (
                    f"You already have the {self.visitor_mb:g} MB of uploads one visitor may hold "
                    "(--max-uploads-per-visitor-mb); run your edits, or wait a few minutes until they are removed."
                )
            self._reserved[visitor] = self._reserved.get(visitor, 0) + length
            return None

    def settle(self, visitor: str, length: int, paths: list[str]) -> None:
        """The upload of `length` bytes ended with `paths` (none: it failed)."""
        now = time.monotonic()
        with self._lock:
            left = self._reserved.pop(visitor, 0) - length
            if left > 0:
                self._reserved[visitor] = left
            for path in paths:
                self._held.setdefault(path, []).append(_Held(visitor, length // max(1, len(paths)), now))

    def release(self, *paths: Any) -> None:
        """A handler has read these uploads: remove them (those this ledger does not hold are left alone)."""
        for path in paths:
            if isinstance(path, str | Path):
                self._drop(str(path), lambda held: held[:-1])
        self.sweep()

    def releasing(self, handler: Callable[..., Any]) -> Callable[..., Any]:
        """`handler`, removing the uploads it was sent once it returns (or fails)."""

        @functools.wraps(handler)
        def run(*args: Any) -> Any:
            try:
                return handler(*args)
            finally:
                self.release(*args)

        return run

    def sweep(self) -> None:
        """Remove the uploads no handler was sent within `unused_seconds`."""
        old = time.monotonic() - self.unused_seconds
        with self._lock:
            stale = [p for p, hs in self._held.items() if any(h.since < old for h in hs)]
        for path in stale:
            self._drop(path, lambda held: [h for h in held if h.since >= old])

    def _drop(self, path: str, keep: Callable[[list[_Held]], list[_Held]]) -> None:
        with self._lock:
            if path not in self._held:
                return
            left = keep(self._held[path])
            if left:
                self._held[path] = left
                return
            del self._held[path]
        file = Path(path)
        file.unlink(missing_ok=True)
        try:
            file.parent.rmdir()  # Gradio puts each upload in a folder of its own
        except OSError:
            pass

    def remove_partial(self, since: float) -> None:
        """Remove the temporary files of uploads begun since `since` (a full disk cut them short; Gradio
        leaves them, named tmp…, where it writes uploads as they come)."""
        if self.folder is None or not self.folder.is_dir():
            return
        for file in self.folder.glob("tmp*"):
            with contextlib.suppress(OSError):
                if file.is_file() and file.stat().st_mtime >= since - 1:
                    file.unlink()

    def middleware(self) -> Middleware:
        """The ASGI middleware that applies this ledger to Gradio's upload route."""
        return Middleware(UploadGuard, uploads=self)


class UploadGuard:
    """ASGI middleware: Gradio's upload route, capped by `Uploads`, its size error naming the flag."""

    def __init__(self, app: Callable[[Scope, Receive, Send], Awaitable[None]], uploads: Uploads) -> None:
        self.app, self.uploads = app, uploads

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or not scope["path"].endswith(UPLOAD_ROUTE):
            await self.app(scope, receive, send)
            return
        visitor = (scope.get("client") or ("unknown",))[0]
        headers = dict(scope["headers"])
        # Gradio's MCP server hands an MCP client's pictures to the endpoint by uploading them again from
        # this machine; mcp_tools has counted them to that client already.
        relayed = visitor in LOOPBACK and headers.get(b"x-gradio-user") == b"mcp"
        visitor = MCP_RELAY if relayed else visitor
        try:
            length = int(headers.get(b"content-length", b""))
        except ValueError:
            await answer(send, 411, "Send the upload with its length (a Content-Length header).")
            return
        refusal = self.uploads.admit(visitor, length, per_visitor=not relayed)
        if refusal is not None:
            log.info("refused: %s", refusal)
            await answer(send, 413, refusal)
            return
        start: Message = {}
        body = bytearray()
        since = time.time()

        async def capture(message: Message) -> None:
            if message["type"] == "http.response.start":
                start.update(message)
            elif message["type"] == "http.response.body":
                body.extend(message.get("body", b""))

        paths: list[str] = []
        try:
            await self.app(scope, receive, capture)
            if start.get("status") == 200:
                paths = [p for p in json.loads(bytes(body)) if isinstance(p, str)]
        except OSError as e:
            if e.errno not in (errno.ENOSPC, errno.EDQUOT):
                raise
            self.uploads.remove_partial(since)
            log.info("refused: %s", DISK_FULL)
            await answer(send, 507, DISK_FULL)
            return
        finally:
            self.uploads.settle(visitor, length, paths)
        if start.get("status") == 413:  # Gradio's own "File size exceeded maximum allowed size of N bytes."
            await answer(
                send,
                413,
                f"The file is larger than the {self.uploads.file_mb:g} MB this studio accepts per upload "
                "(--max-upload-mb); send a smaller one.",
            )
            return
        await send(start)
        await send({"type": "http.response.body", "body": bytes(body)})

