"""A reader that never reads stays isolated under the merged write path
(chatsite.daphne_adapter.FrameWriter, issue 20): while it stalls and until
the server drops it at CHAT_MAX_SEND_BUFFER_BYTES, the other readers of the
channel keep their latency. tests/reliability/test_faults_slow_consumer.py
has the one-reader version (memory bound, order); this one compares the
readers' p99 with and without the stalled reader in the same server run."""

from __future__ import annotations

import asyncio
import contextlib
import time

import pytest

from tests.e2e.conftest import Classroom
from tests.e2e.harness import Server
from tests.reliability.faults import RedisProcess, assert_alive, percentile, server_env
from tests.reliability.record import record
from tests.reliability.stalled_reader import StalledReader

pytestmark = [pytest.mark.e2e, pytest.mark.needs_redis]

READERS = 20
MESSAGES = 150  # per phase: enough for the stalled reader to pass the send-buffer limit
RATE = 25.0  # messages per second
CONTENT_CHARS = 30_000
SEND_BUFFER = 256 * 1024


async def publish_phase(publisher, readers, channel_id: int, phase: str) -> list[float]:
    """MESSAGES paced at RATE; every reader's latency for every message."""
    sent_at: dict[str, float] = {}
    latencies: list[float] = []
    got = [0] * len(readers)

    async def read(i: int, ws) -> None:
        while got[i] < MESSAGES:
            event = await ws.recv(timeout=30)
            if event["type"] == "new_message" and event["message"]["clientId"].startswith(phase):
                latencies.append(time.monotonic() - sent_at[event["message"]["clientId"]])
                got[i] += 1

    reading = [asyncio.create_task(read(i, ws)) for i, ws in enumerate(readers)]
    try:
        start = time.monotonic()
        for n in range(MESSAGES):
            await asyncio.sleep(max(0.0, start + n / RATE - time.monotonic()))
            client_id = f"{phase}-{n}"
            sent_at[client_id] = time.monotonic()
            answer = await publisher.request(
                {"type": "send_message", "channelId": channel_id, "content": f"{n:05d} " + "x" * CONTENT_CHARS, "clientId": client_id},
                "new_message",
                timeout=15,
            )
            assert answer["type"] == "new_message", answer
        await asyncio.wait_for(asyncio.gather(*reading), 60)
    finally:
        for task in reading:
            task.cancel()
        for task in reading:
            with contextlib.suppress(BaseException):
                await task
    assert got == [MESSAGES] * len(readers), f"{phase}: deliveries per reader {got}"
    return latencies


async def test_a_stalled_reader_leaves_the_others_p99_unchanged():
    redis = RedisProcess().start()
    server = None
    try:
        env = server_env(
            "slow_reader_p99",
            redis.url(),
            CHAT_MAX_SEND_BUFFER_BYTES=str(SEND_BUFFER),
            CHAT_MAX_MESSAGE_LENGTH=str(CONTENT_CHARS + 1000),
            CHAT_MAX_FRAME_BYTES=str(128 * 1024),
            CHAT_RATE_LIMIT_MESSAGES="5000",
            CHAT_MAX_CONNECTIONS_PER_USER=str(READERS + 5),
            CHAT_PING_INTERVAL="120",
            CHAT_PING_TIMEOUT="120",
        )
        server = Server(env, log_name="slow-reader-p99").start()
        room = Classroom(server)
        publisher = await room.alice.connect()
        await publisher.request({"type": "join_channel", "channelId": room.general}, "joined_channel")
        readers = []
        for _ in range(READERS):
            ws = await room.bob.connect()
            await ws.request({"type": "join_channel", "channelId": room.general}, "joined_channel")
            readers.append(ws)

        alone = await publish_phase(publisher, readers, room.general, "alone")
        stalled = await asyncio.to_thread(StalledReader, server, room.teacher.http.session_id, 4096)
        await asyncio.to_thread(stalled.join, room.general)
        beside = await publish_phase(publisher, readers, room.general, "stalled")
        dropped = stalled.server_dropped()
        stalled.close()

        p99_alone, p99_beside = percentile(alone, 99), percentile(beside, 99)
        record(
            "stalled-reader-p99",
            readers=READERS,
            messages_per_phase=MESSAGES,
            rate=RATE,
            content_chars=CONTENT_CHARS,
            p50_alone_ms=round(percentile(alone, 50) * 1000, 1),
            p99_alone_ms=round(p99_alone * 1000, 1),
            p50_beside_stalled_ms=round(percentile(beside, 50) * 1000, 1),
            p99_beside_stalled_ms=round(p99_beside * 1000, 1),
            stalled_dropped=dropped,
        )
        assert dropped, "the stalled reader was not dropped"
        assert "dropping a slow WebSocket reader" in server.log_path.read_text(errors="replace"), "dropped, but not by the send-buffer limit"
        # Unchanged within the noise of a shared 2-core machine.
        assert p99_beside <= 2 * p99_alone + 0.1, f"p99 {p99_beside * 1000:.0f} ms beside the stalled reader, {p99_alone * 1000:.0f} ms without"
        assert_alive(server)
        await publisher.close()
        for ws in readers:
            await ws.close()
    finally:
        if server is not None:
            server.stop()
        redis.stop()
