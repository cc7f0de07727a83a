"""Moderation entry point for messages of any stream: each app registers the
service that hides/deletes its messages and tells its clients."""

from __future__ import annotations

from collections.abc import Callable

# (stream, message id, action, the moderator's user id) -> done
Handler = Callable[[str, int, str, int | None], bool]
_handlers: dict[str, Handler] = {}


def register(prefix: str, handler: Handler) -> None:
    _handlers[prefix] = handler


def message_moderate(*, stream: str, message_id: int, action: str, actor_id: int | None = None) -> bool:
    """Hide, show again (`unhide`), or delete (soft: kept for moderators
    with who and when)."""
    if action not in ("hide", "unhide", "delete"):
        raise ValueError(action)
    for prefix, handler in _handlers.items():
        if stream.startswith(prefix):
            return handler(stream, message_id, action, actor_id)
    raise LookupError(f"no moderation handler for stream {stream!r}")
