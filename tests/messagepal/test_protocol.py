"""messagepal.protocol: ids, parsing every command, building every event."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from messagepal import protocol as p
from messagepal import schema
from messagestore import StoredMessage
from tests.pal_schemas import (
    PAL_EVENTS,
    PAL_MESSAGE_FIELDS,
    check_pal_event,
    check_pal_message,
)
from wire.protocol import ProtocolError, connected_event, pong_event

BAD_CONVERSATION_IDS = [
    "conv_2_1",  # not ordered
    "conv_1_1",  # with oneself
    "conv_0_3",  # user 0 does not exist
    "conv_01_3",  # leading zero: two spellings of one conversation
    "conv_-1_2",
    "conv_1",
    "conv_1_2_3",
    "Conv_1_2",
    "conv_1_2 ",
    " conv_1_2",
    "conv_1_2\n",  # `$` would accept a trailing newline
    "conv_1_2:3",
    "conv_1_9007199254740992",  # above 2^53 - 1
    "conv_a_b",
    "",
]
BAD_MESSAGE_IDS = [
    "conv_1_2:abc",
    "conv_1_2:0",
    "conv_1_2:-1",
    "conv_1_2:",
    "conv_1_2:05",
    "conv_1_2",
    "conv_2_1:5",
    "conv_1_1:5",
    "conv_1_2:5\n",
    "conv_1_2:9007199254740992",
    "5",
    "",
]


def parse(event: dict[str, Any] | str) -> tuple[p.Command, str | None]:
    return p.parse(event if isinstance(event, str) else json.dumps(event), max_length=100)


def command(event: dict[str, Any]) -> p.Command:
    return parse(event)[0]


def refused(event: dict[str, Any] | str) -> ProtocolError:
    with pytest.raises(ProtocolError) as err:
        parse(event)
    assert err.value.code == "bad_request"
    return err.value


# --- ids ---------------------------------------------------------------------------


def test_conversation_id_is_low_high_from_either_side():
    assert p.conversation_id(7, 3) == p.conversation_id(3, 7) == "conv_3_7"
    assert p.parse_conversation_id("conv_3_7") == (3, 7)
    assert p.parse_conversation_id("conv_9_10") == (9, 10)
    assert p.parse_conversation_id("conv_1_9007199254740991") == (1, 2**53 - 1)


def test_message_id_names_its_conversation():
    assert p.message_id("conv_3_7", 42) == "conv_3_7:42"
    assert p.parse_message_id("conv_3_7:42") == ("conv_3_7", 42)


@pytest.mark.parametrize("value", BAD_CONVERSATION_IDS)
def test_malformed_conversation_ids_are_refused(value):
    assert p.parse_conversation_id(value) is None
    for kind in ("subscribe", "unsubscribe", "fetch_history"):
        assert refused({"type": kind, "conversationId": value, "requestId": "r"}).request_id == "r"


@pytest.mark.parametrize("value", BAD_MESSAGE_IDS)
def test_malformed_message_ids_are_refused(value):
    assert p.parse_message_id(value) is None
    refused({"type": "mark_read", "messageId": value})
    refused({"type": "edit_message", "messageId": value, "content": "x"})
    refused({"type": "delete_message", "messageId": value})
    refused({"type": "fetch_history", "conversationId": "conv_1_2", "before": value})


# --- commands ------------------------------------------------------------------------


def test_parse_every_command():
    assert parse({"type": "send_message", "recipientId": 2, "content": " hi ", "clientId": "c-1", "requestId": "q"}) == (
        p.SendMessage(2, "hi", "c-1"),
        "q",
    )
    assert command({"type": "send_message", "recipientId": 2, "content": "hi"}) == p.SendMessage(2, "hi", None)
    assert command({"type": "typing", "recipientId": 5}) == p.Typing(5)
    assert command({"type": "mark_read", "messageId": "conv_1_2:9"}) == p.MarkRead("conv_1_2", 9, "conv_1_2:9")
    assert parse({"type": "edit_message", "messageId": "conv_1_2:9", "content": " new\n", "requestId": "e"}) == (
        p.EditMessage("conv_1_2", 9, "new"),
        "e",
    )
    assert command({"type": "delete_message", "messageId": "conv_1_2:9"}) == p.DeleteMessage("conv_1_2", 9)
    assert command({"type": "subscribe", "conversationId": "conv_1_2"}) == p.Subscribe("conv_1_2")
    assert command({"type": "unsubscribe", "conversationId": "conv_1_2"}) == p.Unsubscribe("conv_1_2")
    assert command({"type": "fetch_history", "conversationId": "conv_1_2", "before": "conv_1_2:9", "limit": 20}) == (
        p.FetchHistory("conv_1_2", 9, 20)
    )
    assert parse({"type": "ping", "requestId": "p"}) == (p.Ping(), "p")


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ({}, 50),
        ({"limit": None}, 50),
        ({"before": None}, 50),
        ({"limit": 1}, 1),
        ({"limit": 100}, 100),
        ({"limit": 101}, 100),
        ({"limit": 10**9}, 100),
    ],
)
def test_history_limit_defaults_to_50_and_is_capped_at_100(extra, expected):
    assert command({"type": "fetch_history", "conversationId": "conv_1_2", **extra}) == p.FetchHistory("conv_1_2", None, expected)


@pytest.mark.parametrize(
    "event",
    [
        {"type": "send_message", "content": "x"},
        {"type": "send_message", "recipientId": "2", "content": "x"},
        {"type": "send_message", "recipientId": True, "content": "x"},
        {"type": "send_message", "recipientId": 0, "content": "x"},
        {"type": "send_message", "recipientId": -1, "content": "x"},
        {"type": "send_message", "recipientId": 1.5, "content": "x"},
        {"type": "send_message", "recipientId": 2**53, "content": "x"},
        {"type": "send_message", "recipientId": 2},
        {"type": "send_message", "recipientId": 2, "content": 5},
        {"type": "send_message", "recipientId": 2, "content": ""},
        {"type": "send_message", "recipientId": 2, "content": " \n\t "},
        {"type": "send_message", "recipientId": 2, "content": "x" * 101},
        {"type": "send_message", "recipientId": 2, "content": "a\x00b"},
        {"type": "send_message", "recipientId": 2, "content": "x", "clientId": ""},
        {"type": "send_message", "recipientId": 2, "content": "x", "clientId": 7},
        {"type": "send_message", "recipientId": 2, "content": "x", "clientId": "c" * 129},
        {"type": "typing"},
        {"type": "typing", "recipientId": "2"},
        {"type": "mark_read"},
        {"type": "mark_read", "messageId": 5},
        {"type": "edit_message", "content": "x"},
        {"type": "edit_message", "messageId": "conv_1_2:9"},
        {"type": "edit_message", "messageId": 9, "content": "x"},
        {"type": "edit_message", "messageId": "conv_1_2:9", "content": 5},
        {"type": "edit_message", "messageId": "conv_1_2:9", "content": "  "},
        {"type": "edit_message", "messageId": "conv_1_2:9", "content": "x" * 101},
        {"type": "edit_message", "messageId": "conv_1_2:9", "content": "a\x00b"},
        {"type": "delete_message"},
        {"type": "delete_message", "messageId": None},
        {"type": "delete_message", "messageId": ["conv_1_2:9"]},
        {"type": "subscribe"},
        {"type": "subscribe", "conversationId": 12},
        {"type": "unsubscribe", "conversationId": ["conv_1_2"]},
        {"type": "fetch_history"},
        {"type": "fetch_history", "conversationId": "conv_1_2", "before": 9},
        {"type": "fetch_history", "conversationId": "conv_1_2", "before": "conv_1_3:9"},  # another conversation
        {"type": "fetch_history", "conversationId": "conv_1_2", "limit": 0},
        {"type": "fetch_history", "conversationId": "conv_1_2", "limit": -1},
        {"type": "fetch_history", "conversationId": "conv_1_2", "limit": True},
        {"type": "fetch_history", "conversationId": "conv_1_2", "limit": "5"},
        {"type": "fetch_history", "conversationId": "conv_1_2", "limit": 5.5},
        {"type": "SEND_MESSAGE", "recipientId": 2, "content": "x"},
        {"type": "join_channel", "channelId": 3},  # workspace chat's, not MessagePal's
        {"type": 5},
        {"recipientId": 2, "content": "x"},
    ],
)
def test_bad_commands_are_bad_request_with_request_id(event):
    assert refused({**event, "requestId": "rid"}).request_id == "rid"


@pytest.mark.parametrize("text", ["not json", "[1, 2]", '"ping"', "null", "", '{"type": "ping", "requestId": 5}'])
def test_bad_frames_are_bad_request(text):
    refused(text)


def test_binary_frame_is_bad_request():
    refused(None)  # type: ignore[arg-type]


def test_content_limit_is_the_one_passed_in():
    assert command({"type": "send_message", "recipientId": 2, "content": "x" * 100}) == p.SendMessage(2, "x" * 100, None)
    with pytest.raises(ProtocolError):
        p.parse(json.dumps({"type": "send_message", "recipientId": 2, "content": "x" * 11}), max_length=10)


# --- outbound events -------------------------------------------------------------------


def _stored(**kw: Any) -> StoredMessage:
    fields: dict[str, Any] = {
        "id": 9,
        "stream": "conv_1_2",
        "author_id": 2,
        "content": "<b>hi</b>",
        "created_at": datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=UTC),
        "client_id": "c-1",
    }
    return StoredMessage(**{**fields, **kw})


def test_message_object_is_exact():
    read_at = datetime(2026, 1, 2, 4, 0, tzinfo=UTC)
    message = schema.message_object(_stored(), sender_username="ben", recipient_id=1, read_at=read_at)
    assert message == {
        "id": "conv_1_2:9",
        "conversationId": "conv_1_2",
        "senderId": 2,
        "senderUsername": "ben",
        "recipientId": 1,
        "content": "<b>hi</b>",
        "createdAt": "2026-01-02T03:04:05.678Z",
        "editedAt": None,
        "readAt": "2026-01-02T04:00:00.000Z",
        "clientId": "c-1",
        "fileUrl": None,
        "file": None,
    }
    assert set(message) == PAL_MESSAGE_FIELDS
    check_pal_message(message)
    unread = schema.message_object(_stored(client_id=None), sender_username="ben", recipient_id=1, read_at=None)
    assert unread["readAt"] is None and unread["clientId"] is None
    check_pal_message(unread)
    edited = schema.message_object(_stored(edited_at=datetime(2026, 1, 2, 3, 5, tzinfo=UTC)), sender_username="ben", recipient_id=1, read_at=None)
    assert edited["editedAt"] == "2026-01-02T03:05:00.000Z"
    check_pal_message(edited)


def test_every_outbound_event_matches_its_schema():
    message = schema.message_object(_stored(), sender_username="ben", recipient_id=1, read_at=None)
    at = datetime(2026, 1, 2, tzinfo=UTC)
    events = [
        connected_event(user_id=1, username="ann", display_name="Ann"),
        schema.message_received_event(message),
        schema.typing_event("conv_1_2", 2, "ben"),
        schema.message_read_event("conv_1_2", "conv_1_2:9", 1, at),
        schema.message_updated_event(message),
        schema.message_deleted_event("conv_1_2", "conv_1_2:9"),
        schema.history_response_event("conv_1_2", [message], True),
        schema.history_response_event("conv_1_2", [], False),
        schema.subscribed_event("conv_1_2"),
        schema.unsubscribed_event("conv_1_2"),
        pong_event(),
    ]
    for event in events:
        check_pal_event(event)
    assert {e["type"] for e in events} | {"error"} == set(PAL_EVENTS)
    assert schema.message_read_event("conv_1_2", "conv_1_2:9", 1, at) == {
        "type": "message_read",
        "conversationId": "conv_1_2",
        "messageId": "conv_1_2:9",
        "readBy": 1,
        "readAt": "2026-01-02T00:00:00.000Z",
    }
    assert schema.typing_event("conv_1_2", 2, "ben") == {"type": "user_typing", "conversationId": "conv_1_2", "userId": 2, "username": "ben"}
    assert schema.message_updated_event(message) == {"type": "message_updated", "conversationId": "conv_1_2", "message": message}
    assert schema.message_deleted_event("conv_1_2", "conv_1_2:9") == {"type": "message_deleted", "conversationId": "conv_1_2", "messageId": "conv_1_2:9"}


@pytest.mark.parametrize(
    "event",
    [
        {"type": "subscribed", "conversationId": "conv_2_1"},
        {"type": "subscribed", "conversationId": "conv_1_2", "channelId": 3},
        {"type": "user_typing", "conversationId": "conv_1_2", "userId": 3, "username": "x"},
        {"type": "message_read", "conversationId": "conv_1_2", "messageId": "conv_1_3:4", "readBy": 1, "readAt": "2026-01-02T00:00Z"},
        {"type": "message_read", "conversationId": "conv_1_2", "messageId": 4, "readBy": 1, "readAt": "2026-01-02T00:00Z"},
        {"type": "message_read", "conversationId": "conv_1_2", "messageId": "conv_1_2:4", "readBy": 3, "readAt": "2026-01-02T00:00Z"},
        {"type": "history_response", "conversationId": "conv_1_2", "messages": []},
        {"type": "message_deleted", "conversationId": "conv_1_2", "messageId": "conv_1_3:4"},
        {"type": "message_deleted", "conversationId": "conv_1_2", "messageId": 4},
        {"type": "message_deleted", "conversationId": "conv_1_2", "messageId": "conv_1_2:4", "changeId": 1},
        {"type": "message_updated", "conversationId": "conv_1_2"},
        {"type": "new_message", "channelId": 1, "message": {}},
        {"type": "error", "code": "teapot", "message": "x"},
        {"type": "pong", "retryAfter": 1},
    ],
)
def test_schema_check_catches_wrong_events(event):
    with pytest.raises(AssertionError):
        check_pal_event(event)
