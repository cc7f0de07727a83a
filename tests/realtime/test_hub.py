"""realtime.hub (per-process fan-out) and the delivery lane of
realtime.consumers.ProtocolConsumer, on the in-memory channel layer; the
same code on Redis and real daphne runs in tests/e2e and tests/reliability."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from websockets.frames import Frame, Opcode
from websockets.streams import StreamReader

from chatsite.daphne_adapter import ReceiveQueue
from realtime import consumers as consumers_module
from realtime.consumers import RECONNECT, ProtocolConsumer
from realtime.delivery import DeliverySession
from realtime.events import Broadcast, abroadcast, channel_group, envelope, text_frame
from realtime.hub import Hub, get_hub
from wire import jsonutil


class Recorder:
    """A listener that records what the hub hands it."""

    def __init__(self) -> None:
        self.events: list[Broadcast] = []
        self.controls: list[dict[str, Any]] = []
        self.failed = 0

    def on_broadcast(self, event: Broadcast) -> None:
        self.events.append(event)

    def on_control(self, message: dict[str, Any]) -> None:
        self.controls.append(message)

    def on_layer_failed(self) -> None:
        self.failed += 1


async def until(predicate, timeout: float = 2.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        assert asyncio.get_running_loop().time() < deadline, "condition not reached in time"
        await asyncio.sleep(0.01)


@pytest.fixture
def memory_layer(in_memory_layer):
    from channels.layers import get_channel_layer

    return get_channel_layer()


async def test_one_layer_member_per_process_and_group(memory_layer):
    hub = get_hub()
    a, b, other = Recorder(), Recorder(), Recorder()
    group = channel_group(7)
    await hub.join(group, a)
    await hub.join(group, b)
    await hub.join(channel_group(8), other)
    assert memory_layer.groups[group].keys() == {hub.channel}, "the layer sees the process once, not each connection"

    await abroadcast(group, {"type": "user_typing", "channelId": 7})
    await until(lambda: a.events and b.events)
    assert a.events[0] is b.events[0], "decoded once for the whole process"
    assert a.events[0].group == group and a.events[0].kind == "user_typing" and a.events[0].channel_id == 7
    assert other.events == []


async def test_leaving_last_member_leaves_the_layer_group(memory_layer):
    hub = get_hub()
    a, b = Recorder(), Recorder()
    group = channel_group(9)
    await hub.join(group, a)
    await hub.join(group, b)
    await hub.leave(group, a)
    assert hub.channel in memory_layer.groups.get(group, {})
    hub.forget(b)  # a connection that ends without leaving
    await until(lambda: hub.channel not in memory_layer.groups.get(group, {}))
    assert group not in hub.members and b not in hub.listeners

    await abroadcast(group, {"type": "user_typing", "channelId": 9})
    await asyncio.sleep(0.05)
    assert a.events == [] and b.events == []


async def test_prepared_frame_is_built_once_and_parses_back():
    event = Broadcast(envelope("g", {"type": "pong"}))
    frame = event.frame
    assert event.frame is frame and frame == text_frame(b'{"type":"pong"}')
    for size in (0, 125, 126, 65535, 65536):
        payload = ("é" * size).encode()[:size]
        reader = StreamReader()
        reader.feed_data(text_frame(payload))
        parser = Frame.parse(reader.read_exact, mask=False)
        try:
            next(parser)
        except StopIteration as done:
            parsed = done.value
        assert parsed.opcode is Opcode.TEXT and parsed.fin and parsed.data == payload


class FlakyLayer:
    """The in-memory layer whose receive fails `failures` times (Redis down)."""

    def __init__(self, inner, failures: int = 0) -> None:
        self.inner, self.failures = inner, failures
        self.group_adds = 0
        self.silent = False  # sends vanish, receive waits: RedisPubSubChannelLayer while Redis is down
        self.failing_group_adds = 0

    async def new_channel(self):
        return await self.inner.new_channel()

    async def receive(self, channel):
        if self.failures:
            self.failures -= 1
            raise ConnectionError("redis is down")
        return await self.inner.receive(channel)

    async def send(self, channel, message):
        if not self.silent:
            await self.inner.send(channel, message)

    async def group_add(self, group, channel):
        self.group_adds += 1
        if self.failing_group_adds:
            self.failing_group_adds -= 1
            raise ConnectionError("redis is down")
        await self.inner.group_add(group, channel)

    async def group_discard(self, group, channel):
        await self.inner.group_discard(group, channel)


async def test_layer_failure_closes_connections_and_rejoins(memory_layer):
    layer = FlakyLayer(memory_layer, failures=2)
    hub = Hub(layer)
    a = Recorder()
    hub.register(a)
    await hub.join("g", a)
    await until(lambda: a.failed == 1)
    assert not await hub.wait_ready(0.01), "a new connection would miss broadcasts: it must wait"
    late = Recorder()
    hub.register(late)
    await until(lambda: layer.failures == 0)
    await until(lambda: layer.group_adds == 2, timeout=5)  # re-added once a probe comes back
    assert await hub.wait_ready(5), "the groups are back: new connections go ahead"
    assert late.failed == 0, "registered during the outage: it waited instead of being closed"
    await memory_layer.group_send("g", envelope("g", {"type": "pong"}))
    await until(lambda: len(a.events) == 1)
    assert a.failed == 1, "closed once per outage, not once per failed receive"
    hub.close()


async def test_a_group_not_re_added_after_an_outage_is_added_by_the_next_join(memory_layer):
    layer = FlakyLayer(memory_layer)
    hub = Hub(layer)
    a, b = Recorder(), Recorder()
    hub.register(a)
    await hub.join("g", a)
    layer.failing_group_adds = 1
    hub._failed("test")
    await hub._rejoin(after_outage=True)  # as the receive loop starts it once the layer answers
    assert layer.group_adds == 2
    hub._failing = False
    await hub._rejoin(after_outage=True)
    assert await hub.wait_ready(0.01)
    adds = layer.group_adds
    hub.register(b)
    await hub.join("g", b)
    assert layer.group_adds == adds, "re-added by the second rejoin: the join needs no group_add"
    layer.failing_group_adds = 1
    hub._failed("again")
    hub._failing = False
    await hub._rejoin(after_outage=True)  # fails for g: g is no layer group any more
    await hub.join("g", Recorder())
    assert layer.group_adds == adds + 2, "the next join adds the group the rejoin could not"
    hub.close()


async def test_a_silent_layer_is_noticed_by_the_probe(memory_layer, monkeypatch):
    from realtime import hub as hub_module

    monkeypatch.setattr(hub_module, "PROBE_EVERY", 0.05)
    monkeypatch.setattr(hub_module, "PROBE_TIMEOUT", 0.3)
    layer = FlakyLayer(memory_layer)
    hub = Hub(layer)
    a = Recorder()
    hub.register(a)
    await hub.join("g", a)
    await asyncio.sleep(0.5)
    assert a.failed == 0, "probes come back: nothing to do"
    layer.silent = True
    await until(lambda: a.failed == 1)
    layer.silent = False
    await until(lambda: layer.group_adds == 2)
    assert a.failed == 1
    hub.close()


def event(kind: str) -> Broadcast:
    return Broadcast(envelope("g", {"type": kind}))


class LaneConsumer(ProtocolConsumer):
    """The delivery lane alone: no socket; what it writes is recorded."""

    def __init__(self) -> None:
        self._lane = asyncio.Lock()
        self._backlog = None
        self._drainer = None
        self.check_events = False
        self.session = DeliverySession(connection="conn.test.1", user_id=1)
        self.handled: list[str] = []
        self.write_frame = lambda frame, text: self.handled.append("now:" + jsonutil.loads(text)["type"])

    async def _deliver(self, event: Broadcast) -> None:
        await asyncio.sleep(0)
        self.handled.append("later:" + event.kind)


async def test_events_wait_while_the_connection_handles_a_command():
    consumer = LaneConsumer()
    async with consumer._lane:
        consumer.on_broadcast(event("a"))
        consumer.on_broadcast(event("b"))
        assert consumer.handled == []
        await consumer._drain_backlog()
    assert consumer.handled == ["later:a", "later:b"]
    consumer.on_broadcast(event("c"))
    assert consumer.handled[-1] == "now:c", "an idle connection gets the event without a task switch"


async def test_a_stuck_connection_is_closed_not_grown(monkeypatch):
    monkeypatch.setattr(consumers_module, "MAX_BACKLOG", 5)
    consumer = LaneConsumer()
    async with consumer._lane:
        for i in range(20):
            consumer.on_broadcast(event(f"e{i}"))
        assert list(consumer._backlog) == [RECONNECT]


async def test_receive_queue_hands_items_in_order():
    queue = ReceiveQueue()
    queue.put_nowait(1)
    queue.put_nowait(2)
    assert await queue.get() == 1 and await queue.get() == 2
    waiting = asyncio.ensure_future(queue.get())
    await asyncio.sleep(0)
    queue.put_nowait(3)
    assert await waiting == 3
    cancelled = asyncio.ensure_future(queue.get())
    await asyncio.sleep(0)
    cancelled.cancel()
    await asyncio.sleep(0)
    queue.put_nowait(4)  # not lost to the cancelled getter
    assert await queue.get() == 4


# -- issue 20: batched reads on the hub, merged writes per socket ---------------------


@pytest.mark.needs_redis
async def test_queued_events_are_read_in_one_batch_in_order_once():
    """Events that queue up on Redis for the hub are taken in one call and
    handed on in their order, each once (RedisChannelLayer)."""
    import os

    from channels_redis.core import RedisChannelLayer

    from tests.conftest import require_service

    url = os.environ.get("REDIS_URL", "")
    require_service("REDIS_URL", url)  # fails in CI when Redis is missing
    layer = RedisChannelLayer(hosts=[url], prefix=f"test-batch-{os.getpid()}")
    hub = Hub(layer)
    batches: list[int] = []
    waiting = hub._waiting

    async def counted(channel: str) -> list[dict[str, Any]]:
        more = await waiting(channel)
        batches.append(len(more))
        return more

    hub._waiting = counted  # type: ignore[method-assign]
    recorder = Recorder()
    group = channel_group(4242)
    try:
        # The hub's channel in the group, its receiver not started yet: the
        # events queue up on Redis as behind a busy hub.
        hub.channel = await layer.new_channel()
        await layer.group_add(group, hub.channel)
        hub.members[group] = {recorder}  # type: ignore[arg-type]
        for n in range(30):
            await layer.group_send(group, envelope(group, {"type": "new_message", "channelId": 4242, "message": {"id": n + 1}}))
        hub._tasks = [asyncio.ensure_future(hub._receive_loop(hub.channel))]
        await until(lambda: len(recorder.events) >= 30, timeout=10)
        await asyncio.sleep(0.2)
        assert [e.message_id for e in recorder.events] == list(range(1, 31))
        assert max(batches) >= 2, batches
    finally:
        await hub.aclose()
        await layer.flush()


class FakeTransport:
    """Twisted's FileDescriptor write buffer fields, and its write."""

    def __init__(self) -> None:
        self.dataBuffer, self.offset, self._tempDataLen = b"", 0, 0
        self.writes: list[bytes] = []

    def write(self, data: bytes) -> None:
        self.writes.append(data)


