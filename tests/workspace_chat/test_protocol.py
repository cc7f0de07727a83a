"""workspace_chat.protocol and .schema: parsing every command and building every event."""

from datetime import UTC, datetime

import pytest

from messagestore import StoredMessage
from notifications.schema import notification_event
from tests.schemas import check_chat_event
from wire.protocol import ProtocolError, connected_event
from workspace_chat import protocol as p
from workspace_chat import schema as s


def parse(text: str):
    return p.parse(text, max_length=100)


def test_parse_every_command():
    assert parse('{"type": "join_channel", "channelId": 3, "afterId": 9, "requestId": "q"}') == (p.JoinChannel(3, 9), "q")
    assert parse('{"type": "join_channel", "channelId": 3}')[0] == p.JoinChannel(3, None)
    assert parse('{"type": "leave_channel", "channelId": 3}')[0] == p.LeaveChannel(3)
    assert parse('{"type": "typing", "channelId": 3}')[0] == p.Typing(3)
    assert parse('{"type": "stop_typing", "channelId": 3}')[0] == p.StopTyping(3)
    assert parse('{"type": "mark_read", "channelId": 3, "messageId": 4}')[0] == p.MarkRead(3, 4)
    assert parse('{"type": "pin_message", "channelId": 3, "messageId": 4}')[0] == p.PinMessage(3, 4)
    assert parse('{"type": "ping"}')[0] == p.Ping()
    command, _ = parse(
        '{"type": "send_message", "channelId": 3, "content": " hi ", "messageType": "image", '
        '"fileUrl": "/media/x.png", "replyTo": 5, "clientId": "c"}'
    )
    assert command == p.SendMessage(3, "hi", "image", "/media/x.png", 5, "c")


@pytest.mark.parametrize(
    "text",
    [
        '{"type": "send_message", "channelId": 3, "content": "x", "replyTo": "5"}',
        '{"type": "send_message", "channelId": 3, "content": "x", "clientId": ""}',
        '{"type": "send_message", "channelId": 3, "content": "x", "clientId": "' + "c" * 129 + '"}',
        '{"type": "send_message", "channelId": 3, "content": "' + "x" * 101 + '"}',
        '{"type": "mark_read", "channelId": 3}',
        '{"type": "pin_message", "messageId": 3}',
        '{"type": "JOIN_CHANNEL", "channelId": 3}',
    ],
)
def test_bad_commands_are_bad_request_with_request_id(text):
    with pytest.raises(ProtocolError) as err:
        parse(text[:-1] + ', "requestId": "rid"}')
    assert err.value.code == "bad_request" and err.value.request_id == "rid"


def _message() -> StoredMessage:
    return StoredMessage(id=7, stream="ch:3", author_id=1, content="<b>x</b>", created_at=datetime(2026, 1, 2, tzinfo=UTC))


def test_every_outbound_event_matches_its_schema():
    author = s.Author(1, "alice", "Alice")
    message = s.message_object(_message(), channel_id=3, author=author, read_by=[2])
    assert message["createdAt"] == "2026-01-02T00:00:00.000Z" and message["content"] == "<b>x</b>"
    events = [
        connected_event(user_id=1, username="alice", display_name="Alice"),
        s.joined_channel_event(3, [message], False, change_id=0, online=[1, 2]),
        s.joined_channel_event(3, [], False, change_id=9, online=[], changes=[s.message_deleted_event(3, 7, 8)], changes_has_more=False),
        s.left_channel_event(3),
        s.new_message_event(3, message),
        s.message_updated_event(3, message, 4),
        s.message_deleted_event(3, 7, 5),
        s.reaction_updated_event(3, 7, [{"emoji": "👍", "count": 1, "userIds": [1]}], 6),
        s.thread_updated_event(3, 7, None, 7),
        s.typing_event(True, 3, author),
        s.typing_event(False, 3, author),
        s.message_read_event(3, 7, 2),
        s.presence_event(3, 1, "alice", online=True),
        s.message_pinned_event(3, 7, user_id=1, username="alice", change_id=8),
        s.message_unpinned_event(3, 7, 9),
        s.removed_from_channel_event(3),
        notification_event(kind="mention", workspace_id=1, channel_id=3, message=message),
    ]
    for event in events:
        check_chat_event(event)
    assert {e["type"] for e in events} | {"pong", "error"} == set(__import__("tests.schemas").schemas.CHAT_EVENTS)
