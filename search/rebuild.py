"""Rebuild the search index from the message store (`manage.py
search_rebuild`): for an existing deployment, after a restore, or to repair
what a failed write left. Idempotent: every visible message of every channel
and conversation is upserted, in pages, and entries the store no longer shows
are removed."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from django.db import transaction

from messagepal.models import Conversation
from messagestore import get_store
from messagestore.base import MAX_PAGE
from search import index
from search.models import SearchEntry
from workspace_chat.models import Channel

DELETE_CHUNK = 1000


def streams() -> Iterator[str]:
    """Every channel's and conversation's stream."""
    for channel_id in Channel.objects.order_by("pk").values_list("pk", flat=True).iterator():
        yield f"ch:{channel_id}"
    yield from Conversation.objects.order_by("pk").values_list("pk", flat=True).iterator()


def rebuild_stream(stream: str, *, batch: int = MAX_PAGE) -> int:
    """Index the stream's visible messages, newest first, `batch` at a time,
    and drop entries of messages it no longer shows; how many it holds."""
    store = get_store()
    seen: set[int] = set()
    before: int | None = None
    while True:
        page, has_more = store.page(stream, before=before, limit=batch)
        if not page:
            break
        with transaction.atomic():
            index.upsert(page)
        seen.update(m.id for m in page)
        before = page[0].id
        if not has_more:
            break
    stale = sorted(set(SearchEntry.objects.filter(stream=stream).values_list("message_id", flat=True)) - seen)
    for start in range(0, len(stale), DELETE_CHUNK):
        index.remove(stream, stale[start : start + DELETE_CHUNK])
    return len(seen)


def drop_orphans() -> int:
    """Entries of channels or conversations that no longer exist."""
    gone, _ = SearchEntry.objects.filter(channel_id__isnull=False).exclude(channel_id__in=Channel.objects.values("pk")).delete()
    pal, _ = SearchEntry.objects.filter(conversation_id__isnull=False).exclude(conversation_id__in=Conversation.objects.values("pk")).delete()
    return gone + pal


def rebuild(*, batch: int = MAX_PAGE, progress: Callable[[str, int], None] | None = None) -> tuple[int, int]:
    """(streams, messages) indexed."""
    count = messages = 0
    for stream in streams():
        held = rebuild_stream(stream, batch=batch)
        count += 1
        messages += held
        if progress is not None:
            progress(stream, held)
    drop_orphans()
    return count, messages
