"""Checks of every MessagePal payload: the schema the server builds them with
(messagepal.schema, checked by wire.schema), and the rules between fields that
a schema cannot state (who is in a conversation), with the id formats written
independently of messagepal.protocol so a regression there shows here."""

from __future__ import annotations

import re
from typing import Any

from messagepal import schema
from wire.schema import check, fields

PAL_MESSAGE_FIELDS = set(fields(schema.PalMessageObject)[0])
PAL_EVENTS: dict[str, set[str]] = {kind: set(fields(event)[0]) - {"type"} for kind, event in schema.EVENTS.by_type.items()}

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


def check_pal_message(message: dict[str, Any]) -> None:
    check(schema.PalMessageObject, message)
    pair = participants(message["conversationId"])
    check_message_id(message["id"], message["conversationId"])
    assert message["senderId"] != message["recipientId"]
    assert set(pair) == {message["senderId"], message["recipientId"]}
    if message["editedAt"] is not None:
        assert message["editedAt"] >= message["createdAt"]


def check_pal_event(event: dict[str, Any]) -> None:
    schema.EVENTS.check(event)
    kind = event["type"]
    if "retryAfter" in event:
        assert event["code"] == "rate_limited"
    if "conversationId" in event:
        pair = participants(event["conversationId"])
    if kind == "message_received":
        check_pal_message(event["message"])
    elif kind == "user_typing":
        assert event["userId"] in pair
    elif kind == "message_read":
        check_message_id(event["messageId"], event["conversationId"])
        assert event["readBy"] in pair
    elif kind == "message_updated":
        check_pal_message(event["message"])
        assert event["message"]["conversationId"] == event["conversationId"]
    elif kind == "message_deleted":
        check_message_id(event["messageId"], event["conversationId"])
    elif kind == "history_response":
        for message in event["messages"]:
            check_pal_message(message)
            assert message["conversationId"] == event["conversationId"]
