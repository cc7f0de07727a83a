"""Order on every connection (PROTOCOL.md: "On each connection a channel's
`new_message` events, the sender's own answer included, arrive in id order
... on every message store and across processes"): several people send at
the same moment through two server processes on one Redis, listeners sit on
both processes, and every other round everyone reconnects with `afterId` =
the newest id on their screen. Each connection's arrivals (catch-up pages,
broadcasts, its own answers) must be strictly increasing, and together with
what came before they must hold every message once.

Runs on the store of the run (`make test` runs tests/reliability/test_order.py
on sql, cassandra and mongodb)."""

from __future__ import annotations

import asyncio

import pytest

from tests.e2e.conftest import Classroom
from tests.e2e.harness import Person, Server
from tests.reliability.faults import RedisProcess, server_env
from tests.reliability.ledger import ChatClient, channel_history
from tests.reliability.record import record

pytestmark = [pytest.mark.e2e, pytest.mark.needs_redis]

SENDERS = 6
ROUNDS = 12


@pytest.fixture
def two_processes():
    redis = RedisProcess().start()
    servers: list[Server] = []
    try:
        env = server_env("order", redis.url())
        for name in ("order-a", "order-b"):
            servers.append(Server(env, log_name=name).start())
        yield servers
    finally:
        for server in servers:
            server.stop()
        redis.stop()


async def test_simultaneous_senders_on_two_processes_arrive_in_order_once(two_processes):
    node_a, node_b = two_processes
    room = await asyncio.to_thread(Classroom, node_a)
    people = [room.alice, room.bob] + [await asyncio.to_thread(_member, room) for _ in range(SENDERS - 2)]
    senders = [ChatClient(p if i % 2 == 0 else p.relogin(node_b), room.general, f"s{i}") for i, p in enumerate(people)]
    listeners = [ChatClient(room.teacher, room.general, "listen-a"), ChatClient(room.teacher.relogin(node_b), room.general, "listen-b")]
    everyone = senders + listeners
    for client in everyone:
        await client.connect()
    for round_ in range(ROUNDS):
        outcomes = await asyncio.gather(*(c.send(*c.new_client_id()) for c in senders))
        assert outcomes == ["ack"] * SENDERS, outcomes
        if round_ % 2:
            await asyncio.gather(*(c.connect() for c in everyone))  # resume from the newest id on screen
        else:
            await asyncio.gather(*(c.pump(0.05) for c in everyone))
    await asyncio.gather(*(c.connect() for c in everyone))
    await asyncio.gather(*(c.pump(0.5) for c in everyone))
    for client in everyone:
        await client.drop()

    history = await asyncio.to_thread(channel_history, room.teacher, room.general)
    history_ids = [m["id"] for m in history]
    out_of_order = {c.name: c.order_violations()[:3] for c in everyone if c.order_violations()}
    missing = {}
    for c in everyone:
        own = {m["id"] for m in c.acked.values()}
        seen = set(c.received) | own
        if set(history_ids) - seen:
            missing[c.name] = sorted(set(history_ids) - seen)[:3]
    connections = sum(len(c.sockets) for c in everyone)
    record(
        "order",
        senders=SENDERS,
        rounds=ROUNDS,
        processes=2,
        messages=len(history_ids),
        connections=connections,
        arrivals=sum(len(ws.arrivals) for c in everyone for ws in c.sockets),
        out_of_order_or_repeated=sum(len(c.order_violations()) for c in everyone),
        clients_missing_messages=len(missing),
        passed=not out_of_order and not missing and len(history_ids) == SENDERS * ROUNDS,
    )
    assert len(history_ids) == SENDERS * ROUNDS and history_ids == sorted(set(history_ids))
    assert not out_of_order, f"a connection was given a message twice or out of id order (channel, id, newest before): {out_of_order}"
    assert not missing, f"messages a connection never got, live or by catch-up: {missing}"


def _member(room: Classroom) -> Person:
    person = Person(room.server)
    r = room.teacher.http.post(f"/api/workspaces/{room.workspace_id}/members/", {"username": person.username, "role": "student"})
    assert r.status_code == 201, r.text
    return person
