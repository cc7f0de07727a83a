"""The `/ws/chat/` protocol (PROTOCOL.md, "Workspace chat WebSocket"):
inbound frames -> typed commands (workspace_chat.schema holds what goes
out). Pure."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import emoji

from wire.protocol import (
    Ping,
    bad_request,
    is_safe_url,
    parse_frame,
    read_client_id,
    read_content,
    read_id,
    read_str,
)
from workspace_chat.schema import MESSAGE_TYPES


@dataclass(frozen=True)
class JoinChannel:
    channel_id: int
    after_id: int | None
    changes_after: int | None = None


@dataclass(frozen=True)
class LeaveChannel:
    channel_id: int


@dataclass(frozen=True)
class SendMessage:
    channel_id: int
    content: str
    message_type: str
    file_url: str | None
    reply_to: int | None
    client_id: str | None


@dataclass(frozen=True)
class Typing:
    channel_id: int


@dataclass(frozen=True)
class StopTyping:
    channel_id: int


@dataclass(frozen=True)
class MarkRead:
    channel_id: int
    message_id: int


@dataclass(frozen=True)
class PinMessage:
    channel_id: int
    message_id: int


@dataclass(frozen=True)
class UnpinMessage:
    channel_id: int
    message_id: int


@dataclass(frozen=True)
class EditMessage:
    channel_id: int
    message_id: int
    content: str


@dataclass(frozen=True)
class DeleteMessage:
    channel_id: int
    message_id: int


@dataclass(frozen=True)
class SetReaction:
    """`add_reaction` (add=True) or `remove_reaction`."""

    channel_id: int
    message_id: int
    emoji: str
    add: bool


Command = (
    JoinChannel
    | LeaveChannel
    | SendMessage
    | Typing
    | StopTyping
    | MarkRead
    | PinMessage
    | UnpinMessage
    | EditMessage
    | DeleteMessage
    | SetReaction
    | Ping
)

# Longest emoji accepted: ZWJ sequences with skin tones run to about 15
# code points; the emoji package decides what is one emoji.
MAX_EMOJI_LENGTH = 32


def read_emoji(data: dict[str, Any]) -> str:
    """Exactly one emoji as Unicode defines it (skin tones, ZWJ sequences
    and variation selectors included), kept as sent."""
    value = read_str(data, "emoji", max_length=MAX_EMOJI_LENGTH)
    if not emoji.is_emoji(value):
        raise bad_request("Field 'emoji' must be exactly one emoji.")
    return value


def _send_message(data: dict[str, Any], max_length: int) -> SendMessage:
    channel_id = read_id(data, "channelId")
    content = read_content(data, max_length)
    message_type = read_str(data, "messageType", required=False) or "text"
    if message_type not in MESSAGE_TYPES:
        raise bad_request(f"Field 'messageType' must be one of {', '.join(MESSAGE_TYPES)}.")
    file_url = read_str(data, "fileUrl", required=False, max_length=2048)
    if file_url is not None and not is_safe_url(file_url):
        raise bad_request("Field 'fileUrl' must be an http(s):// URL or a path on this site.")
    return SendMessage(
        channel_id=channel_id,
        content=content,
        message_type=message_type,
        file_url=file_url,
        reply_to=read_id(data, "replyTo", required=False),
        client_id=read_client_id(data),
    )


def parse(text: str | None, *, max_length: int) -> tuple[Command, str | None]:
    """A text frame -> (command, requestId); raises ProtocolError."""
    return parse_frame(text, lambda data: _parse(data, max_length))


def _parse(data: dict[str, Any], max_length: int) -> Command:
    kind = data["type"]
    if kind == "join_channel":
        # afterId 0: everything from the start (as HTTP's after=0).
        return JoinChannel(
            read_id(data, "channelId"),
            read_id(data, "afterId", required=False, minimum=0),
            read_id(data, "changesAfter", required=False, minimum=0),
        )
    if kind == "leave_channel":
        return LeaveChannel(read_id(data, "channelId"))
    if kind == "send_message":
        return _send_message(data, max_length)
    if kind == "typing":
        return Typing(read_id(data, "channelId"))
    if kind == "stop_typing":
        return StopTyping(read_id(data, "channelId"))
    if kind == "mark_read":
        return MarkRead(read_id(data, "channelId"), read_id(data, "messageId"))
    if kind == "pin_message":
        return PinMessage(read_id(data, "channelId"), read_id(data, "messageId"))
    if kind == "unpin_message":
        return UnpinMessage(read_id(data, "channelId"), read_id(data, "messageId"))
    if kind == "edit_message":
        return EditMessage(read_id(data, "channelId"), read_id(data, "messageId"), read_content(data, max_length))
    if kind == "delete_message":
        return DeleteMessage(read_id(data, "channelId"), read_id(data, "messageId"))
    if kind in ("add_reaction", "remove_reaction"):
        return SetReaction(read_id(data, "channelId"), read_id(data, "messageId"), read_emoji(data), kind == "add_reaction")
    raise bad_request(f"Unknown event type {kind[:64]!r}.")

