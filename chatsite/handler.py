"""Django's ASGI handler, with two changes:

- A request body the server already holds in a temporary file is taken as
  that file (daphne adapter patch 7): Django's own `read_body` copies every
  body into a SpooledTemporaryFile on the event loop, which for an upload of
  10 MB holds every WebSocket of the process. Under any other ASGI server (no
  `chat.body_file` in the scope) it is Django's own.
- Uploads are handled CHAT_UPLOAD_CONCURRENCY at a time per process (default
  2); the others wait their turn on the event loop, without a thread. Django
  runs each request's view in a thread of its own, so twenty uploads at once
  were twenty threads taking turns with the event loop for the one GIL: the
  chat of every other user waited 0.3-0.4 s at p99, on a quiet machine, even
  for uploads of 200 kB (bench/upload_bench.py, docs/files.md). Two at a time
  keep it under 60 ms and store the twenty no slower. Only the view waits its
  turn: the body is already on disk, and the answer is sent after; an upload
  that goes on to wait for the image worker steps aside (files/turns.py).
"""

from __future__ import annotations

import contextvars
from typing import IO, Any

from django.conf import settings
from django.core.exceptions import RequestAborted
from django.core.handlers.asgi import ASGIHandler
from django.http import HttpRequest, HttpResponseBase

from chatsite.limits import UPLOAD_PATHS
from files.turns import Turns

# The body file of the request this task serves (a task per request).
_body_file: contextvars.ContextVar[IO[bytes] | None] = contextvars.ContextVar("chat_body_file", default=None)


class ChatASGIHandler(ASGIHandler):
    def __init__(self) -> None:
        super().__init__()
        self.upload_turns = Turns(settings.CHAT_UPLOAD_CONCURRENCY)

    async def handle(self, scope: Any, receive: Any, send: Any) -> None:
        _body_file.set(scope.get("chat.body_file"))
        await super().handle(scope, receive, send)

    async def run_get_response(self, request: HttpRequest) -> HttpResponseBase:
        if request.method == "POST" and request.path_info.startswith(UPLOAD_PATHS):
            turn = await self.upload_turns.take()
            try:
                return await super().run_get_response(request)
            finally:
                turn.end()
        return await super().run_get_response(request)

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