class FakeProtocol:
    from daphne.ws_protocol import WebSocketProtocol

    STATE_OPEN, STATE_CLOSING = WebSocketProtocol.STATE_OPEN, WebSocketProtocol.STATE_CLOSING
    SEND_STATE_GROUND = WebSocketProtocol.SEND_STATE_GROUND

    def __init__(self) -> None:
        self.state, self.send_state, self._perMessageCompress = self.STATE_OPEN, 0, None
        self.transport = FakeTransport()
        self.send_queue: list[Any] = []


async def test_frames_of_one_loop_turn_leave_in_one_write_in_order():
    from chatsite.daphne_adapter import FrameWriter

    writer = FrameWriter(limit=1 << 20)
    one, two = FakeProtocol(), FakeProtocol()
    frames = [text_frame(f'{{"n":{n}}}'.encode()) for n in range(3)]
    for frame in frames:
        writer.write(one, frame, "")  # type: ignore[arg-type]
    writer.write(two, frames[0], "")  # type: ignore[arg-type]
    assert one.transport.writes == [] and two.transport.writes == []
    await asyncio.sleep(0)  # the end of the loop turn
    assert one.transport.writes == [b"".join(frames)] and two.transport.writes == [frames[0]]
    # Any other write to the socket sends what is pending first.
    writer.write(one, frames[1], "")  # type: ignore[arg-type]
    writer.flush_one(one)  # type: ignore[arg-type]
    assert one.transport.writes[-1] == frames[1]
    await asyncio.sleep(0)
    assert len(one.transport.writes) == 2
    # A closing socket gets nothing more.
    one.state = one.STATE_CLOSING
    writer.write(one, frames[2], "")  # type: ignore[arg-type]
    await asyncio.sleep(0)
    assert len(one.transport.writes) == 2


