"""The `/ws/messagepal/` protocol (PROTOCOL.md, "MessagePal WebSocket", and
part 2's "Message lifecycle" for edit_message / delete_message):
inbound frames -> typed commands, and the id formats (messagepal.schema
holds what goes out). Pure.

Conversation ids are `conv_{a}_{b}` with a < b. A message id is the string
`{conversationId}:{n}` where n is the store's integer id, so any message id
names its conversation and `mark_read {messageId}` needs no lookup."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from wire.protocol import (
    MAX_ID,
    Ping,
    bad_request,
    is_safe_url,
    parse_frame,
    read_client_id,
    read_content,
    read_id,
    read_str,
)

CONVERSATION_RE = re.compile(r"^conv_([1-9][0-9]{0,15})_([1-9][0-9]{0,15})$")
MESSAGE_ID_RE = re.compile(r"^(conv_[1-9][0-9]{0,15}_[1-9][0-9]{0,15}):([1-9][0-9]{0,15})$")
DEFAULT_PAGE = 50
MAX_PAGE = 100


def conversation_id(user_a: int, user_b: int) -> str:
    low, high = sorted((user_a, user_b))
    return f"conv_{low}_{high}"


def parse_conversation_id(value: str) -> tuple[int, int] | None:
    """(low, high) user ids, or None when it is not a well-formed id."""
    match = CONVERSATION_RE.fullmatch(value)
    if not match:
        return None
    low, high = int(match.group(1)), int(match.group(2))
    if not low < high <= MAX_ID:
        return None
    return low, high


def message_id(conversation: str, number: int) -> str:
    return f"{conversation}:{number}"


def parse_message_id(value: str) -> tuple[str, int] | None:
    match = MESSAGE_ID_RE.fullmatch(value)
    if not match or parse_conversation_id(match.group(1)) is None:
        return None
    number = int(match.group(2))
    return (match.group(1), number) if number <= MAX_ID else None


@dataclass(frozen=True)
class SendMessage:
    recipient_id: int
    content: str
    client_id: str | None
    file_url: str | None = None


@dataclass(frozen=True)
class Typing:
    recipient_id: int


@dataclass(frozen=True)
class MarkRead:
    conversation_id: str
    message_number: int
    message_id: str


@dataclass(frozen=True)
class EditMessage:
    conversation_id: str
    message_number: int
    content: str


@dataclass(frozen=True)
class DeleteMessage:
    conversation_id: str
    message_number: int


@dataclass(frozen=True)
class Subscribe:
    conversation_id: str


@dataclass(frozen=True)
class Unsubscribe:
    conversation_id: str


@dataclass(frozen=True)
class FetchHistory:
    conversation_id: str
    before: int | None
    limit: int


Command = SendMessage | Typing | MarkRead | EditMessage | DeleteMessage | Subscribe | Unsubscribe | FetchHistory | Ping


def read_conversation(data: dict[str, Any], name: str = "conversationId") -> str:
    value = read_str(data, name, max_length=40)
    assert value is not None
    if parse_conversation_id(value) is None:
        raise bad_request(f"Field '{name}' must be a conversation id like conv_1_2.")
    return value


def read_message_id(data: dict[str, Any], name: str) -> tuple[str, int, str]:
    value = read_str(data, name, max_length=64)
    assert value is not None
    parsed = parse_message_id(value)
    if parsed is None:
        raise bad_request(f"Field '{name}' must be a MessagePal message id.")
    return parsed[0], parsed[1], value


def parse(text: str | None, *, max_length: int) -> tuple[Command, str | None]:
    """A text frame -> (command, requestId); raises ProtocolError."""
    return parse_frame(text, lambda data: _parse(data, max_length))


def _parse(data: dict[str, Any], max_length: int) -> Command:
    kind = data["type"]
    if kind == "send_message":
        recipient = read_id(data, "recipientId")
        file_url = read_str(data, "fileUrl", required=False, max_length=2048)
        if file_url is not None and not is_safe_url(file_url):
            raise bad_request("Field 'fileUrl' must be an http(s):// URL or a path on this site.")
        return SendMessage(recipient, read_content(data, max_length), read_client_id(data), file_url)
    if kind == "typing":
        return Typing(read_id(data, "recipientId"))
    if kind == "mark_read":
        conversation, number, raw = read_message_id(data, "messageId")
        return MarkRead(conversation, number, raw)
    if kind == "edit_message":
        conversation, number, _ = read_message_id(data, "messageId")
        return EditMessage(conversation, number, read_content(data, max_length))
    if kind == "delete_message":
        conversation, number, _ = read_message_id(data, "messageId")
        return DeleteMessage(conversation, number)
    if kind == "subscribe":
        return Subscribe(read_conversation(data))
    if kind == "unsubscribe":
        return Unsubscribe(read_conversation(data))
    if kind == "fetch_history":
        conversation = read_conversation(data)
        before = None
        if data.get("before") is not None:
            before_conversation, before, _ = read_message_id(data, "before")
            if before_conversation != conversation:
                raise bad_request("Field 'before' must be a message of that conversation.")
        limit = data.get("limit", DEFAULT_PAGE)
        if limit is None:
            limit = DEFAULT_PAGE
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit:
            raise bad_request("Field 'limit' must be a positive integer.")
        return FetchHistory(conversation, before, min(limit, MAX_PAGE))
    raise bad_request(f"Unknown event type {kind[:64]!r}.")

