"""Writes to the search index: what the store's write path tells
(messagestore.listeners) becomes an upsert or a removal of the message's
entry, either in the writer's transaction (a savepoint: an index failure is
logged, never the send's) or, on PostgreSQL, after it commits by the indexer
thread (search.worker; see `mode`). `manage.py search_rebuild` uses the same
upsert.

The index holds visible messages only: a hidden or deleted message's entry
is removed, and put back when a moderator shows it again."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from typing import Any

from django.conf import settings
from django.db import DatabaseError, connection, transaction

from messagestore import StoredMessage
from messagestore.listeners import Write
from messagestore.streams import CHANNEL_PREFIX, CONVERSATION_PREFIX
from search import terms
from search.models import SearchEntry

logger = logging.getLogger(__name__)
TABLE = SearchEntry._meta.db_table
COLUMNS = ("stream", "message_id", "channel_id", "conversation_id", "author_id", "created_at", "text")


def enabled() -> bool:
    """CHAT_SEARCH_INDEX=False turns the write path's indexing off (the
    bench compares the send path with and without it)."""
    return bool(getattr(settings, "CHAT_SEARCH_INDEX", True))


def mode() -> str:
    """`sync`: in the writer's transaction; `async`: after it commits, by the
    indexer thread (search.worker). CHAT_SEARCH_INDEX_MODE picks; by default
    async on PostgreSQL (a send would wait about 1 ms for it), sync on
    SQLite (cheap there, and one writer at a time suits SQLite)."""
    chosen = getattr(settings, "CHAT_SEARCH_INDEX_MODE", "") or ("async" if connection.vendor == "postgresql" else "sync")
    return "async" if chosen == "async" else "sync"


def owner_of(stream: str) -> tuple[int | None, str | None] | None:
    """(channel id, conversation id) of a stream, or None for a stream that
    is neither a channel's nor a conversation's (nothing to index)."""
    if stream.startswith(CHANNEL_PREFIX):
        number = stream[len(CHANNEL_PREFIX) :]
        return (int(number), None) if number.isascii() and number.isdigit() else None
    if stream.startswith(CONVERSATION_PREFIX):
        return None, stream
    return None


def _row(message: StoredMessage) -> tuple[Any, ...] | None:
    owner = owner_of(message.stream)
    if owner is None:
        return None
    # NUL cannot be stored in a PostgreSQL text (content never holds one;
    # a store written by other means might).
    text = message.content.replace("\x00", " ")
    created_at = connection.ops.adapt_datetimefield_value(message.created_at)
    return (message.stream, message.id, owner[0], owner[1], message.author_id, created_at, text)


def _upsert_sql(rows: int) -> str:
    columns = ", ".join(COLUMNS)
    updates = ", ".join(f"{c} = excluded.{c}" for c in COLUMNS[2:])
    values = ", ".join(["%s"] * len(COLUMNS))
    if connection.vendor == "postgresql":
        one = f"({values}, to_tsvector('simple', unaccent(%s)))"
        return (
            f"INSERT INTO {TABLE} ({columns}, vector) VALUES {', '.join([one] * rows)}"
            f" ON CONFLICT (stream, message_id) DO UPDATE SET {updates}, vector = excluded.vector"
        )
    one = f"({values})"
    return f"INSERT INTO {TABLE} ({columns}) VALUES {', '.join([one] * rows)} ON CONFLICT (stream, message_id) DO UPDATE SET {updates}"


def upsert(messages: Sequence[StoredMessage]) -> int:
    """Index these messages (new ones added, known ones replaced); how many."""
    rows = [row for row in (_row(m) for m in messages) if row is not None]
    if not rows:
        return 0
    postgres = connection.vendor == "postgresql"
    params: list[Any] = []
    for row in rows:
        params.extend(row)
        if postgres:
            params.append(terms.index_text(str(row[-1])))
    with connection.cursor() as cursor:
        cursor.execute(_upsert_sql(len(rows)), params)
    return len(rows)


def remove(stream: str, message_ids: Iterable[int]) -> None:
    ids = [int(i) for i in message_ids]
    if ids:
        SearchEntry.objects.filter(stream=stream, message_id__in=ids).delete()


def index_write(write: Write) -> None:
    """The listener of every message write (registered in SearchConfig.ready)."""
    if not enabled():
        return
    if mode() == "async":
        from search.worker import indexer

        # Once the write's transaction commits (at once outside one): an
        # entry for a message that was rolled back is never made.
        transaction.on_commit(lambda: indexer.submit(write))
        return
    try:
        with transaction.atomic():
            if write.message is not None:
                upsert([write.message])
            else:
                remove(write.stream, [write.message_id])
    except DatabaseError:
        logger.exception("search index: %s of %s#%s not indexed (manage.py search_rebuild repairs it)", write.kind, write.stream, write.message_id)