async def test_a_message_that_overtook_its_predecessor_reaches_the_connections_after_it(memory_layer):
    # Sent through two processes, 2 may reach a third's hub before 1: the
    # hub puts them back in order once (realtime.reorder), so no connection
    # reads 1 from the store itself.
    hub = Hub(memory_layer)
    a = Recorder()
    hub.register(a)
    group = channel_group(77)
    await hub.join(group, a)

    def new(n: int) -> dict[str, Any]:
        return envelope(group, {"type": "new_message", "channelId": 77, "message": {"id": n}}, prev_id=n - 1)

    try:
        await memory_layer.group_send(group, new(1))
        await until(lambda: len(a.events) == 1)
        await memory_layer.group_send(group, new(3))
        await memory_layer.group_send(group, envelope(group, {"type": "reaction_updated", "channelId": 77}))
        await asyncio.sleep(0.03)
        assert len(a.events) == 1, "3 and what follows it wait for 2"
        await memory_layer.group_send(group, new(2))
        await until(lambda: len(a.events) == 4)
        assert [e.message_id or e.kind for e in a.events] == [1, 2, 3, "reaction_updated"]
        assert hub.sequencer.held == 1 and hub.sequencer.timed_out == 0
    finally:
        hub.close()


async def test_an_event_the_reordering_cannot_read_is_delivered_as_it_came_and_the_hub_goes_on(memory_layer):
    hub = Hub(memory_layer)
    a = Recorder()
    hub.register(a)
    group = channel_group(78)
    await hub.join(group, a)
    try:
        hub.dispatch(envelope(group, {"type": "new_message", "channelId": 78, "message": {"id": 5}}, prev_id=4))
        odd = envelope(group, {"type": "new_message", "channelId": 78, "message": {"id": 6}}, prev_id=4)
        odd["meta"]["prevId"] = "4"  # another version's event: ids as strings
        hub.dispatch(odd)
        await memory_layer.group_send(group, envelope(group, {"type": "new_message", "channelId": 78, "message": {"id": 7}}, prev_id=6))
        await until(lambda: len(a.events) == 3)
        assert [e.message_id for e in a.events] == [5, 6, 7]
    finally:
        hub.close()
    assert hub.sequencer.holding() == 0
