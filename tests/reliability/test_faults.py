"""Faults (issue 8): idle connections and the resume point. Real daphne
processes (python -m chatsite.server) and real websockets clients on a
private redis-server (tests/reliability/faults.py); the shared Redis and
PostgreSQL are never touched.

The other faults, each checked against the same ledger
(tests/reliability/ledger.py): Redis crashes and comes back
(test_faults_redis.py), the message store stops and comes back
(test_faults_store.py), a client stops reading
(test_faults_slow_consumer.py). The heartbeat fault (a client that stops
answering pings is closed within ping interval + timeout) is
tests/e2e/test_chat_e2e.py::test_client_that_stops_answering_pings_is_closed.
"""

from __future__ import annotations

import asyncio

import pytest
import websockets

from tests.e2e.conftest import Classroom
from tests.e2e.harness import Server
from tests.reliability.faults import server_env
from tests.reliability.ledger import ChatClient, assert_ledger, channel_history, check_clients, overtaken
from tests.reliability.record import figures

pytestmark = [pytest.mark.e2e, pytest.mark.needs_redis]


async def test_idle_connection_stays_open(private_redis, started):
    """A joined connection that hears nothing for a while (a quiet channel at
    night) must stay open: only the ping/pong heartbeat may close it."""
    server = Server(server_env("idle", private_redis.url()), log_name="idle").start()
    started.append(server)
    room = Classroom(server)
    ws = await room.alice.connect()
    await ws.request({"type": "join_channel", "channelId": room.general}, "joined_channel")
    idle = 10.0
    await asyncio.sleep(idle)
    try:
        answer = await ws.request({"type": "ping"}, "pong")
    except websockets.ConnectionClosed as exc:
        raise AssertionError(
            f"an idle connection was closed within {idle:.0f}s ({exc!r}; ping interval is 20s); server log:\n{server.log()[-1500:]}"
        ) from None
    assert answer["type"] == "pong"
    await ws.close()
    figures("idle connection", idle_s=idle, still_open=True)


async def test_resume_from_newest_seen_id_misses_nothing(private_redis, started):
    """PROTOCOL.md: rejoin with `afterId` of the last message seen and catch-up
    misses nothing. Two people send at the same moment, then both reconnect
    at once (a network switch) and resume from the newest id on their screen,
    their own acknowledged message included."""
    server = Server(server_env("resume", private_redis.url()), log_name="resume").start()
    started.append(server)
    room = Classroom(server)
    clients = [ChatClient(room.alice, room.general, "alice"), ChatClient(room.bob, room.general, "bob")]
    for c in clients:
        await c.connect()
    rounds = 20
    for _ in range(rounds):
        outcomes = await asyncio.gather(*(c.send(*c.new_client_id()) for c in clients))
        assert outcomes == ["ack", "ack"], outcomes
        for c in clients:
            await c.connect()  # resume from the newest id seen
    for c in clients:
        await c.connect()
        await c.pump(0.5)
        await c.drop()
    history = channel_history(room.teacher, room.general)
    ledger = assert_ledger(clients, history)
    order = {c.name: c.order_violations()[:3] for c in clients if c.order_violations()}
    figures(
        "resume from newest seen id",
        rounds=rounds,
        acknowledged=ledger["acknowledged"],
        reconnects=sum(c.connects for c in clients),
        overtaken=sum(overtaken(c) for c in clients),
        gaps=ledger["gaps"],
        duplicates=ledger["duplicates"],
        connections_out_of_order=len(order),
    )
    check_clients(clients, history)
    assert not order, f"a connection was given a message twice or out of id order (channel, id, newest before): {order}"


async def test_catch_up_after_a_long_absence(private_redis, started):
    """A client away while a channel moved on rejoins with afterId and pages
    through `hasMore` until it has everything: catch-up must work whatever
    the size of what was missed."""
    server = Server(server_env("long_absence", private_redis.url()), log_name="long-absence").start()
    started.append(server)
    room = Classroom(server)
    sender = ChatClient(room.alice, room.general, "alice")
    await sender.connect()
    missed_count, chars = 120, 600  # about 90 KB of messages
    for _ in range(missed_count):
        client_id, _content = sender.new_client_id()
        assert await sender.send(client_id, f"{client_id} " + "m" * chars) == "ack"
    await sender.drop()
    reader = await room.bob.connect()
    ids: list[int] = []
    after, pages, failure = 1, 0, None
    while pages < 50:
        answer = await reader.request({"type": "join_channel", "channelId": room.general, "afterId": after}, "joined_channel", timeout=20)
        if answer["type"] != "joined_channel":
            failure = answer
            break
        pages += 1
        ids += [m["id"] for m in answer["missed"]]
        if not answer["hasMore"]:
            break
        after = answer["missed"][-1]["id"]
    await reader.close()
    figures("long absence", missed=missed_count, content_chars=chars, pages=pages, caught_up=len(ids), error=failure and failure["code"])
    assert failure is None, (
        f"join_channel with afterId after {missed_count} messages of {chars} chars answered {failure}; server log:\n"
        + "\n".join(line for line in server.log().splitlines() if "Error" in line or "exceed" in line)[-800:]
    )
    assert ids == [m["id"] for m in sender.acked.values()], "catch-up pages do not add up to what was sent"
