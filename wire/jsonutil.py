"""The one JSON encoder of the wire protocol (orjson) and the time format."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, overload

import orjson


def dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


def loads(text: str | bytes) -> Any:
    return orjson.loads(text)


JSONDecodeError = orjson.JSONDecodeError


@overload
def iso(dt: datetime) -> str: ...
@overload
def iso(dt: None) -> None: ...
@overload
def iso(dt: datetime | None) -> str | None: ...
def iso(dt: datetime | None) -> str | None:
    """ISO 8601 in UTC with a Z suffix, millisecond precision."""
    if dt is None:
        return None
    return dt.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
