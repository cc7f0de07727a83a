"""Reads of MessagePal: who can reach whom (`reachable_users`, the one rule),
the access checks `access_conversation`, `access_message` and
`access_recipient`, history, the conversation list and the blocks list."""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db.models import Exists, OuterRef, Q, QuerySet

from accounts.models import User
from accounts.schema import UserObject
from accounts.selectors import user_object
from files.selectors import file_objects
from messagepal import protocol, schema
from messagepal.models import Block, Conversation, ReadMark
from messagestore import StoredMessage, get_store
from wire.errors import Invalid, NotFound
from workspace_chat.models import WorkspaceMembership


class ConversationInaccessible(NotFound):
    """404 over HTTP, `forbidden` over the WebSocket, whether or not it exists."""

    code = "forbidden"


# --- who can reach whom (PROTOCOL.md part 2, "Who can reach whom") -----------------


def reachable_users(user: User) -> QuerySet[User]:
    """The people `user` can reach through MessagePal, and find in the user
    search: those who share a workspace with them (CHAT_MESSAGEPAL_SCOPE
    `workspace`, the default) or everyone (`anyone`), never `user`. The one
    rule: every path (search, send, typing, history, subscribe, read marks,
    edits, deletes, the conversation list) asks it, so leaving a workspace
    ends reach everywhere at once. Whether they are active is each path's
    own question (a conversation with a deactivated classmate stays readable)."""
    others = User.objects.exclude(pk=user.pk)
    if settings.CHAT_MESSAGEPAL_SCOPE == "anyone":
        return others
    return others.filter(Exists(WorkspaceMembership.objects.filter(user=OuterRef("pk"), workspace__memberships__user=user)))


def can_reach(user: User, other_id: int) -> bool:
    """One query."""
    return reachable_users(user).filter(pk=other_id).exists()


def access_conversation(user: User, conversation_id: str) -> tuple[int, int]:
    """The (low, high) participants; raises unless the caller is one of them
    and can reach the other (one query)."""
    pair = protocol.parse_conversation_id(conversation_id)
    if pair is None or user.id not in pair or not can_reach(user, pair[1] if pair[0] == user.id else pair[0]):
        raise ConversationInaccessible("Conversation not found.")
    return pair


@dataclass(frozen=True)
class Recipient:
    """Someone the caller can reach, and the blocks between them."""

    id: int
    blocked_by_me: bool
    blocked_me: bool

    @property
    def blocked(self) -> bool:
        return self.blocked_by_me or self.blocked_me


def access_recipient(user: User, recipient_id: int) -> Recipient:
    """The person `user` would message or show typing to, in one query.
    Raises Invalid for oneself, NotFound for no such active person, and
    ConversationInaccessible (`forbidden`; 404 over HTTP) for someone
    `user` cannot reach. Blocks are the caller's to act on: a send is
    refused, typing is dropped."""
    if recipient_id == user.id:
        raise Invalid("recipientId", "You cannot message yourself.")
    row = (
        User.objects.filter(pk=recipient_id, is_active=True, is_ai=False)
        .annotate(
            reachable=Exists(reachable_users(user).filter(pk=OuterRef("pk"))),
            blocked_by_me=Exists(Block.objects.filter(blocker=user, blocked=OuterRef("pk"))),
            blocked_me=Exists(Block.objects.filter(blocker=OuterRef("pk"), blocked=user)),
        )
        .values_list("reachable", "blocked_by_me", "blocked_me")
        .first()
    )
    if row is None:
        raise NotFound("No such user.")
    reachable, blocked_by_me, blocked_me = row
    if not reachable:
        raise ConversationInaccessible("You can only message people who share a workspace with you.")
    return Recipient(recipient_id, blocked_by_me, blocked_me)


def blocks_between(user: User, other_id: int) -> Recipient:
    """The blocks between `user` and that person, either way (one query);
    reach is not checked here."""
    blockers = set(Block.objects.filter(Q(blocker=user, blocked_id=other_id) | Q(blocker_id=other_id, blocked=user)).values_list("blocker_id", flat=True))
    return Recipient(other_id, user.id in blockers, other_id in blockers)


def access_message(user: User, conversation_id: str, message_number: int) -> StoredMessage:
    """A visible message of one of the caller's conversations. A message
    that does not exist, was deleted, or lies in someone else's conversation
    is `not_found` alike (PROTOCOL.md part 2: before any permission check);
    one of a conversation with someone the caller can no longer reach is
    `forbidden` (ConversationInaccessible)."""
    pair = protocol.parse_conversation_id(conversation_id)
    message = get_store().get(conversation_id, message_number) if pair is not None and user.id in pair else None
    if message is None or pair is None:
        raise NotFound("Message not found.")
    if not can_reach(user, pair[1] if pair[0] == user.id else pair[0]):
        raise ConversationInaccessible("Conversation not found.")
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
    files = file_objects(m.file_url for m in messages)
    result = []
    for m in messages:
        recipient = high if m.author_id == low else low
        reader_marks = marks[recipient]
        i = bisect.bisect_left(reader_marks, m.id, key=lambda mark: mark[0])
        first_read: datetime | None = reader_marks[i][1] if i < len(reader_marks) else None
        result.append(
            schema.message_object(
                m,
                sender_username=usernames.get(m.author_id, "deleted"),
                recipient_id=recipient,
                read_at=first_read,
                file=files.get(m.file_url) if m.file_url else None,
            )
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
    """The caller's conversations with a message and with someone they can
    reach, newest first (at most MAX_CONVERSATIONS), in a fixed number of
    queries whatever their number."""
    store = get_store()
    reachable = reachable_users(user)
    conversations = list(
        Conversation.objects.filter(
            Q(user_low=user, user_high__in=reachable) | Q(user_high=user, user_low__in=reachable), last_message_id__isnull=False
        )
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


# --- blocks -------------------------------------------------------------------------

# The blocks list shows the newest this many (PROTOCOL.md: every list is capped).
MAX_BLOCKS = 500


def block_list(*, user: User) -> list[UserObject]:
    """The people the caller has blocked, newest block first (one query)."""
    blocks = Block.objects.filter(blocker=user).select_related("blocked").order_by("-created_at", "-id")[:MAX_BLOCKS]
    return [user_object(block.blocked) for block in blocks]
