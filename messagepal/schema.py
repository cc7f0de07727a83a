"""What MessagePal sends: its message object, every `/ws/messagepal/` event and
the HTTP objects (PROTOCOL.md, "MessagePal WebSocket", "MessagePal HTTP" and
part 2's "Message lifecycle"),
one TypedDict each, and their builders. Pure; wire.schema explains how these
are checked and documented."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal, TypedDict

from accounts.schema import UserObject
from files.schema import FileObject
from messagepal.protocol import message_id, parse_conversation_id, parse_message_id
from messagestore import StoredMessage
from wire.jsonutil import iso
from wire.protocol import SHARED_EVENTS
from wire.schema import Check, EventSchemas, Id, NonEmpty, Timestamp

ConversationId = Annotated[str, Check(lambda value: parse_conversation_id(value) is not None, "a conversation id conv_{a}_{b}, a < b")]
PalMessageId = Annotated[str, Check(lambda value: parse_message_id(value) is not None, "a MessagePal message id {conversationId}:{n}")]


class PalMessageObject(TypedDict):
    id: PalMessageId
    conversationId: ConversationId
    senderId: Id
    senderUsername: NonEmpty
    recipientId: Id
    content: NonEmpty
    createdAt: Timestamp
    editedAt: Timestamp | None
    readAt: Timestamp | None
    clientId: str | None
    # PROTOCOL.md "Files": `file` is null for a link or no file.
    fileUrl: str | None
    file: FileObject | None


class MessageReceivedEvent(TypedDict):
    type: Literal["message_received"]
    message: PalMessageObject


class PalUserTypingEvent(TypedDict):
    type: Literal["user_typing"]
    conversationId: ConversationId
    userId: Id
    username: NonEmpty


class PalMessageReadEvent(TypedDict):
    type: Literal["message_read"]
    conversationId: ConversationId
    messageId: PalMessageId
    readBy: Id
    readAt: Timestamp


class PalMessageUpdatedEvent(TypedDict):
    type: Literal["message_updated"]
    conversationId: ConversationId
    message: PalMessageObject


class PalMessageDeletedEvent(TypedDict):
    type: Literal["message_deleted"]
    conversationId: ConversationId
    messageId: PalMessageId


class HistoryResponseEvent(TypedDict):
    type: Literal["history_response"]
    conversationId: ConversationId
    messages: list[PalMessageObject]
    hasMore: bool


class SubscribedEvent(TypedDict):
    type: Literal["subscribed"]
    conversationId: ConversationId


class UnsubscribedEvent(TypedDict):
    type: Literal["unsubscribed"]
    conversationId: ConversationId


# What services broadcast to both people's connections.
PalBroadcast = MessageReceivedEvent | PalMessageReadEvent | PalMessageUpdatedEvent | PalMessageDeletedEvent

EVENTS = EventSchemas(
    (
        *SHARED_EVENTS,
        MessageReceivedEvent,
        PalUserTypingEvent,
        PalMessageReadEvent,
        PalMessageUpdatedEvent,
        PalMessageDeletedEvent,
        HistoryResponseEvent,
        SubscribedEvent,
        UnsubscribedEvent,
    )
)

# -- HTTP objects ----------------------------------------------------------------


class ConversationListItem(TypedDict):
    conversationId: ConversationId
    otherUser: UserObject
    lastMessage: PalMessageObject | None
    unreadCount: int


class PalMessagePage(TypedDict):
    results: list[PalMessageObject]
    hasMore: bool


# -- builders ----------------------------------------------------------------------


def message_object(
    msg: StoredMessage, *, sender_username: str, recipient_id: int, read_at: datetime | None, file: FileObject | None = None
) -> PalMessageObject:
    return PalMessageObject(
        id=message_id(msg.stream, msg.id),
        conversationId=msg.stream,
        senderId=msg.author_id,
        senderUsername=sender_username,
        recipientId=recipient_id,
        content=msg.content,
        createdAt=iso(msg.created_at),
        editedAt=iso(msg.edited_at),
        readAt=iso(read_at),
        clientId=msg.client_id,
        fileUrl=msg.file_url,
        file=file,
    )


def message_received_event(message: PalMessageObject) -> MessageReceivedEvent:
    return MessageReceivedEvent(type="message_received", message=message)


def typing_event(conversation: str, user_id: int, username: str) -> PalUserTypingEvent:
    return PalUserTypingEvent(type="user_typing", conversationId=conversation, userId=user_id, username=username)


def message_read_event(conversation: str, message_id_: str, read_by: int, read_at: datetime) -> PalMessageReadEvent:
    return PalMessageReadEvent(type="message_read", conversationId=conversation, messageId=message_id_, readBy=read_by, readAt=iso(read_at))


def message_updated_event(message: PalMessageObject) -> PalMessageUpdatedEvent:
    return PalMessageUpdatedEvent(type="message_updated", conversationId=message["conversationId"], message=message)


def message_deleted_event(conversation: str, message_id_: str) -> PalMessageDeletedEvent:
    return PalMessageDeletedEvent(type="message_deleted", conversationId=conversation, messageId=message_id_)


def history_response_event(conversation: str, messages: list[PalMessageObject], has_more: bool) -> HistoryResponseEvent:
    return HistoryResponseEvent(type="history_response", conversationId=conversation, messages=messages, hasMore=has_more)


def subscribed_event(conversation: str) -> SubscribedEvent:
    return SubscribedEvent(type="subscribed", conversationId=conversation)


def unsubscribed_event(conversation: str) -> UnsubscribedEvent:
    return UnsubscribedEvent(type="unsubscribed", conversationId=conversation)
