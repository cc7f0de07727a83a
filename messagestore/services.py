"""The one send path of both chats (workspace chat and MessagePal):
idempotency, then the app's own checks, then the sender's rate limit, then
the append, and the app's broadcasts in the same transaction (so they leave
after it commits: realtime.events.broadcast_on_commit)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from django.db import transaction

from messagestore import NewMessage, StoredMessage, StoreError, get_store
from realtime import ratelimit
from wire.errors import RateLimited, StoreUnavailable
from wire.metrics import MESSAGES_ACCEPTED


@dataclass(frozen=True)
class Sent:
    message: StoredMessage
    # False: the clientId was stored already; nothing new was stored or broadcast.
    created: bool


def rate_limit_key(user_id: int) -> str:
    """One bucket per user for every message they send, in either chat."""
    return f"user:{user_id}"


def message_append(
    *,
    new: NewMessage,
    on_created: Callable[[StoredMessage], None],
    check: Callable[[], None] | None = None,
    rate_limited: bool = True,
) -> Sent:
    """Store `new` once. A clientId already stored for this author and stream
    answers with the stored message and does nothing else. Otherwise `check`
    (the app's permission and validity rules, which raise), the rate limit
    (CHAT_RATE_LIMIT_MESSAGES per CHAT_RATE_LIMIT_WINDOW; off for the
    assistant's answers), the append, and `on_created` with the stored
    message inside the append's transaction: broadcasts registered there
    leave once it commits."""
    store = get_store()
    try:
        if new.client_id:
            existing = store.find_by_client_id(new.stream, new.author_id, new.client_id)
            if existing is not None:
                return Sent(existing, False)
        if check is not None:
            check()
        if rate_limited:
            decision = ratelimit.take(rate_limit_key(new.author_id))
            if not decision.allowed:
                raise RateLimited("Too many messages; slow down.", decision.retry_after)
        with transaction.atomic():
            stored, created = store.append(new)
            if created:
                MESSAGES_ACCEPTED.inc()
                on_created(stored)
    except StoreError as exc:
        raise StoreUnavailable("The message could not be stored; it was not sent.") from exc
    return Sent(stored, created)
