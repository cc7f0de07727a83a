"""The fuzz test's frame strategies (tests/reliability/test_fuzz_ws.py): the
world of real ids the frames refer to, event templates, literal and
systematic frames."""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass, field
from typing import Any

from hypothesis import strategies as st

from tests.e2e.conftest import e2e_env, server  # noqa: F401  (fixtures: a real daphne process)
from tests.reliability.fuzz_values import (
    DEEP_RAW,
    EDGE_FLOATS,
    EDGE_INTS,
    EDGE_STRINGS,
    FIELD_NAMES,
    JSON_VALUES,
    MAX_CONTENT,
    MAX_REQUEST_ID,
    MISSING,
    RAW_VALUES,
    REQUEST_IDS,
    TYPE_VARIANTS,
    UNICODE_TRICKS,
    Frame,
    dump,
    text_frame,
)


@dataclass
class World:
    """Real ids the generated events may point at, so some of them get past
    validation into the services."""

    me: int
    other: int
    channel: int
    message: int
    conversation: str
    pal_message: str
    # A message of `me` to edit and delete (0: none; its events are then refused).
    victim: int = 0
    pal_victim: str = ""
    extra: list[Any] = field(default_factory=list)

    def values(self) -> list[Any]:
        return [self.me, self.other, self.channel, self.message, self.conversation, self.pal_message, *self.extra]

    def chat_templates(self) -> list[dict[str, Any]]:
        c, m = self.channel, self.message
        return [
            {"type": "join_channel", "channelId": c},
            {"type": "join_channel", "channelId": c, "afterId": m},
            {"type": "leave_channel", "channelId": c},
            {"type": "send_message", "channelId": c, "content": "hello"},
            {
                "type": "send_message",
                "channelId": c,
                "content": "see this",
                "messageType": "file",
                "fileUrl": "/media/a.png",
                "replyTo": m,
                "clientId": "c1",
            },
            {"type": "typing", "channelId": c},
            {"type": "stop_typing", "channelId": c},
            {"type": "mark_read", "channelId": c, "messageId": m},
            {"type": "pin_message", "channelId": c, "messageId": m},
            {"type": "unpin_message", "channelId": c, "messageId": m},
            {"type": "join_channel", "channelId": c, "afterId": m, "changesAfter": 0},
            {"type": "add_reaction", "channelId": c, "messageId": m, "emoji": "👍🏽"},
            {"type": "remove_reaction", "channelId": c, "messageId": m, "emoji": "👍🏽"},
            {"type": "edit_message", "channelId": c, "messageId": self.victim, "content": "edited"},
            {"type": "delete_message", "channelId": c, "messageId": self.victim},
            {"type": "ping"},
        ]

    def pal_templates(self) -> list[dict[str, Any]]:
        return [
            {"type": "send_message", "recipientId": self.other, "content": "hello"},
            {"type": "send_message", "recipientId": self.other, "content": "hi again", "clientId": "p1"},
            {"type": "typing", "recipientId": self.other},
            {"type": "mark_read", "messageId": self.pal_message},
            {"type": "subscribe", "conversationId": self.conversation},
            {"type": "unsubscribe", "conversationId": self.conversation},
            {"type": "fetch_history", "conversationId": self.conversation},
            {"type": "fetch_history", "conversationId": self.conversation, "before": self.pal_message, "limit": 10},
            {"type": "edit_message", "messageId": self.pal_victim or self.pal_message, "content": "edited"},
            {"type": "delete_message", "messageId": self.pal_victim or self.pal_message},
            {"type": "ping"},
        ]


def field_values(world: World) -> st.SearchStrategy[Any]:
    return st.one_of(
        st.sampled_from(world.values()),
        st.sampled_from(world.values()),
        st.sampled_from(EDGE_INTS),
        st.integers(),
        st.sampled_from(EDGE_FLOATS),
        st.floats(allow_nan=False, allow_infinity=False),
        st.booleans(),
        st.none(),
        st.sampled_from(EDGE_STRINGS),
        st.text(max_size=40),
        st.text(alphabet=st.sampled_from(UNICODE_TRICKS), max_size=12),
        JSON_VALUES,
    )


