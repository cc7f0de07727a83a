"""Request body limits, enforced in front of Django (PROTOCOL.md, "Limits
that hold for everyone"): a body over CHAT_MAX_REQUEST_BYTES (uploads:
CHAT_MAX_UPLOAD_BYTES) is answered 413 before it is read, let alone parsed.

Django's ASGI handler reads a whole body into a temporary file before any
view or middleware runs, and DRF's parsers then read that stream without
DATA_UPLOAD_MAX_MEMORY_SIZE, so the limit sits in front of it, in the ASGI
application: a declared Content-Length over the limit is refused at once;
a body without one (chunked) is counted as it arrives and refused as soon
as it passes the limit. daphne (Twisted) reads the body before it calls the
application at all, so under it the daphne adapter (patch 6) applies the
same `body_limit` while the body arrives; this middleware is what holds
under any other ASGI server.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from django.conf import settings

from wire import jsonutil

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]
Application = Callable[..., Awaitable[None]]

UPLOAD_PATHS = ("/api/files/",)


def body_limit(path: str) -> int:
    return settings.CHAT_MAX_UPLOAD_BYTES if path.startswith(UPLOAD_PATHS) else settings.CHAT_MAX_REQUEST_BYTES


class BodyLimit:
    def __init__(self, app: Application) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("method") in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        limit = body_limit(scope.get("path", ""))
        declared = _content_length(scope)
        if declared is not None:
            if declared > limit:
                await _too_large(send, limit)
                return
            await self.app(scope, receive, send)
            return
        # No Content-Length: read it here, up to the limit, and hand it on.
        chunks: list[dict[str, Any]] = []
        size = 0
        while True:
            message = await receive()
            chunks.append(message)
            if message["type"] != "http.request":
                break
            size += len(message.get("body", b""))
            if size > limit:
                await _too_large(send, limit)
                return
            if not message.get("more_body", False):
                break

        async def replay() -> dict[str, Any]:
            return chunks.pop(0) if chunks else await receive()

        await self.app(scope, replay, send)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


def too_large_body(limit: int) -> bytes:
    return jsonutil.dumps({"detail": f"The request body is over the limit of {human_size(limit)}."}).encode()


def human_size(limit: int) -> str:
    """25 MiB, 1 MiB, 512 KiB, or bytes: as people read sizes."""
    for unit, factor in (("MiB", 1024 * 1024), ("KiB", 1024)):
        if limit >= factor and limit % (factor // 4 or 1) == 0:
            return f"{limit / factor:g} {unit}"
    return f"{limit} bytes"


async def _too_large(send: Send, limit: int) -> None:
    body = too_large_body(limit)
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
                (b"x-content-type-options", b"nosniff"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
