"""What the load generator needs to know to speak to each server under test:
how to open and join, how a published message looks on the wire, and how the
publisher recognises the server's answer to it.

Every target carries the same marker in the published text,
`b|<step>|<seq>|<sent microseconds since the epoch>`, and every server copies
that text into what it delivers. Receivers find it with one regex over the
raw frame instead of decoding JSON, so the client side costs the same per
delivery whatever the server, and as little as possible (on 2 cores the
clients compete with the server for CPU).
"""

from __future__ import annotations

import asyncio
import json
import re
import time
import uuid
from dataclasses import dataclass, field

# step | seq | sent_us
MARK = re.compile(rb"b\|(\d+)\|(\d+)\|(\d+)")
HANDSHAKE_TIMEOUT = 30.0

OK, REFUSED, ERROR = "ok", "refused", "error"


class Refused(Exception):
    """The server answered the handshake with a refusal: retrying cannot help."""


def marker(step: int, seq: int) -> str:
    return f"b|{step}|{seq}|{time.time_ns() // 1000}"


async def _recv_until(ws, predicate, what: str) -> bytes:
    """Frames until one satisfies `predicate` (others, such as presence events
    of earlier joiners, are skipped); bounded by HANDSHAKE_TIMEOUT."""
    deadline = time.monotonic() + HANDSHAKE_TIMEOUT
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError(f"no {what} within {HANDSHAKE_TIMEOUT}s")
        raw = await asyncio.wait_for(ws.recv(decode=False), left)
        if predicate(raw):
            return raw


@dataclass(frozen=True)
class Target:
    """Base: a WebSocket server on loopback at `port`."""

    port: int
    # The publisher learns of acceptance only from its own copy of the
    # broadcast (the baselines have no direct answer): then there is no
    # accept rate apart from delivery.
    ack_is_delivery = True

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url(self) -> str:
        raise NotImplementedError

    def headers(self, credential: str | None) -> dict[str, str]:
        return {"Origin": self.origin}

    async def handshake(self, ws, join: bool) -> None:
        """After the WebSocket opened: whatever the protocol needs until this
        connection receives the channel's messages (when `join`)."""

    def publish(self, step: int, seq: int) -> str:
        raise NotImplementedError

    def answer(self, raw: bytes) -> tuple[int, str] | None:
        """The publisher's view of a frame: (seq, OK|REFUSED|ERROR) if it
        answers a published message. Default: the echo of the room broadcast."""
        m = MARK.search(raw)
        return (int(m.group(2)), OK) if m else None

    def answers(self, raw: bytes) -> list[tuple[int, str]]:
        """Every answer in a frame (a server that merges writes puts several in one)."""
        found = self.answer(raw)
        return [] if found is None else [found]

    def keepalive(self, raw: bytes) -> str | None:
        """A reply the protocol requires to this frame, if any."""
        return None


@dataclass(frozen=True)
class OurChat(Target):
    """/ws/chat/ of PROTOCOL.md, logged in with a seeded session cookie."""

    channel_id: int = 0
    # Unique per server run: the database outlives a run, and a clientId the
    # server already stored is answered from the store and not broadcast
    # again (PROTOCOL.md's safe retry).
    client_id_prefix: str = field(default_factory=lambda: uuid.uuid4().hex[:8])
    ack_is_delivery = False

    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws/chat/"

    def headers(self, credential: str | None) -> dict[str, str]:
        return {"Origin": self.origin, "Cookie": f"sessionid={credential}"}

    async def handshake(self, ws, join: bool) -> None:
        hello = await _recv_until(ws, lambda raw: b'"type":"connected"' in raw or b'"type":"error"' in raw, "connected")
        if b'"type":"error"' in hello:
            raise Refused(hello.decode(errors="replace")[:200])
        if join:
            await ws.send(json.dumps({"type": "join_channel", "channelId": self.channel_id, "requestId": "join"}))
            joined = await _recv_until(ws, lambda raw: b'"requestId":"join"' in raw, "joined_channel")
            if b'"type":"joined_channel"' not in joined:
                raise Refused(joined.decode(errors="replace")[:200])

    def publish(self, step: int, seq: int) -> str:
        # requestId ties the direct answer to the message; clientId makes a
        # retry idempotent (unused here, but it is what a real client sends).
        return json.dumps(
            {"type": "send_message", "channelId": self.channel_id, "content": marker(step, seq), "clientId": f"{self.client_id_prefix}-{seq}", "requestId": f"p{seq}"}
        )

    _REQUEST = re.compile(rb'"requestId":"p(\d+)"')

    def answer(self, raw: bytes) -> tuple[int, str] | None:
        m = self._REQUEST.search(raw)
        if m is None:
            return None
        if b'"type":"new_message"' in raw:
            return int(m.group(1)), OK
        return int(m.group(1)), REFUSED if b'"rate_limited"' in raw else ERROR