def event_frames(templates: list[dict[str, Any]], values: st.SearchStrategy[Any]) -> st.SearchStrategy[Frame]:
    """A valid-looking event with 0-3 fields replaced or removed, maybe a raw
    JSON literal (NaN, 2**64, "\\ud800", 1,000-deep arrays...) spliced in.
    The sub-strategies are built once: building them per draw costs more than
    the exchange with the server."""
    type_values = st.one_of(st.sampled_from(TYPE_VARIANTS), values)
    actions = st.sampled_from(("replace", "replace", "delete"))
    ascii_only = st.booleans()
    plans = []
    for template in templates:
        keys = sorted(set(template) | set(FIELD_NAMES))
        mutated = st.lists(st.sampled_from(keys), max_size=3, unique=True)
        splices = st.one_of(st.none(), st.none(), st.tuples(st.sampled_from(keys), RAW_VALUES))
        plans.append((template, mutated, splices))
    pick = st.sampled_from(plans)

    @st.composite
    def build(draw: st.DrawFn) -> Frame:
        template, mutated, splices = draw(pick)
        event = dict(template)
        for key in draw(mutated):
            if draw(actions) == "delete":
                event.pop(key, None)
            elif key == "type":
                event[key] = draw(type_values)
            else:
                event[key] = draw(values)
        request_id = draw(REQUEST_IDS)
        if request_id is not MISSING:
            event["requestId"] = request_id
        splice = draw(splices)
        if splice is None:
            return text_frame(dump(event, draw(ascii_only)))
        key, literal = splice
        event.pop(key, None)
        rest = dump(event, True)
        return text_frame("{" + json.dumps(key) + ":" + literal + ("," + rest[1:] if rest != "{}" else "}"))

    return build()


LITERAL_FRAMES = [
    "",
    " ",
    "\n",
    "null",
    "true",
    "false",
    "0",
    "-1",
    "1e308",
    "1e999",
    "NaN",
    "Infinity",
    "-Infinity",
    "9007199254740993",
    "18446744073709551616",
    "1" * 5000,
    "[]",
    "{}",
    '""',
    '"ping"',
    '[{"type":"ping"}]',
    '{"type":"ping"',
    '{"type":"ping"}}',
    '{"type":"ping"} {"type":"ping"}',
    '{"type":"ping"}\n{"type":"ping"}',
    '\ufeff{"type":"ping"}',
    "{type:'ping'}",
    "{'type':'ping'}",
    '{"type":null}',
    '{"type":1}',
    '{"type":1.5}',
    '{"type":true}',
    '{"type":["ping"]}',
    '{"type":{"$ne":1}}',
    '{"type":"ping","type":"send_message"}',
    '{"type":"send_message","type":"ping"}',
    "\x00",
    '{"type":"ping"}\x00',
    '{"type":"p\\u0000ing"}',
    '{"type":"ping\\u0000"}',
    '{"type":"\\ud800"}',
    '{"requestId":"\\ud800","type":"ping"}',
    '{"requestId":"\\udfff\\ud800","type":"ping"}',
    '{"type":"ping","requestId":NaN}',
    '{"type":"ping","requestId":1e999}',
    '{"type":"ping","requestId":"' + "r" * 129 + '"}',
    '{"\\u0000":1,"type":"ping"}',
    '{"type":"ping","x":' + "[" * 1000 + "]" * 1000 + "}",
    "[" * 1000 + "]" * 1000,
    "{" * 1000,
    '{"type":"\\u202eping"}',
    '{"type":"ping\\u200b"}',
    "<html>",
    "GET / HTTP/1.1",
    '{"type":"ping"}' * 100,
]


