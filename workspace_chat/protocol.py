"""The `/ws/chat/` protocol (PROTOCOL.md, "Workspace chat WebSocket"):
inbound frames -> typed commands, and the outbound event builders. Pure."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from chatcore.jsonutil import iso
from chatcore.protocol import (
    Ping,
    bad_request,
    is_safe_url,
    parse_frame,
    read_client_id,
    read_content,
    read_id,
    read_str,
)
from chatcore.store import StoredMessage

MESSAGE_TYPES = ("text", "file", "image", "announcement", "assignment")


@dataclass(frozen=True)
class JoinChannel:
    channel_id: int
    after_id: int | None


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


Command = JoinChannel | LeaveChannel | SendMessage | Typing | StopTyping | MarkRead | PinMessage | Ping


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
        channel_id=channel_id,  # type: ignore[arg-type]
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
        return JoinChannel(read_id(data, "channelId"), read_id(data, "afterId", required=False, minimum=0))  # type: ignore[arg-type]
    if kind == "leave_channel":
        return LeaveChannel(read_id(data, "channelId"))  # type: ignore[arg-type]
    if kind == "send_message":
        return _send_message(data, max_length)
    if kind == "typing":
        return Typing(read_id(data, "channelId"))  # type: ignore[arg-type]
    if kind == "stop_typing":
        return StopTyping(read_id(data, "channelId"))  # type: ignore[arg-type]
    if kind == "mark_read":
        return MarkRead(read_id(data, "channelId"), read_id(data, "messageId"))  # type: ignore[arg-type]
    if kind == "pin_message":
        return PinMessage(read_id(data, "channelId"), read_id(data, "messageId"))  # type: ignore[arg-type]
    raise bad_request(f"Unknown event type {kind[:64]!r}.")


# --- outbound ---------------------------------------------------------------


@dataclass(frozen=True)
class Author:
    id: int
    username: str
    display_name: str


def message_object(msg: StoredMessage, *, channel_id: int, author: Author, read_by: list[int], streaming: bool | None = None) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "id": msg.id,
        "channelId": channel_id,
        "authorId": msg.author_id,
        "authorUsername": author.username,
        "authorDisplayName": author.display_name,
        "content": msg.content,
        "messageType": msg.message_type,
        "fileUrl": msg.file_url,
        "replyTo": msg.reply_to,
        "mentions": list(msg.mentions),
        "createdAt": iso(msg.created_at),
        "editedAt": iso(msg.edited_at),
        "isPinned": msg.is_pinned,
        "isAI": msg.is_ai,
        "clientId": msg.client_id,
        "grade": msg.grade,
        "readBy": read_by,
    }
    if streaming is not None:
        obj["streaming"] = streaming
    return obj


def joined_channel_event(channel_id: int, missed: list[dict[str, Any]], has_more: bool) -> dict[str, Any]:
    return {"type": "joined_channel", "channelId": channel_id, "missed": missed, "hasMore": has_more}


def left_channel_event(channel_id: int) -> dict[str, Any]:
    return {"type": "left_channel", "channelId": channel_id}


def new_message_event(channel_id: int, message: dict[str, Any]) -> dict[str, Any]:
    return {"type": "new_message", "channelId": channel_id, "message": message}


def message_updated_event(channel_id: int, message: dict[str, Any]) -> dict[str, Any]:
    return {"type": "message_updated", "channelId": channel_id, "message": message}


def message_deleted_event(channel_id: int, message_id: int) -> dict[str, Any]:
    return {"type": "message_deleted", "channelId": channel_id, "messageId": message_id}


def typing_event(kind: str, channel_id: int, author: Author) -> dict[str, Any]:
    assert kind in ("user_typing", "user_stop_typing")
    return {
        "type": kind,
        "channelId": channel_id,
        "userId": author.id,
        "username": author.username,
        "displayName": author.display_name,
    }


def message_read_event(channel_id: int, message_id: int, user_id: int) -> dict[str, Any]:
    return {"type": "message_read", "channelId": channel_id, "messageId": message_id, "userId": user_id}


def presence_event(channel_id: int, user_id: int, username: str, status: str) -> dict[str, Any]:
    assert status in ("online", "offline")
    return {"type": "user_presence", "channelId": channel_id, "userId": user_id, "username": username, "status": status}


def message_pinned_event(channel_id: int, message_id: int, *, user_id: int, username: str) -> dict[str, Any]:
    return {
        "type": "message_pinned",
        "channelId": channel_id,
        "messageId": message_id,
        "pinnedBy": {"userId": user_id, "username": username},
    }
