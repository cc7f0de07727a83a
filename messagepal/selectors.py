"""Reads of MessagePal and its access check `access_conversation`."""

from __future__ import annotations

import bisect
from datetime import datetime
from typing import Any

from django.db.models import Q

from accounts.models import User
from accounts.selectors import user_object
from messagepal import protocol, schema
from messagepal.models import Conversation, ReadMark
from messagestore import StoredMessage, get_store
from wire.errors import NotFound


class ConversationInaccessible(NotFound):
    """404 over HTTP, `forbidden` over the WebSocket, whether or not it exists."""

    code = "forbidden"


def access_conversation(user: User, conversation_id: str) -> tuple[int, int]:
    """The (low, high) participants; raises unless the caller is one of them."""
    pair = protocol.parse_conversation_id(conversation_id)
    if pair is None or user.id not in pair:
        raise ConversationInaccessible("Conversation not found.")
    return pair


def access_message(user: User, conversation_id: str, message_number: int) -> StoredMessage:
    """A visible message of one of the caller's conversations. A message
    that does not exist, was deleted, or lies in someone else's conversation
    is `not_found` alike (PROTOCOL.md part 2: before any permission check)."""
    pair = protocol.parse_conversation_id(conversation_id)
    message = get_store().get(conversation_id, message_number) if pair is not None and user.id in pair else None
    if message is None:
        raise NotFound("Message not found.")
    return message


def message_objects(messages: list[StoredMessage]) -> list[schema.PalMessageObject]:
    """Message objects with usernames and readAt: two reads for a page."""
    if not messages:
        return []
    stream = messages[0].stream
    low, high = protocol.parse_conversation_id(stream)  # type: ignore[misc]
    usernames = dict(User.objects.filter(id__in=(low, high)).values_list("id", "username"))
    marks: dict[int, list[tuple[int, Any]]] = {low: [], high: []}
    for reader_id, message_id, read_at in (
        ReadMark.objects.filter(conversation_id=stream, message_id__gte=min(m.id for m in messages))
        .order_by("message_id")
        .values_list("reader_id", "message_id", "read_at")
    ):
        marks[reader_id].append((message_id, read_at))
    result = []
    for m in messages:
        recipient = high if m.author_id == low else low
        reader_marks = marks[recipient]
        i = bisect.bisect_left(reader_marks, m.id, key=lambda mark: mark[0])
        first_read: datetime | None = reader_marks[i][1] if i < len(reader_marks) else None
        result.append(
            schema.message_object(m, sender_username=usernames.get(m.author_id, "deleted"), recipient_id=recipient, read_at=first_read)
        )
    return result


def conversation_history(*, user: User, conversation_id: str, before: int | None, limit: int) -> tuple[list[schema.PalMessageObject], bool]:
    access_conversation(user, conversation_id)
    limit = max(1, min(limit, protocol.MAX_PAGE))
    messages, has_more = get_store().page(conversation_id, before=before, limit=limit)
    return message_objects(messages), has_more


# The conversation list shows the newest this many (PROTOCOL.md: every list is capped).
MAX_CONVERSATIONS = 100


def conversation_list(*, user: User) -> list[schema.ConversationListItem]:
    """The caller's conversations with a message, newest first (at most
    MAX_CONVERSATIONS), in a fixed number of queries whatever their number."""
    store = get_store()
    conversations = list(
        Conversation.objects.filter(Q(user_low=user) | Q(user_high=user), last_message_id__isnull=False)
        .select_related("user_low", "user_high")
        .order_by("-last_message_at", "-id")[:MAX_CONVERSATIONS]
    )
    streams = [c.id for c in conversations]
    latest = store.latest(streams)
    pointers = store.read_pointers_of(user.id, streams)
    unread = store.counts_after({s: pointers[s].message_id if s in pointers else None for s in streams}, exclude_author=user.id)
    first_reads = _first_reads(conversations, latest)
    result = []
    for conversation in conversations:
        other = conversation.user_high if conversation.user_low_id == user.id else conversation.user_low
        last = latest.get(conversation.id)
        last_object = None
        if last is not None:
            sender = conversation.user_low if last.author_id == conversation.user_low_id else conversation.user_high
            recipient = conversation.other(last.author_id)
            last_object = schema.message_object(last, sender_username=sender.username, recipient_id=recipient, read_at=first_reads.get(conversation.id))
        result.append(schema.ConversationListItem(conversationId=conversation.id, otherUser=user_object(other), lastMessage=last_object, unreadCount=unread.get(conversation.id, 0)))
    return result


def _first_reads(conversations: list[Conversation], latest: dict[str, StoredMessage]) -> dict[str, datetime]:
    """When each conversation's last message was first read by its recipient: one query."""
    wanted = Q()
    for conversation in conversations:
        last = latest.get(conversation.id)
        if last is not None:
            wanted |= Q(conversation_id=conversation.id, reader_id=conversation.other(last.author_id), message_id__gte=last.id)
    if not wanted:
        return {}
    first: dict[str, datetime] = {}
    for conversation_id, read_at in ReadMark.objects.filter(wanted).order_by("message_id").values_list("conversation_id", "read_at"):
        first.setdefault(conversation_id, read_at)
    return first
