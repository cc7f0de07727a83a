"""Faults (issue 8): Redis crashes and comes back. Real daphne processes
(python -m chatsite.server), real websockets clients, and a private
redis-server on a free loopback port (tests/reliability/faults.py) that the
test kills; the shared Redis and PostgreSQL are never touched. After the
fault, the ledger (tests/reliability/ledger.py) must hold."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter

import pytest
import websockets

from tests.e2e.conftest import Classroom
from tests.e2e.harness import Server
from tests.reliability.faults import CONNECT_ERRORS, assert_alive, health, server_env, wait_health
from tests.reliability.ledger import ALLOWED_FAILURES, ChatClient, check_clients, more_acks, overtaken, resume_and_read, stop_load
from tests.reliability.record import figures

pytestmark = [pytest.mark.e2e, pytest.mark.needs_redis]


async def chatter(client: ChatClient, stop: asyncio.Event, stats: Counter, *, interval: float) -> None:
    """A client with an outbox: every tick one new message joins the outbox;
    while connected the outbox is sent in order (same clientIds on retry);
    any failure drops the socket and the next tick reconnects with afterId."""
    while not stop.is_set():
        client.pending.setdefault(*client.new_client_id())
        if client.ws is None:
            try:
                await client.connect()
                stats["connects"] += 1
            except CONNECT_ERRORS as exc:  # refused, 1011, timeout: Redis is down or just back
                stats[f"connect_failed:{type(exc).__name__}"] += 1
                stats["connect_failed"] += 1
                await client.drop()
                await asyncio.sleep(interval * 3)
                continue
        for client_id, content in list(client.pending.items()):
            outcome = await client.send(client_id, content, timeout=6)
            stats[outcome] += 1
            if outcome != "ack":
                assert outcome in ALLOWED_FAILURES, f"{client.name}: unexpected answer {outcome} during a Redis fault"
                await client.drop()
                break
        await asyncio.sleep(interval)


async def test_redis_restart_while_clients_chat(private_redis, started):
    redis = private_redis
    server = Server(server_env("redis_restart", redis.url()), log_name="redis-restart").start()
    started.append(server)
    room = Classroom(server)
    # Resume from the newest id of the others' messages (own answers left
    # out): resuming from an own answer loses messages for another reason,
    # test_resume_from_newest_seen_id_misses_nothing.
    clients = [ChatClient(room.alice, room.general, "alice", resume_from="stream"), ChatClient(room.bob, room.general, "bob", resume_from="stream")]
    for c in clients:
        await c.connect()
    stop = asyncio.Event()
    stats: Counter = Counter()
    tasks = [asyncio.create_task(chatter(c, stop, stats, interval=0.05)) for c in clients]
    try:
        await asyncio.sleep(1.5)
        acked_before = sum(len(c.acked) for c in clients)
        assert acked_before > 10, f"only {acked_before} messages acknowledged before the fault: {stats}"

        redis.kill()
        outage_started = time.monotonic()
        status, body = await asyncio.to_thread(wait_health, server, 503, 10)
        assert status == 503 and body["checks"]["channelLayer"] == "failing", (status, body)
        await asyncio.sleep(2.5)  # clients keep sending into the outage
        assert_alive(server)
        status, body = await asyncio.to_thread(health, server)
        assert status == 503 and body["checks"]["channelLayer"] == "failing", (status, body)
        acked_during = sum(len(c.acked) for c in clients)
        queued_while_down = sum(len(c.pending) for c in clients)

        redis.restart()
        outage_seconds = time.monotonic() - outage_started
        restarted = time.monotonic()
        status, body = await asyncio.to_thread(wait_health, server, 200, 30)
        assert status == 200, f"healthz after Redis came back: {status} {body}"
        recovered_after = time.monotonic() - restarted
        failed_connects_before_restart = stats["connect_failed"]
        # Back to normal: every client is connected and acknowledged again.
        assert await more_acks(clients, 5, within=30), f"no recovery after Redis came back: {stats}"
        await asyncio.sleep(1.0)
    finally:
        errors = await stop_load(stop, tasks)
    assert not errors, errors
    assert_alive(server)

    # Final: reconnect with afterId, retry what is still unacknowledged, then
    # one live message each way proves broadcast works after the restart.
    history, ledger = await resume_and_read(clients, room)
    figures(
        "redis restart",
        acknowledged=ledger["acknowledged"],
        in_history=ledger["messages"],
        acked_before_fault=acked_before,
        acked_while_down=acked_during - acked_before,
        outage_s=round(outage_seconds, 1),
        queued_while_down=queued_while_down,
        received=sum(len(c.received) for c in clients),
        connects=sum(c.connects for c in clients),
        failed_connects_during_outage=failed_connects_before_restart,
        failed_connects_after_restart=stats["connect_failed"] - failed_connects_before_restart,
        send_outcomes={k: v for k, v in stats.items() if k in ("ack", *ALLOWED_FAILURES)},
        healthz_200_after_restart_s=round(recovered_after, 1),
        overtaken=sum(overtaken(c) for c in clients),
        gaps=ledger["gaps"],
        duplicates=ledger["duplicates"],
    )
    check_clients(clients, history)
    log = server.log_path.read_text()
    assert "invalid close code" not in log, "a 1011 close was refused by autobahn: the socket stayed open"


async def closed_with(ws, seconds: float) -> int | None:
    """The close code the server sends within `seconds` (events are skipped)."""
    with contextlib.suppress(websockets.ConnectionClosed):
        async with asyncio.timeout(seconds):
            while True:
                await ws.conn.recv()
    return ws.conn.close_code


async def test_channel_layer_failure_closes_sockets_with_1011(private_redis, started):
    """Redis dies under open sockets, and a client connects during the outage:
    the server closes each with 1011 (PROTOCOL.md is silent; the README says
    why) instead of leaving it open and deaf to broadcasts, and without an
    application crash. Once Redis is back, a connection is accepted at once."""
    redis = private_redis
    server = Server(server_env("layer_1011", redis.url()), log_name="layer-1011").start()
    started.append(server)
    room = Classroom(server)
    joined = await room.alice.connect()
    assert (await joined.request({"type": "join_channel", "channelId": room.general}, "joined_channel"))["type"] == "joined_channel"
    pal = await room.bob.connect("/ws/messagepal/")

    redis.kill()
    assert await closed_with(joined, 15) == 1011
    assert await closed_with(pal, 5) == 1011
    status, body = await asyncio.to_thread(wait_health, server, 503, 10)
    assert status == 503, (status, body)
    during = await room.alice.connect(expect_connected=False)
    assert await closed_with(during, 10) == 1011

    redis.start()
    status, body = await asyncio.to_thread(wait_health, server, 200, 30)
    assert status == 200, (status, body)
    # The hub's sockets to Redis are from before the crash: the first
    # connection after the restart must not pay for them.
    again = await room.alice.connect()
    answer = await again.request({"type": "join_channel", "channelId": room.general}, "joined_channel")
    assert answer["type"] == "joined_channel", answer
    await again.close()
    assert_alive(server)
    log = server.log_path.read_text()
    assert "invalid close code" not in log
    assert "Exception inside application" not in log, log[-3000:]