def frame_strategy(world: World, protocol: str) -> st.SearchStrategy[Frame]:
    templates = world.chat_templates() if protocol == "chat" else world.pal_templates()
    values = field_values(world)
    events = event_frames(templates, values)
    return st.one_of(
        events,
        events,
        events,
        events,
        st.text(max_size=200).map(text_frame),
        st.sampled_from(LITERAL_FRAMES).map(text_frame),
        JSON_VALUES.filter(lambda v: not isinstance(v, dict)).map(lambda v: text_frame(dump(v, True))),
        DEEP_RAW.map(text_frame),
        DEEP_RAW.map(lambda deep: text_frame('{"type":"ping","requestId":"deep","x":' + deep + "}")),
        st.one_of(st.binary(max_size=100), st.sampled_from([b'{"type":"ping"}', b"\xff\xfe\x00", b"\x00", b""])).map(
            lambda b: Frame(data=b)
        ),
        st.tuples(events, st.integers(0, 2000)).map(lambda t: text_frame(t[0].text[: t[1] % max(1, len(t[0].text))])),  # type: ignore[index]
        st.tuples(events, st.sampled_from([" ", "\n", "\t", "\r\n", "\ufeff", "\x00", "\u00a0", "\u200b", "x", ","]), st.booleans()).map(
            lambda t: text_frame(t[1] + t[0].text if t[2] else t[0].text + t[1])  # type: ignore[operator]
        ),
    )


# Every field of every valid event, replaced in turn by each of these (the
# rest of the event valid), then removed: Hypothesis's explicit examples, sent
# before the generated ones, so no (field, value) pair is left to chance.
SYSTEMATIC_VALUES: list[Any] = [
    "\x00",
    "a\x00b",
    "\ud800",
    "a\udc00b",
    "\u202e\u200b",
    "\u200b",
    "",
    "   ",
    "x" * (MAX_REQUEST_ID + 1),
    "x" * (MAX_CONTENT + 1),
    "javascript:alert(1)",
    "//evil.example/x",
    "/a b",
    "<script>alert(1)</script>",
    "1",
    0,
    -1,
    2**53,
    2**64,
    -(2**63) - 1,
    1e308,
    1.5,
    True,
    None,
    [],
    {},
    [1],
    {"$gt": ""},
]
SYSTEMATIC_RAW = ["NaN", "Infinity", "-Infinity", "1e999", "18446744073709551616", '"\\ud800"', '"a\\u0000b"', "[" * 1000 + "]" * 1000]


def systematic_frames(templates: list[dict[str, Any]]) -> list[Frame]:
    frames = []
    serial = itertools.count(1)

    def event_for(template: dict[str, Any], key: str) -> dict[str, Any]:
        # A clientId of its own per frame: a clientId already stored would
        # answer from the store and hide what the mutated field does there.
        event = {**template, "requestId": "sys"}
        if "clientId" in template and key != "clientId":
            event["clientId"] = f"sys-{next(serial)}"
        return event

    for template in templates:
        for key in [k for k in template if k != "type"]:
            for value in SYSTEMATIC_VALUES:
                frames.append(text_frame(dump({**event_for(template, key), key: value}, True)))
            for literal in SYSTEMATIC_RAW:
                rest = dump({k: v for k, v in event_for(template, key).items() if k != key}, True)
                frames.append(text_frame("{" + json.dumps(key) + ":" + literal + "," + rest[1:]))
            frames.append(text_frame(dump({k: v for k, v in event_for(template, key).items() if k != key}, True)))
            if isinstance(template[key], str):
                # The valid value with a NUL, a lone surrogate, RTL and zero-width characters.
                for value in (template[key] + "\x00", template[key] + "\ud800", "\u202e" + template[key], template[key] + "\u200b"):
                    frames.append(text_frame(dump({**event_for(template, key), key: value}, True)))
    for template in (templates[0], {"type": "ping"}):
        for kind in [*TYPE_VARIANTS, *SYSTEMATIC_VALUES]:
            frames.append(text_frame(dump({**template, "type": kind, "requestId": "sys"}, True)))
    return frames


def batches(frames: list[Frame], size: int, prefix: list[Frame] = ()) -> list[list[Frame]]:
    """`prefix` starts every batch (a join, so a leave in an earlier batch
    does not turn the sends of this one into not_joined)."""
    step = size - len(prefix)
    return [[*prefix, *frames[i : i + step]] for i in range(0, len(frames), step)]


# --- the exchange and its oracle -------------------------------------------------


