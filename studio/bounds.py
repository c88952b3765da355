"""What a visitor's request can make the studio read and write, bounded: request bodies (uploads aside,
which `uploads` caps) are refused over their limit before they are read, and no log line is longer
than LOG_LINE_CHARS.

Bodies: the page sends its canvas (the picture and its mask as PNG data URLs) through the queue, and an
MCP client its pictures as data URLs, so those routes take about two of the largest upload
(--max-upload-mb) as base64; every other route takes only JSON values, at most SMALL_BODY_MB.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from starlette.middleware import Middleware

MB = 1024 * 1024
SMALL_BODY_MB = 1.0  # /gradio_api/call, /run and the rest: JSON values and references to uploads
PICTURE_ROUTES = ("/gradio_api/queue/join", "/gradio_api/mcp")  # data URLs of pictures
LOG_LINE_CHARS = 2000

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


def picture_body_mb(upload_mb: float) -> float:
    """The largest body of a route that carries pictures as data URLs: two uploads as base64, and room."""
    return 2 * upload_mb * 4 / 3 + SMALL_BODY_MB


class BodyTooLarge(Exception):
    """The body went past its limit while it was read (it came without a length)."""


class BodyLimit:
    """ASGI middleware: a request whose body is over its route's limit gets 413 and one sentence, unread
    when it says its length (Content-Length), cut off where it passes the limit when it does not."""

    def __init__(self, app: Callable[[Scope, Receive, Send], Awaitable[None]], upload_mb: float, skip: str) -> None:
        self.app, self.upload_mb, self.skip = app, upload_mb, skip

    def limit_mb(self, path: str) -> float:
        return picture_body_mb(self.upload_mb) if any(r in path for r in PICTURE_ROUTES) else SMALL_BODY_MB

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].endswith(self.skip):
            await self.app(scope, receive, send)
            return
        limit_mb = self.limit_mb(scope["path"])
        limit = int(limit_mb * MB)
        sentence = (
            f"The request is larger than the {limit_mb:.4g} MB this studio reads on this route; "
            "send pictures as uploads (gradio_client: handle_file) and values as short JSON."
        )
        length = dict(scope["headers"]).get(b"content-length", b"")
        if length.isdigit() and int(length) > limit:
            await answer(send, 413, sentence)
            return
        seen = 0
        started = False

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > limit:
                raise BodyTooLarge
            return message

        async def watched(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted, watched)
        except BodyTooLarge:
            if not started:
                await answer(send, 413, sentence)


def body_limit(upload_mb: float, skip: str) -> Middleware:
    """The middleware for Gradio's app; `skip`: the upload route (capped by `uploads`)."""
    return Middleware(BodyLimit, upload_mb=upload_mb, skip=skip)


async def answer(send: Send, status: int, sentence: str) -> None:
    """A plain-text answer of one sentence."""
    body = sentence.encode()
    headers = [(b"content-type", b"text/plain; charset=utf-8"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def cap_log_lines() -> None:
    """Every log record, of any logger (Gradio's, uvicorn's, the studio's), cut to LOG_LINE_CHARS characters,
    saying how long it was (a record factory: loggers configured later are covered too)."""
    make = logging.getLogRecordFactory()
    if getattr(make, "caps_lines", False):
        return

    def capped(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = make(*args, **kwargs)
        text = record.getMessage()
        if len(text) > LOG_LINE_CHARS:
            record.msg, record.args = f"{text[:LOG_LINE_CHARS]}… ({len(text)} characters)", None
        return record

    capped.caps_lines = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(capped)
