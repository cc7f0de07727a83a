"""Checks of every workspace-chat payload, derived from the schemas the
server builds them with (workspace_chat.schema, checked by wire.schema), plus
the rules a schema cannot state. Tests check each emitted payload with these
(Zulip's check_* pattern); every consumer checks what it sends too
(settings.CHAT_CHECK_EVENTS, tests/conftest.py)."""

from __future__ import annotations

from typing import Any

from wire.protocol import ERROR_CODES as _ERROR_CODES
from wire.schema import ANSWER_FIELDS, check, fields
from workspace_chat import schema

_message_fields, _message_required = fields(schema.MessageObject)
MESSAGE_FIELDS = set(_message_required)
OPTIONAL_MESSAGE_FIELDS = set(_message_fields) - MESSAGE_FIELDS
# Event type -> its fields (besides `type`), as the schema declares them.
CHAT_EVENTS: dict[str, set[str]] = {kind: set(fields(event)[0]) - {"type"} for kind, event in schema.EVENTS.by_type.items()}
OPTIONAL = set(ANSWER_FIELDS) | {"retryAfter"}
ERROR_CODES = set(_ERROR_CODES)


def _is_id(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 < value < 2**53


def check_message(message: dict[str, Any]) -> None:
    check(schema.MessageObject, message)


def check_chat_event(event: dict[str, Any]) -> None:
    schema.EVENTS.check(event)
    if "retryAfter" in event:
        assert event["code"] == "rate_limited", "retryAfter comes only with rate_limited"
