"""Faults (issue 8): a client stops reading. The server drops it at
CHAT_MAX_SEND_BUFFER_BYTES, its memory stays bounded, and the channel's
normal reader keeps up (tests/reliability/test_slow_reader.py compares the
readers' latency with and without the stalled one)."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time

import pytest

from tests.e2e.conftest import Classroom
from tests.e2e.harness import Server
from tests.reliability.faults import assert_alive, percentile, rss_mb, server_env
from tests.reliability.record import figures
from tests.reliability.stalled_reader import StalledReader

pytestmark = [pytest.mark.e2e, pytest.mark.needs_redis]

SEND_BUFFER = 256 * 1024
CONTENT_CHARS = 30_000


async def test_slow_consumer_is_dropped_and_others_keep_up(private_redis, started):
    env = server_env(
        "slow_reader",
        private_redis.url(),
        CHAT_MAX_SEND_BUFFER_BYTES=str(SEND_BUFFER),
        CHAT_MAX_MESSAGE_LENGTH=str(CONTENT_CHARS + 1000),
        CHAT_MAX_FRAME_BYTES=str(128 * 1024),
        CHAT_RATE_LIMIT_MESSAGES="5000",
        CHAT_PING_INTERVAL="120",  # the heartbeat must not be what drops it
        CHAT_PING_TIMEOUT="120",
    )
    server = Server(env, log_name="slow-reader").start()
    started.append(server)
    pid = server.proc.pid
    room = Classroom(server)
    publisher = await room.alice.connect()
    await publisher.request({"type": "join_channel", "channelId": room.general}, "joined_channel")
    reader = await room.bob.connect()
    await reader.request({"type": "join_channel", "channelId": room.general}, "joined_channel")
    stalled = await asyncio.to_thread(StalledReader, server, room.teacher.http.session_id, 4096)
    await asyncio.to_thread(stalled.join, room.general)

    rss_start = rss_mb(pid)
    samples = [rss_start]
    sampling = threading.Event()

    def sample() -> None:
        while not sampling.wait(0.05):
            samples.append(rss_mb(pid))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()

    sent_at: dict[str, float] = {}
    received_at: dict[str, float] = {}
    order: list[int] = []

    async def read_all(expected: int) -> None:
        while len(received_at) < expected:
            event = await reader.recv(timeout=30)
            if event["type"] == "new_message":
                received_at[event["message"]["clientId"]] = time.monotonic()
                order.append(event["message"]["id"])

    total, after_drop = 400, 100
    reading = asyncio.create_task(read_all(total))
    dropped_after = None
    t0 = time.monotonic()
    try:
        for i in range(total):
            client_id = f"big-{i}"
            body = f"{i:05d} " + ("x" * CONTENT_CHARS)
            sent_at[client_id] = time.monotonic()
            answer = await publisher.request(
                {"type": "send_message", "channelId": room.general, "content": body, "clientId": client_id}, "new_message", timeout=15
            )
            assert answer["type"] == "new_message", answer
            if dropped_after is None and stalled.server_dropped():
                dropped_after = i + 1
            if dropped_after is not None and i + 1 >= dropped_after + after_drop:
                total = i + 1
                break
        publish_seconds = time.monotonic() - t0
        deadline = time.monotonic() + 30
        while len(received_at) < total and time.monotonic() < deadline and not reading.done():
            await asyncio.sleep(0.05)
    finally:
        reading.cancel()
        with contextlib.suppress(BaseException):
            await reading
        sampling.set()
        sampler.join(2)
    server_state, client_state = stalled.server_side_state(), stalled.client_state()
    stalled.close()
    rss_peak = max(samples)
    latencies = [received_at[k] - sent_at[k] for k in received_at if k in sent_at]
    p50, p99 = percentile(latencies, 50), percentile(latencies, 99)
    figures(
        "slow consumer",
        published=total,
        bytes_published_mb=round(total * CONTENT_CHARS / 2**20, 1),
        stalled_dropped_after_messages=dropped_after,
        stalled_server_side=server_state,
        stalled_client_side=client_state,
        rss_start_mb=round(rss_start, 1),
        rss_peak_mb=round(rss_peak, 1),
        rss_growth_mb=round(rss_peak - rss_start, 1),
        reader_received=len(received_at),
        reader_p50_ms=round(p50 * 1000, 1),
        reader_p99_ms=round(p99 * 1000, 1),
        publish_s=round(publish_seconds, 1),
    )
    assert dropped_after is not None, f"the stalled reader was never dropped after {total} messages of {CONTENT_CHARS} chars ({server_state}/{client_state})"
    assert "dropping a slow WebSocket reader" in server.log_path.read_text(errors="replace"), "dropped, but not by the send-buffer limit"
    assert rss_peak - rss_start < 100, f"server RSS grew {rss_peak - rss_start:.0f} MB"
    assert len(received_at) == total, f"the normal reader got {len(received_at)} of {total}"
    assert order == sorted(order) and len(set(order)) == len(order), "the normal reader got messages out of order or twice"
    assert p99 < 2.0, f"the normal reader's p99 latency is {p99 * 1000:.0f} ms"
    assert_alive(server)
    await publisher.close()
    await reader.close()
