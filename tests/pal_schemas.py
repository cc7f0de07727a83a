"""The exact field sets of every MessagePal outbound event and of the
MessagePal message object (PROTOCOL.md, "MessagePal WebSocket"). Tests check
each emitted payload against these, as tests/schemas.py does for workspace
chat."""

from __future__ import annotations

import re
from typing import Any

from tests.schemas import ERROR_CODES, OPTIONAL, _is_id

PAL_MESSAGE_FIELDS = {
    "id", "conversationId", "senderId", "senderUsername", "recipientId", "content", "createdAt", "readAt", "clientId",
}

PAL_EVENTS: dict[str, set[str]] = {
    "connected": {"userId", "username", "displayName"},
    "message_received": {"message"},
    "user_typing": {"conversationId", "userId", "username"},
    "message_read": {"conversationId", "messageId", "readBy", "readAt"},
    "history_response": {"conversationId", "messages", "hasMore"},
    "subscribed": {"conversationId"},
    "unsubscribed": {"conversationId"},
    "pong": set(),
    "error": {"code", "message"},
}

# Written independently of messagepal.protocol so a regression there shows here.
_CONVERSATION = re.compile(r"conv_([1-9][0-9]*)_([1-9][0-9]*)")
_MESSAGE = re.compile(r"(conv_[1-9][0-9]*_[1-9][0-9]*):([1-9][0-9]*)")


def participants(conversation_id: Any) -> tuple[int, int]:
    """The (low, high) user ids of a well-formed conversation id; fails otherwise."""
    assert isinstance(conversation_id, str), conversation_id
    match = _CONVERSATION.fullmatch(conversation_id)
    assert match, f"bad conversation id {conversation_id!r}"
    low, high = int(match.group(1)), int(match.group(2))
    assert low < high < 2**53, f"bad conversation id {conversation_id!r}"
    return low, high


def check_message_id(message_id: Any, conversation_id: str) -> None:
    assert isinstance(message_id, str), message_id
    match = _MESSAGE.fullmatch(message_id)
    assert match and match.group(1) == conversation_id, f"{message_id!r} is not a message id of {conversation_id}"
    assert int(match.group(2)) < 2**53


def _is_time(value: Any) -> bool:
    return isinstance(value, str) and value.endswith("Z") and "T" in value


def check_pal_message(message: dict[str, Any]) -> None:
    keys = set(message)
    assert keys == PAL_MESSAGE_FIELDS, f"message lacks {PAL_MESSAGE_FIELDS - keys}, has extra {keys - PAL_MESSAGE_FIELDS}"
    pair = participants(message["conversationId"])
    check_message_id(message["id"], message["conversationId"])
    assert _is_id(message["senderId"]) and _is_id(message["recipientId"])
    assert message["senderId"] != message["recipientId"]
    assert set(pair) == {message["senderId"], message["recipientId"]}
    assert isinstance(message["senderUsername"], str) and message["senderUsername"]
    assert isinstance(message["content"], str) and message["content"]
    assert _is_time(message["createdAt"])
    assert message["readAt"] is None or _is_time(message["readAt"])
    assert message["clientId"] is None or isinstance(message["clientId"], str)


def check_pal_event(event: dict[str, Any]) -> None:
    kind = event.get("type")
    assert kind in PAL_EVENTS, f"unknown event type {kind!r}"
    keys = set(event) - {"type"}
    required = PAL_EVENTS[kind]
    assert required <= keys, f"{kind} lacks {required - keys}"
    assert keys <= required | OPTIONAL, f"{kind} has extra {keys - required - OPTIONAL}"
    if "requestId" in event:
        assert isinstance(event["requestId"], str)
    if "retryAfter" in event:
        assert kind == "error" and event["code"] == "rate_limited"
        assert isinstance(event["retryAfter"], int) and event["retryAfter"] > 0
    if "conversationId" in event:
        pair = participants(event["conversationId"])
    if kind == "error":
        assert event["code"] in ERROR_CODES
        assert isinstance(event["message"], str) and event["message"]
    elif kind == "connected":
        assert _is_id(event["userId"]) and isinstance(event["username"], str) and isinstance(event["displayName"], str)
    elif kind == "message_received":
        check_pal_message(event["message"])
    elif kind == "user_typing":
        assert event["userId"] in pair and isinstance(event["username"], str) and event["username"]
    elif kind == "message_read":
        check_message_id(event["messageId"], event["conversationId"])
        assert event["readBy"] in pair and _is_id(event["readBy"])
        assert _is_time(event["readAt"])
    elif kind == "history_response":
        assert isinstance(event["hasMore"], bool) and isinstance(event["messages"], list)
        for message in event["messages"]:
            check_pal_message(message)
            assert message["conversationId"] == event["conversationId"]
