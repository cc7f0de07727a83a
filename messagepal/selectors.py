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


def conversation_list(*, user: User) -> list[schema.ConversationListItem]:
    """The caller's conversations with a message, newest first."""
    store = get_store()
    conversations = (
        Conversation.objects.filter(Q(user_low=user) | Q(user_high=user), last_message_id__isnull=False)
        .select_related("user_low", "user_high")
        .order_by("-last_message_at", "-id")
    )
    result = []
    for conversation in conversations:
        other = conversation.user_high if conversation.user_low_id == user.id else conversation.user_low
        last = store.get(conversation.id, conversation.last_message_id) if conversation.last_message_id is not None else None
        if last is None:  # hidden or deleted by a moderator
            page, _ = store.page(conversation.id, limit=1)
            last = page[0] if page else None
        pointer = store.read_pointers(conversation.id).get(user.id)
        unread = store.count_after(conversation.id, pointer.message_id if pointer else None, exclude_author=user.id)
        result.append(
            schema.ConversationListItem(
                conversationId=conversation.id,
                otherUser=user_object(other),
                lastMessage=message_objects([last])[0] if last else None,
                unreadCount=unread,
            )
        )
    return result
