"""The fuzz test's raw material (tests/reliability/test_fuzz_ws.py): limits,
the Frame type, edge values and JSON strategies."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hypothesis import Phase
from hypothesis import strategies as st

from tests.e2e.conftest import e2e_env, server  # noqa: F401  (fixtures: a real daphne process)

ROOT = Path(__file__).resolve().parents[2]
MAX_FRAME_BYTES = 64 * 1024  # CHAT_MAX_FRAME_BYTES: stay under it, a bigger frame is closed with 1009
MAX_REQUEST_ID = 128
MAX_CONTENT = 4000  # CHAT_MAX_MESSAGE_LENGTH default
RECV_TIMEOUT = 10.0
DERANDOMIZE = os.environ.get("FUZZ_RANDOM") != "1"
# Violations are collected, not raised (one run names every distinct bug with
# its frames), so there is nothing for Hypothesis to shrink.
PHASES = (Phase.explicit, Phase.generate)

# In-process, per protocol: the systematic batches, then as many generated
# batches of BATCH frames as reach FRAMES_PER_PROTOCOL (FUZZ_FRAMES overrides).
IN_PROCESS_BATCH = 50
FRAMES_PER_PROTOCOL = int(os.environ.get("FUZZ_FRAMES", "5050"))
MIN_IN_PROCESS_FRAMES = 10_000
# Through daphne: 2 protocols x 10 x 25 = 500 frames.
E2E_EXAMPLES = 10
E2E_BATCH = 25

CHAT_TYPES = frozenset(
    {
        "join_channel", "leave_channel", "send_message", "typing", "stop_typing", "mark_read", "pin_message", "ping",
        "edit_message", "delete_message", "add_reaction", "remove_reaction", "unpin_message",
    }
)  # fmt: skip
PAL_TYPES = frozenset({"send_message", "typing", "mark_read", "subscribe", "unsubscribe", "fetch_history", "ping", "edit_message", "delete_message"})


# --- frames -------------------------------------------------------------------


@dataclass(frozen=True)
class Frame:
    text: str | None = None
    data: bytes | None = None

    def __repr__(self) -> str:
        body = repr(self.text if self.text is not None else self.data)
        kind = "text" if self.text is not None else "binary"
        if len(body) > 300:
            body = f"{body[:300]}... ({len(body)} chars)"
        return f"<{kind} frame {body}>"


def text_frame(text: str) -> Frame:
    return Frame(text=text)


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"


MISSING = _Missing()

EDGE_INTS = [0, -1, 1, 2**31 - 1, 2**31, 2**53 - 1, 2**53, 2**53 + 1, 2**63 - 1, 2**63, 2**64 - 1, 2**64, -(2**63), -(2**64), 10**30]
EDGE_FLOATS = [1e308, -1e308, 1.5, -0.0, 0.0, 0.1, 5e-324, 2.0**53, 1e16, 1.0]
EDGE_STRINGS = [
    "",
    " ",
    "\t\n",
    "\x00",
    "a\x00b",
    "hi\x00",
    "\x00" * 10,
    "\u202e",
    "\u200b",
    "\u200b\u200b",
    "\u202eevil\u202c.exe",
    "\u2066rtl\u2069",
    "\ufeff",
    "\u2028\u2029",
    "\u00a0",
    "\u0085x",
    "\U0001f600" * 10,
    "e\u0301" * 5,
    "\uffff",
    "\U0010ffff",
    "<b>bold</b>",
    "<script>alert(1)</script>",
    "&lt;&amp;",
    "javascript:alert(1)",
    "JaVaScRiPt:alert(1)",
    "data:text/html;base64,PHNjcmlwdD4=",
    "//evil.example/x",
    "https://ok.example/x",
    "http://a b",
    "/media/x.png",
    "/ ",
    "ftp://x",
    "conv_1_2",
    "conv_2_1",
    "conv_0_1",
    "conv_1_1",
    "conv_01_2",
    "conv_1_2:0",
    "conv_1_2:1",
    "conv_1_2:-1",
    "conv_9007199254740992_9007199254740993",
    "conv_1_9999999999999999",
    "conv_1_2:9999999999999999",
    "ch:1",
    "x" * 128,
    "x" * 129,
    "x" * MAX_CONTENT,
    "x" * (MAX_CONTENT + 1),
    " " * (MAX_CONTENT + 1) + "x",
    "\u00e9" * (MAX_CONTENT + 1),
    "1",
    "1e3",
    "NaN",
    "Infinity",
    "null",
    "true",
    "[]",
    "{}",
    "send_message",
    "SEND_MESSAGE",
    "ping ",
    "%s%s%n",
    "{0}",
    "' OR 1=1 --",
    "'; DROP TABLE chatcore_message; --",
    "../../../../etc/passwd",
    "\\",
    '"',
    "\r\n\r\n",
    "@everyone",
    "@alice",
    "a@b.org",
    "\ud800",
    "a\udc00b",
    "\udfff\ud800",
    "\ud83d",  # lone surrogates: sent as \\uXXXX escapes
]
UNICODE_TRICKS = [
    "\u202e",
    "\u202d",
    "\u202c",
    "\u2066",
    "\u2069",
    "\u200b",
    "\u200c",
    "\u200d",
    "\u2060",
    "\ufeff",
    "\x00",
    "\x01",
    "\x7f",
    "\u00a0",
    "\u2028",
    "\u2029",
    "\u0085",
    " ",
    "\t",
    "a",
    "Z",
    "@",
    "<",
    ">",
    "&",
    '"',
    "\\",
    "/",
    "\U0001f600",
    "\u0301",
    "\uffff",
    "\U0010ffff",
    "\ud800",
    "\udc00",
]
RAW_LITERALS = [
    "NaN",
    "-NaN",
    "Infinity",
    "-Infinity",
    "1e308",
    "-1e308",
    "1e309",
    "1e999",
    "-1e999",
    "1e-400",
    "4.9e-324",
    "9007199254740991",
    "9007199254740992",
    "9007199254740993",
    "18446744073709551615",
    "18446744073709551616",
    "-9223372036854775808",
    "-9223372036854775809",
    "1" * 400,
    "-1",
    "-0",
    "0.0",
    "1.0",
    "1E2",
    "0x10",
    "01",
    "+1",
    ".5",
    "1.",
    "true",
    "false",
    "null",
    "True",
    "None",
    "undefined",
    "[]",
    "{}",
    '""',
    "'single'",
    '"unterminated',
    "[1,]",
    '{"a":}',
    '"\\ud800"',
    '"\\udc00"',
    '"\\udfff\\ud800"',
    '"\\ud83d"',
    '"x\\ud800y"',
    '"a\\u0000b"',
    '"\\u0000"',
    '"\\u202e\\u200b"',
    '"\\ufeff"',
    '"\\u200b"',
    '"\\x41"',
    '"\\q"',
    '"\\u12"',
    '"tab\there"',
    '"line\nbreak"',
]
TYPE_VARIANTS = [*sorted(CHAT_TYPES | PAL_TYPES), "", "PING", "Ping", "ping ", " ping", "ping\x00", "p\x00ing", "send_message\u200b", "\u202eping", "send-message", "sendMessage", "connected", "error", "pong", "new_message", "message_received", "joined_channel", "history_response", "__proto__", "constructor", "chat.event", "chat_event", "chat.force_close", "websocket.disconnect", "x" * 1000]
FIELD_NAMES = [
    "type",
    "requestId",
    "channelId",
    "afterId",
    "content",
    "messageType",
    "fileUrl",
    "replyTo",
    "clientId",
    "messageId",
    "recipientId",
    "conversationId",
    "before",
    "limit",
    "streaming",
    "isAI",
    "authorId",
    "userId",
    "__proto__",
    "",
    "\x00",
]


def dump(value: Any, ascii_only: bool) -> str:
    """JSON text that is valid as a WebSocket text frame: lone surrogates
    become \\uXXXX escapes (a text frame cannot carry them raw)."""
    text = json.dumps(value, ensure_ascii=ascii_only)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = json.dumps(value, ensure_ascii=True)
    return text


def build_deep(args: tuple[int, str]) -> str:
    depth, kind = args
    if kind == "array":
        return "[" * depth + "]" * depth
    if kind == "object":
        return '{"a":' * depth + "1" + "}" * depth
    half = max(1, depth // 2)
    return '[{"type":' * half + '"ping"' + "}]" * half


DEEP_RAW = st.tuples(
    st.one_of(st.integers(1, 1000), st.sampled_from([1000, 1022, 1023, 1024, 1025])), st.sampled_from(["array", "object", "mixed"])
).map(build_deep)
RAW_VALUES = st.one_of(st.sampled_from(RAW_LITERALS), DEEP_RAW)
JSON_SCALARS = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=20))
JSON_VALUES = st.recursive(
    JSON_SCALARS, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=10
)
REQUEST_IDS = st.one_of(
    st.just(MISSING),
    st.just(MISSING),
    st.text(max_size=16),
    st.sampled_from(["", "r" * MAX_REQUEST_ID, "r" * (MAX_REQUEST_ID + 1), "\x00", "\ud800", "\u202e", "~sync-0"]),
    st.integers(),
    st.none(),
    st.booleans(),
    st.lists(st.integers(), max_size=2),
)


