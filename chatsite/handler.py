"""Django's ASGI handler, taking a request body the server already holds in
a temporary file as that file (daphne adapter patch 7): Django's own
`read_body` copies every body into a SpooledTemporaryFile on the event loop,
which for an upload of 10 MB holds every WebSocket of the process. Under any
other ASGI server (no `chat.body_file` in the scope) it is Django's own."""

from __future__ import annotations

import contextvars
from typing import IO, Any

from django.core.exceptions import RequestAborted
from django.core.handlers.asgi import ASGIHandler

# The body file of the request this task serves (a task per request).
_body_file: contextvars.ContextVar[IO[bytes] | None] = contextvars.ContextVar("chat_body_file", default=None)


class ChatASGIHandler(ASGIHandler):
    async def handle(self, scope: Any, receive: Any, send: Any) -> None:
        _body_file.set(scope.get("chat.body_file"))
        await super().handle(scope, receive, send)

    async def read_body(self, receive: Any) -> Any:
        body = _body_file.get()
        if body is None:
            return await super().read_body(receive)
        while True:  # the server's empty end of the body, or the client gone
            message = await receive()
            if message["type"] == "http.disconnect":
                body.close()
                raise RequestAborted()
            if not message.get("more_body", False):
                break
        body.seek(0)
        return body
