"""Wire-protocol pieces both WebSocket protocols share: frame decoding, field
readers that raise `ProtocolError`, and the `connected`, `error` and `pong`
events with their schemas. Pure: no models, no I/O."""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, NotRequired, TypedDict, overload

from wire import jsonutil
from wire.schema import MAX_ID, Id, NonEmpty, Positive

MAX_CLIENT_ID = 128
MAX_REQUEST_ID = 128

ErrorCode = Literal["unauthorized", "bad_request", "not_found", "forbidden", "not_joined", "rate_limited", "server_error"]
ERROR_CODES = frozenset(ErrorCode.__args__)  # type: ignore[attr-defined]


class ProtocolError(Exception):
    """An error answer: becomes an `error` event; never closes the socket
    (except `unauthorized`)."""

    def __init__(self, code: str, message: str, *, retry_after: float | None = None, request_id: str | None = None):
        assert code in ERROR_CODES, code
        super().__init__(message)
        self.code = code
        self.message = message
        self.retry_after = retry_after
        self.request_id = request_id


def bad_request(message: str) -> ProtocolError:
    return ProtocolError("bad_request", message)


def decode_frame(text: str | None) -> tuple[dict[str, Any], str | None]:
    """Text frame -> (object, requestId). requestId is read first so that even
    a bad event's error can carry it."""
    if text is None:
        raise bad_request("Binary frames are not supported; send JSON text.")
    try:
        data = jsonutil.loads(text)
    except jsonutil.JSONDecodeError:
        raise bad_request("Frame is not valid JSON.") from None
    if not isinstance(data, dict):
        raise bad_request("Frame must be a JSON object.")
    request_id = data.get("requestId")
    if request_id is not None and (not isinstance(request_id, str) or len(request_id) > MAX_REQUEST_ID):
        raise bad_request(f"requestId must be a string of at most {MAX_REQUEST_ID} characters.")
    event_type = data.get("type")
    if not isinstance(event_type, str):
        raise ProtocolError("bad_request", "Field 'type' must be a string.", request_id=request_id)
    return data, request_id


@dataclass(frozen=True)
class Ping:
    """`ping`: both protocols answer `pong`."""


def parse_frame(text: str | None, parse_fields: Callable[[dict[str, Any]], Any]) -> tuple[Any, str | None]:
    """A text frame -> (command, requestId) with a protocol's field parser;
    any ProtocolError carries the frame's requestId."""
    data, request_id = decode_frame(text)
    if data["type"] == "ping":
        return Ping(), request_id
    try:
        return parse_fields(data), request_id
    except ProtocolError as exc:
        exc.request_id = request_id
        raise


@overload
def read_id(data: dict[str, Any], name: str, *, required: Literal[True] = True, minimum: int = 1) -> int: ...
@overload
def read_id(data: dict[str, Any], name: str, *, required: bool, minimum: int = 1) -> int | None: ...
def read_id(data: dict[str, Any], name: str, *, required: bool = True, minimum: int = 1) -> int | None:
    """An integer id field (1..2^53-1, or from `minimum`); a required one is never None."""
    value = data.get(name)
    if value is None:
        if required:
            raise bad_request(f"Field '{name}' is required.")
        return None
    # bool is an int in Python; JSON true is not an id.
    if isinstance(value, bool) or not isinstance(value, int) or not minimum <= value <= MAX_ID:
        raise bad_request(f"Field '{name}' must be an integer from {minimum} to 2^53-1.")
    return value


@overload
def read_str(data: dict[str, Any], name: str, *, required: Literal[True] = True, max_length: int | None = None) -> str: ...
@overload
def read_str(data: dict[str, Any], name: str, *, required: bool, max_length: int | None = None) -> str | None: ...
def read_str(data: dict[str, Any], name: str, *, required: bool = True, max_length: int | None = None) -> str | None:
    """A string field, at most `max_length` characters; a required one is never None."""
    value = data.get(name)
    if value is None:
        if required:
            raise bad_request(f"Field '{name}' is required.")
        return None
    if not isinstance(value, str):
        raise bad_request(f"Field '{name}' must be a string.")
    if max_length is not None and len(value) > max_length:
        raise bad_request(f"Field '{name}' must be at most {max_length} characters.")
    return value


def read_content(data: dict[str, Any], max_length: int) -> str:
    content = read_str(data, "content")
    if "\x00" in content:
        raise bad_request("Field 'content' must not contain NUL characters.")
    # Lone surrogates cannot be stored or re-encoded as UTF-8.
    try:
        content.encode("utf-8")
    except UnicodeEncodeError:
        raise bad_request("Field 'content' must be valid Unicode text.") from None
    content = content.strip()
    if not content:
        raise bad_request("Field 'content' must not be empty.")
    if len(content) > max_length:
        raise bad_request(f"Field 'content' must be at most {max_length} characters.")
    return content


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def read_client_id(data: dict[str, Any]) -> str | None:
    client_id = read_str(data, "clientId", required=False, max_length=MAX_CLIENT_ID)
    if client_id is not None and (not client_id.strip() or _CONTROL.search(client_id) or not _encodable(client_id)):
        raise bad_request("Field 'clientId' must be printable text.")
    return client_id


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates
        return False
    return True


# No backslash anywhere: browsers read "/\\evil.example" as "//evil.example".
_SAFE_URL = re.compile(r"^(https?://[^\s\\\x00-\x1f\x7f]+|/(?![/\\])[^\s\\\x00-\x1f\x7f]*)$", re.IGNORECASE)


# A "%" must start an escape: a malformed one ("/files/report%") breaks
# every client that decodes the URL.
_BAD_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")


def is_safe_url(url: str) -> bool:
    """http(s) URLs and paths on this site; never javascript:, data:, //host,
    nor a malformed %-escape."""
    return bool(_SAFE_URL.fullmatch(url)) and len(url) <= 2048 and _encodable(url) and not _BAD_ESCAPE.search(url)


class ErrorEvent(TypedDict):
    type: Literal["error"]
    code: ErrorCode
    message: NonEmpty
    retryAfter: NotRequired[Positive]


class PongEvent(TypedDict):
    type: Literal["pong"]


class ConnectedEvent(TypedDict):
    type: Literal["connected"]
    userId: Id
    username: str
    displayName: str


# The events both WebSocket protocols send (each app's schema adds its own).
SHARED_EVENTS = (ErrorEvent, PongEvent, ConnectedEvent)


def error_event(error: ProtocolError, request_id: str | None = None) -> dict[str, Any]:
    event: dict[str, Any] = dict(ErrorEvent(type="error", code=error.code, message=error.message))  # type: ignore[typeddict-item]
    request_id = request_id if request_id is not None else error.request_id
    if request_id is not None:
        event["requestId"] = request_id
    if error.retry_after is not None:
        # Whole seconds, rounded up: waiting that long always finds a token.
        event["retryAfter"] = max(1, math.ceil(error.retry_after))
    return event


def with_request_id(event: Any, request_id: str | None) -> dict[str, Any]:
    """A direct answer: the event with the client's requestId, if it sent one."""
    if request_id is not None:
        return {**event, "requestId": request_id}
    return event


def connected_event(*, user_id: int, username: str, display_name: str) -> ConnectedEvent:
    return ConnectedEvent(type="connected", userId=user_id, username=username, displayName=display_name)


def pong_event() -> PongEvent:
    return PongEvent(type="pong")
