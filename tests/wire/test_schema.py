"""wire.schema: the checker every outbound event goes through in tests, and
the OpenAPI serializers derived from the same TypedDicts."""

from __future__ import annotations

import re
from typing import Literal, NotRequired, TypedDict

import pytest
from channels.testing import WebsocketCommunicator

from messagepal import schema as pal_schema
from tests.workspace_chat.test_consumers import connect, request
from wire import schema
from wire.http import output_serializer
from wire.schema import EventSchemas, Id, SchemaError, Timestamp, check
from workspace_chat import schema as chat_schema


class Inner(TypedDict):
    id: Id


class Sample(TypedDict):
    type: Literal["sample"]
    at: Timestamp
    inner: Inner | None
    items: list[Inner]
    note: NotRequired[str]


GOOD = {"type": "sample", "at": "2026-01-01T00:00:00.000Z", "inner": {"id": 3}, "items": [{"id": 1}]}


def test_a_matching_value_passes():
    check(Sample, GOOD)
    check(Sample, {**GOOD, "inner": None, "note": "x", "items": []})


@pytest.mark.parametrize(
    ("change", "complaint"),
    [
        ({"extra": 1}, "undeclared ['extra']"),
        ({"at": "2026-01-01T00:00:00"}, "ending in Z"),
        ({"inner": {"id": 0}}, "an id"),
        ({"inner": {"id": True}}, "not int"),
        ({"items": [{"id": 1, "leak": "x"}]}, "undeclared ['leak']"),
        ({"items": "no"}, "not a list"),
        ({"type": "other"}, "not one of"),
    ],
)
def test_undeclared_missing_or_ill_typed_fields_fail(change, complaint):
    with pytest.raises(SchemaError, match=re.escape(complaint)):
        check(Sample, {**GOOD, **change})
    with pytest.raises(SchemaError, match="lacks"):
        check(Sample, {k: v for k, v in GOOD.items() if k != "items"})


def test_events_are_found_by_type_and_answers_may_carry_request_ids():
    events = EventSchemas([Sample])
    events.check({**GOOD, "requestId": "r1"})
    with pytest.raises(SchemaError, match="not an event"):
        events.check({"type": "nope"})


def test_every_event_type_of_both_protocols_has_a_schema():
    assert set(chat_schema.EVENTS.by_type) == {
        "connected", "error", "pong", "joined_channel", "left_channel", "new_message", "message_updated", "message_deleted",
        "user_typing", "user_stop_typing", "message_read", "user_presence", "message_pinned", "reaction_updated", "thread_updated",
        "message_unpinned", "removed_from_channel", "notification",
    }  # fmt: skip
    assert set(pal_schema.EVENTS.by_type) == {
        "connected", "error", "pong", "message_received", "user_typing", "message_read", "history_response", "subscribed", "unsubscribed",
        "message_updated", "message_deleted",
    }  # fmt: skip


def test_openapi_serializers_are_derived_from_the_schema():
    serializer = output_serializer(chat_schema.MessageObject)()
    assert set(serializer.fields) == set(schema.fields(chat_schema.MessageObject)[0])
    assert serializer.fields["editedAt"].allow_null and not serializer.fields["streaming"].required
    page = output_serializer(chat_schema.MessagePage)()
    assert page.fields["results"].child.__class__ is output_serializer(chat_schema.MessageObject)


@pytest.mark.django_db(transaction=True)
async def test_a_consumer_reports_an_event_with_an_undeclared_field(school, monkeypatch):
    built = chat_schema.left_channel_event
    monkeypatch.setattr(chat_schema, "left_channel_event", lambda channel_id: {**built(channel_id), "secret": "leaked"})
    comm: WebsocketCommunicator = await connect(school.alice)
    await request(comm, {"type": "join_channel", "channelId": school.general.id})
    await comm.send_json_to({"type": "leave_channel", "channelId": school.general.id})
    answer = await comm.receive_json_from(timeout=2)  # unchecked: the client's own check would refuse it
    while answer["type"] != "left_channel":  # the join's own presence broadcast may come first
        answer = await comm.receive_json_from(timeout=2)
    assert answer["secret"] == "leaked"  # sent (checking never changes what is sent)...
    assert any("undeclared ['secret']" in v for v in schema.violations), "...but reported: tests/conftest.py fails the test"
    schema.violations.clear()
    await comm.disconnect()
