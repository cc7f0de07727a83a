"""Churn (issue 8): many clients connect, send and disconnect in a loop over
two daphne processes on one Redis, for a bounded time; then a gap detector
checks every channel against what the server acknowledged.

Each client sends with sequence numbers (clientId "c07-123"), resumes every
connection with `afterId` of the newest id it has seen, alternates between
the two processes, and now and then closes its socket right after sending
(no answer awaited): that message stays in its outbox and is retried with
the same clientId on the next connection, so it must be stored exactly once
whether or not the first attempt reached the store.

Short mode (default, CI): CHURN_SECONDS=30. Long mode: CHURN_SECONDS=600
(docs/reliability.md). CHURN_CLIENTS (default 20) sets the number of clients.
"""

from __future__ import annotations

import asyncio
import os
import random
import time
from collections import Counter

import pytest

from tests.e2e.harness import Person, Server
from tests.reliability.faults import CONNECT_ERRORS, RedisProcess, app_crashes, assert_alive, layer_leftovers, server_env
from tests.reliability.ledger import ChatClient, channel_history, explain_gap, ledger_check
from tests.reliability.record import record

pytestmark = [pytest.mark.e2e, pytest.mark.needs_redis]

CHURN_SECONDS = float(os.environ.get("CHURN_SECONDS", "30"))
CHURN_CLIENTS = int(os.environ.get("CHURN_CLIENTS", "20"))
CHANNELS = 3
ABRUPT_CLOSE = 0.15
# "newest": rejoin with afterId = the newest id seen, own messages included
# (PROTOCOL.md's rule). "stream" (others' messages only) still shows a rare
# client-view gap under churn: docs/reliability.md, open findings.
RESUME_FROM = os.environ.get("CHURN_RESUME_FROM", "newest")


@pytest.fixture
def pair():
    redis = RedisProcess().start()
    servers: list[Server] = []
    try:
        env = server_env("churn", redis.url())
        for name in ("churn-a", "churn-b"):
            servers.append(Server(env, log_name=name).start())
        yield servers, redis.port
    finally:
        for server in servers:
            server.stop()
        redis.stop()


def setup_school(node: Server, other: Server, clients: int):
    """A teacher, `clients` students (each logged in on both processes) and
    CHANNELS public channels, through the HTTP API."""
    teacher = Person(node, display_name="Churn Teacher")
    r = teacher.http.post("/api/workspaces/", {"name": "Churn"})
    assert r.status_code == 201, r.text
    workspace = r.json()["id"]
    channels = []
    for n in range(CHANNELS):
        r = teacher.http.post(f"/api/workspaces/{workspace}/channels/", {"name": f"churn-{n}"})
        assert r.status_code == 201, r.text
        channels.append(r.json()["id"])
    students = []
    for _ in range(clients):
        p = Person(node)
        r = teacher.http.post(f"/api/workspaces/{workspace}/members/", {"username": p.username, "role": "student"})
        assert r.status_code == 201, r.text
        students.append((p, p.relogin(other)))
    return teacher, channels, students


async def churn(client: ChatClient, logins: tuple[Person, Person], index: int, deadline: float, stats: Counter) -> None:
    rng = random.Random(index)
    while time.monotonic() < deadline:
        client.person = logins[(index + client.connects) % 2]  # alternate processes
        try:
            await client.connect()
        except CONNECT_ERRORS as exc:
            stats[f"connect_failed:{type(exc).__name__}"] += 1
            await client.drop()
            await asyncio.sleep(0.2)
            continue
        stats["connects"] += 1
        for client_id, content in list(client.pending.items()):  # the outbox first, same clientIds
            outcome = await client.send(client_id, content)
            stats["retry:" + outcome] += 1
            if outcome != "ack":
                break
        for _ in range(rng.randint(1, 6)):
            if client.ws is None or time.monotonic() >= deadline:
                break
            client_id, content = client.new_client_id()
            outcome = await client.send(client_id, content)
            stats[outcome] += 1
            if outcome != "ack":
                await client.drop()
                break
        if client.ws is not None and rng.random() < ABRUPT_CLOSE:
            client_id, content = client.new_client_id()
            client.pending[client_id] = content
            await client.ws.send({"type": "send_message", "channelId": client.channel_id, "content": content, "clientId": client_id})
            stats["abrupt_close"] += 1
        elif client.ws is not None:
            await client.pump(rng.uniform(0.0, 0.3))
        await client.drop()
        await asyncio.sleep(rng.uniform(0.02, 0.2))


async def catch_up_all(person: Person, channel_id: int) -> list[int]:
    """Everything in the channel through join_channel afterId catch-up,
    paging on hasMore: the WebSocket side of the final check."""
    ws = await person.connect()
    ids: list[int] = []
    after = 1  # afterId must be >= 1; every id is far above it
    try:
        for _ in range(10_000):
            answer = await ws.request({"type": "join_channel", "channelId": channel_id, "afterId": after}, "joined_channel", timeout=30)
            assert answer["type"] == "joined_channel", answer
            ids += [m["id"] for m in answer["missed"]]
            if not answer["hasMore"]:
                return ids
            after = answer["missed"][-1]["id"]
        raise AssertionError("catch-up never ended")
    finally:
        await ws.close()


