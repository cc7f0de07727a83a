"""Typed schemas of what the server sends, and the one checker of them.

Every outbound event and every object inside one (a message, a user...) is
a `TypedDict` in its app's `schema.py` (workspace_chat, messagepal; the
events both WebSockets share are in wire.protocol). That one declaration
serves three readers:

- builders construct events by calling the TypedDict, so mypy checks every
  field name and type where the event is made;
- `check()` validates a value against it at run time: the tests do it for
  every event that leaves a consumer (settings.CHAT_CHECK_EVENTS, see
  realtime.consumers), so an undeclared, missing or ill-typed field fails a
  test (Zulip's event_types.py + check_* pattern);
- wire.http.output_serializer() derives the DRF serializer that documents an
  HTTP answer in the OpenAPI schema.

Refinements the type alone cannot say (an id is below 2^53, a time ends in
Z) are `Annotated[..., Check(...)]`.
"""

from __future__ import annotations

import functools
import logging
import types
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Literal, NotRequired, Required, Union, get_args, get_origin, get_type_hints, is_typeddict

logger = logging.getLogger(__name__)

MAX_ID = 2**53 - 1  # the largest integer a JSON number carries exactly


@dataclass(frozen=True)
class Check:
    test: Callable[[Any], bool]
    describe: str


def _is_id(value: int) -> bool:
    return 0 < value <= MAX_ID


def _is_time(value: str) -> bool:
    return value.endswith("Z") and "T" in value


Id = Annotated[int, Check(_is_id, "an id from 1 to 2^53-1")]
Timestamp = Annotated[str, Check(_is_time, "an ISO 8601 time in UTC ending in Z")]
NonEmpty = Annotated[str, Check(bool, "a non-empty string")]
Positive = Annotated[int, Check(lambda value: value > 0, "a positive integer")]

# Any direct answer may carry the client's requestId (PROTOCOL.md).
ANSWER_FIELDS: dict[str, Any] = {"requestId": str}


class SchemaError(AssertionError):
    """A value does not match its schema."""


@functools.cache
def _hints(schema: type) -> tuple[dict[str, Any], frozenset[str]]:
    # Read from the evaluated hints, not __required_keys__: under `from
    # __future__ import annotations` that misses NotRequired.
    hints = get_type_hints(schema, include_extras=True)
    total = getattr(schema, "__total__", True)
    required = frozenset(
        name for name, hint in hints.items() if get_origin(hint) is Required or (total and get_origin(hint) is not NotRequired)
    )
    return {name: _strip_required(hint) for name, hint in hints.items()}, required


def _strip_required(hint: Any) -> Any:
    while get_origin(hint) in (Required, NotRequired):
        hint = get_args(hint)[0]
    return hint


def fields(schema: type) -> tuple[dict[str, Any], frozenset[str]]:
    """A TypedDict's (field -> type hint, required field names)."""
    return _hints(schema)


def check(schema: Any, value: Any, path: str = "$", *, extra: Mapping[str, Any] | None = None) -> None:
    """Raise SchemaError unless `value` matches `schema` (a TypedDict, or any
    type hint of the kinds the schemas use). `extra`: fields a TypedDict
    value may carry besides its own (ANSWER_FIELDS)."""
    origin = get_origin(schema)
    if schema is Any:
        return
    if origin is Annotated:
        base, *checks = get_args(schema)
        check(base, value, path)
        for item in checks:
            if isinstance(item, Check) and not item.test(value):
                raise SchemaError(f"{path}: {value!r} is not {item.describe}")
        return
    if is_typeddict(schema):
        _check_dict(schema, value, path, extra or {})
        return
    if origin is Literal:
        if not any(value == choice and type(value) is type(choice) for choice in get_args(schema)):
            raise SchemaError(f"{path}: {value!r} is not one of {get_args(schema)}")
        return
    if origin in (Union, types.UnionType):
        errors = []
        for option in get_args(schema):
            try:
                check(option, value, path)
                return
            except SchemaError as exc:
                errors.append(str(exc))
        raise SchemaError(" / ".join(errors))
    if origin is list:
        if not isinstance(value, list):
            raise SchemaError(f"{path}: {type(value).__name__} is not a list")
        (item,) = get_args(schema)
        for index, element in enumerate(value):
            check(item, element, f"{path}[{index}]")
        return
    if schema is None or schema is type(None):
        if value is not None:
            raise SchemaError(f"{path}: {value!r} is not null")
        return
    if schema is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif schema is float:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
    elif schema in (str, bool):
        ok = isinstance(value, schema)
    else:
        raise TypeError(f"{path}: schema {schema!r} is not supported")
    if not ok:
        raise SchemaError(f"{path}: {value!r} is not {schema.__name__}")


def _check_dict(schema: type, value: Any, path: str, extra: Mapping[str, Any]) -> None:
    if not isinstance(value, dict):
        raise SchemaError(f"{path}: {type(value).__name__} is not an object ({schema.__name__})")
    hints, required = _hints(schema)
    missing = required - value.keys()
    if missing:
        raise SchemaError(f"{path}: {schema.__name__} lacks {sorted(missing)}")
    undeclared = value.keys() - hints.keys() - extra.keys()
    if undeclared:
        raise SchemaError(f"{path}: {schema.__name__} has undeclared {sorted(undeclared)}")
    for name, item in value.items():
        check(hints[name] if name in hints else extra[name], item, f"{path}.{name}")


class EventSchemas:
    """The outbound events of one protocol, found by their `type`."""

    def __init__(self, schemas: Iterable[type]) -> None:
        self.by_type: dict[str, type] = {}
        for schema in schemas:
            (name,) = get_args(fields(schema)[0]["type"])
            self.by_type[name] = schema

    def check(self, event: Any) -> None:
        if not isinstance(event, dict) or not isinstance(event.get("type"), str):
            raise SchemaError(f"an event must be an object with a string type, not {event!r}")
        schema = self.by_type.get(event["type"])
        if schema is None:
            raise SchemaError(f"{event['type']!r} is not an event of this protocol")
        check(schema, event, event["type"], extra=ANSWER_FIELDS)


# Violations seen by checking consumers (settings.CHAT_CHECK_EVENTS): the
# test suite fails a test that leaves any here (tests/conftest.py).
violations: list[str] = []


def report(error: SchemaError, event: Any) -> None:
    violations.append(str(error))
    # The error quotes field values (message text): the log names the event only.
    kind = event.get("type") if isinstance(event, dict) else None
    logger.error("event schema violation in a %r event (tests/conftest.py lists it)", kind)
