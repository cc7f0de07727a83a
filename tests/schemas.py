"""The exact field sets of every outbound event of PROTOCOL.md. Tests check
each emitted payload against these (Zulip's check_* pattern)."""

from __future__ import annotations

from typing import Any

MESSAGE_FIELDS = {
    "id", "channelId", "authorId", "authorUsername", "authorDisplayName", "content", "messageType",
    "fileUrl", "replyTo", "mentions", "createdAt", "editedAt", "isPinned", "isAI", "clientId", "grade", "readBy",
}
OPTIONAL_MESSAGE_FIELDS = {"streaming"}

CHAT_EVENTS: dict[str, set[str]] = {
    "connected": {"userId", "username", "displayName"},
    "joined_channel": {"channelId", "missed", "hasMore"},
    "left_channel": {"channelId"},
    "new_message": {"channelId", "message"},
    "user_typing": {"channelId", "userId", "username", "displayName"},
    "user_stop_typing": {"channelId", "userId", "username", "displayName"},
    "message_read": {"channelId", "messageId", "userId"},
    "user_presence": {"channelId", "userId", "username", "status"},
    "message_pinned": {"channelId", "messageId", "pinnedBy"},
    "message_updated": {"channelId", "message"},
    "message_deleted": {"channelId", "messageId"},
    "pong": set(),
    "error": {"code", "message"},
}
OPTIONAL = {"requestId", "retryAfter"}
ERROR_CODES = {"unauthorized", "bad_request", "not_found", "forbidden", "not_joined", "rate_limited", "server_error"}


def _is_id(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 < value < 2**53


def check_message(message: dict[str, Any]) -> None:
    keys = set(message)
    assert MESSAGE_FIELDS <= keys, f"message lacks {MESSAGE_FIELDS - keys}"
    assert keys <= MESSAGE_FIELDS | OPTIONAL_MESSAGE_FIELDS, f"message has extra {keys - MESSAGE_FIELDS - OPTIONAL_MESSAGE_FIELDS}"
    assert _is_id(message["id"]) and _is_id(message["channelId"]) and _is_id(message["authorId"])
    assert isinstance(message["content"], str)
    assert message["messageType"] in {"text", "file", "image", "announcement", "assignment"}
    assert isinstance(message["createdAt"], str) and message["createdAt"].endswith("Z")
    assert isinstance(message["mentions"], list) and all(_is_id(u) for u in message["mentions"])
    assert isinstance(message["readBy"], list) and all(_is_id(u) for u in message["readBy"])
    assert isinstance(message["isPinned"], bool) and isinstance(message["isAI"], bool)


def check_chat_event(event: dict[str, Any]) -> None:
    kind = event.get("type")
    assert kind in CHAT_EVENTS, f"unknown event type {kind!r}"
    keys = set(event) - {"type"}
    required = CHAT_EVENTS[kind]
    assert required <= keys, f"{kind} lacks {required - keys}"
    assert keys <= required | OPTIONAL, f"{kind} has extra {keys - required - OPTIONAL}"
    if "channelId" in event:
        assert _is_id(event["channelId"])
    if kind == "error":
        assert event["code"] in ERROR_CODES
        assert isinstance(event["message"], str) and event["message"]
        if "retryAfter" in event:
            assert event["code"] == "rate_limited" and event["retryAfter"] > 0
    if kind in ("new_message", "message_updated"):
        check_message(event["message"])
    if kind == "joined_channel":
        for message in event["missed"]:
            check_message(message)
        assert isinstance(event["hasMore"], bool)
    if kind == "user_presence":
        assert event["status"] in ("online", "offline")
    if kind == "message_pinned":
        assert set(event["pinnedBy"]) == {"userId", "username"}