async def test_churn_two_processes_no_gaps_no_duplicates(pair):
    (node_a, node_b), redis_port = pair
    teacher, channels, students = await asyncio.to_thread(setup_school, node_a, node_b, CHURN_CLIENTS)
    clients = [ChatClient(logins[0], channels[i % CHANNELS], f"c{i:02d}", resume_from=RESUME_FROM) for i, logins in enumerate(students)]
    stats: Counter = Counter()
    started = time.monotonic()
    deadline = started + CHURN_SECONDS
    results = await asyncio.wait_for(
        asyncio.gather(*(churn(c, students[i], i, deadline, stats) for i, c in enumerate(clients)), return_exceptions=True),
        CHURN_SECONDS + 120,
    )
    errors = [r for r in results if isinstance(r, BaseException)]
    assert not errors, errors[:3]
    churn_seconds = time.monotonic() - started
    for server in (node_a, node_b):
        assert_alive(server)

    # Drain every outbox on the other process than the last one used.
    for i, c in enumerate(clients):
        c.person = students[i][1]
        await c.connect()
        await c.retry_pending(timeout=15)
        await c.pump(0.05)
    await asyncio.sleep(0.5)
    for c in clients:
        await c.pump(0.05)
        await c.drop()

    totals = Counter()
    failures: list[str] = []
    for channel in channels:
        members = [c for c in clients if c.channel_id == channel]
        acked = {}
        for c in members:
            assert not c.pending, f"{c.name} still has unacknowledged sends after the final retry: {list(c.pending)}"
            acked.update(c.acked_keys())
        history = await asyncio.to_thread(channel_history, teacher.relogin(node_b), channel)
        result = ledger_check(history, acked)
        stray = [m["id"] for m in history if (m["authorId"], m.get("clientId")) not in acked]
        # What each client saw (live, catch-up, own answers) against the whole
        # history (its first join was from afterId=1).
        history_ids = {m["id"] for m in history}
        client_gaps = sum(len(history_ids - set(c.received) - {m["id"] for m in c.acked.values()}) for c in members)
        client_repeats = sum(len(c.received) - len(set(c.received)) for c in members)
        try:
            via_ws = await catch_up_all(teacher, channel)
            ws_equal = via_ws == [m["id"] for m in history]
            ws_note = "" if ws_equal else f"{len(via_ws)} ids"
        except AssertionError as exc:
            ws_equal, ws_note = False, str(exc)[:200]
        print(
            f"\n[churn] channel {channel}: clients={len(members)} acknowledged={result['acknowledged']} in_history={result['messages']} "
            f"gaps={result['gaps']} duplicates={result['duplicates']} not_increasing={result['not_increasing']} "
            f"stray={len(stray)} client_view_gaps={client_gaps} client_view_repeats={client_repeats} "
            f"ws_catch_up_equal={ws_equal} {ws_note}",
            flush=True,
        )
        if result["gaps"]:
            failures.append(f"channel {channel}: acknowledged but missing: {result['gap_examples']}")
        if result["duplicates"] or result["repeated_ids"] or result["id_changed"]:
            failures.append(f"channel {channel}: stored twice or moved: {result}")
        if result["not_increasing"]:
            failures.append(f"channel {channel}: history ids are not strictly increasing")
        if stray:
            failures.append(f"channel {channel}: stored but never acknowledged, even after the retries: {stray[:5]}")
        if client_repeats:
            failures.append(f"channel {channel}: a client received the same message twice (live and catch-up)")
        if client_gaps:
            why = [
                f"{c.name}: {explain_gap(c, mid)}"
                for c in members
                for mid in sorted(history_ids - set(c.received) - {m["id"] for m in c.acked.values()})[:1]
            ]
            failures.append(
                f"channel {channel}: {client_gaps} messages never reached a client that resumed with afterId = "
                f"the newest id it had received ({RESUME_FROM}); first of each: " + " | ".join(why[:3])
            )
        if not ws_equal:
            failures.append(f"channel {channel}: join_channel catch-up from afterId=1 does not return the HTTP history: {ws_note}")
        totals.update(
            messages=result["messages"], acknowledged=result["acknowledged"], gaps=result["gaps"], duplicates=result["duplicates"],
            client_view_gaps=client_gaps,
        )
    # Every socket is closed now: nothing may stay online or subscribed.
    leftovers = layer_leftovers(redis_port)
    deadline = time.monotonic() + 10
    while any(leftovers.values()) and time.monotonic() < deadline:
        await asyncio.sleep(0.5)
        leftovers = layer_leftovers(redis_port)
    crashes = app_crashes(node_a, node_b)
    order = {c.name: c.order_violations()[:3] for c in clients if c.order_violations()}
    record(
        "churn" if CHURN_SECONDS <= 60 else "churn-long",
        seconds=round(churn_seconds),
        clients=len(clients),
        channels=CHANNELS,
        processes=2,
        messages=totals["messages"],
        acknowledged=totals["acknowledged"],
        connects=sum(c.connects for c in clients),
        abrupt_closes=stats["abrupt_close"],
        retried_acks=stats["retry:ack"],
        gaps=totals["gaps"],
        duplicates=totals["duplicates"],
        client_view_gaps=totals["client_view_gaps"],
        connections_out_of_order=len(order),
        app_crashes=crashes,
        leftovers_after_close=sum(leftovers.values()),
    )
    if order:
        failures.append(f"a connection was given a message twice or out of id order (channel, id, newest before): {order}")
    if totals["acknowledged"] < CHURN_CLIENTS * 5:
        failures.append(f"too little traffic to mean anything: {dict(totals)}")
    known = ("connects", "ack", "abrupt_close", "closed", "timeout", "retry:ack", "retry:closed", "retry:timeout", "connect_failed:")
    refused = {k: v for k, v in stats.items() if not k.startswith(known)}
    if refused:
        failures.append(f"error answers under churn, with no fault injected: {refused}")
    if any(leftovers.values()):
        failures.append(
            f"after every client closed, Redis still holds {leftovers} (presence entries / group members): "
            f"{crashes} consumers died without running disconnect ('Exception inside application' in the logs)"
        )
    assert not failures, "\n".join(failures)