@dataclass(frozen=True)
class ChannelsTutorial(Target):
    """bench/baselines/channels_tutorial: joined to the room by the URL."""

    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws/chat/bench/"

    def publish(self, step: int, seq: int) -> str:
        return json.dumps({"message": marker(step, seq)})


@dataclass(frozen=True)
class SocketIO(Target):
    """bench/baselines/socketio_app, spoken as raw Engine.IO 4 / Socket.IO 5
    frames over a websockets connection (the same client library as the other
    targets, instead of python-socketio's heavier client)."""

    room: str = "bench"

    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/socket.io/?EIO=4&transport=websocket"

    async def handshake(self, ws, join: bool) -> None:
        await _recv_until(ws, lambda raw: raw.startswith(b"0{"), "Engine.IO open")
        await ws.send("40")  # connect to the default namespace
        await _recv_until(ws, lambda raw: raw.startswith(b"40"), "Socket.IO connect")
        if join:
            await ws.send("421" + json.dumps(["join", self.room]))  # ack id 1
            await _recv_until(ws, lambda raw: raw.startswith(b"431"), "join ack")

    def publish(self, step: int, seq: int) -> str:
        return "42" + json.dumps(["msg", {"room": self.room, "text": marker(step, seq)}])

    def keepalive(self, raw: bytes) -> str | None:
        return "3" if raw == b"2" else None  # Engine.IO ping -> pong


@dataclass(frozen=True)
class Centrifugo(Target):
    """Centrifugo v6 (bench/centrifugo.py), spoken in its bidirectional JSON
    protocol: commands `{"id", "connect"|"subscribe"|"publish"}`, replies with
    the same id, publications as `{"push": {"channel", "pub": {"data"}}}`.
    Centrifugo merges writes: one frame may hold several replies and pushes,
    one per line (the receivers count every marker of a frame). Ids above
    100 are publishes (id - 100 = seq)."""

    channel: str = "bench"
    ack_is_delivery = False

    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/connection/websocket"

    async def handshake(self, ws, join: bool) -> None:
        await ws.send('{"id":1,"connect":{}}')
        hello = await _recv_until(ws, lambda raw: b'"id":1' in raw, "connect reply")
        if b'"error"' in hello:
            raise Refused(hello.decode(errors="replace")[:200])
        if join:
            await ws.send(json.dumps({"id": 2, "subscribe": {"channel": self.channel}}))
            joined = await _recv_until(ws, lambda raw: b'"id":2' in raw, "subscribe reply")
            if b'"error"' in joined:
                raise Refused(joined.decode(errors="replace")[:200])

    def publish(self, step: int, seq: int) -> str:
        return json.dumps({"id": seq + 100, "publish": {"channel": self.channel, "data": {"text": marker(step, seq)}}})

    _REPLY = re.compile(rb'\{"id":(\d+)(,"error")?')

    def answer(self, raw: bytes) -> tuple[int, str] | None:
        found = self.answers(raw)
        return found[0] if found else None

    def answers(self, raw: bytes) -> list[tuple[int, str]]:
        return [(int(m.group(1)) - 100, ERROR if m.group(2) else OK) for m in self._REPLY.finditer(raw) if int(m.group(1)) > 100]

    def keepalive(self, raw: bytes) -> str | None:
        return "{}" if raw.strip() == b"{}" else None  # Centrifugo's ping -> pong
