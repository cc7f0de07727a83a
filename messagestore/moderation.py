"""Moderation entry point for messages of any stream: each app registers the
service that hides/deletes its messages and tells its clients."""

from __future__ import annotations

from collections.abc import Callable

Handler = Callable[[str, int, str], bool]
_handlers: dict[str, Handler] = {}


def register(prefix: str, handler: Handler) -> None:
    _handlers[prefix] = handler


def message_moderate(*, stream: str, message_id: int, action: str) -> bool:
    if action not in ("hide", "delete"):
        raise ValueError(action)
    for prefix, handler in _handlers.items():
        if stream.startswith(prefix):
            return handler(stream, message_id, action)
    raise LookupError(f"no moderation handler for stream {stream!r}")
