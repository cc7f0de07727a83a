"""Faults (issue 8): Redis crashes and comes back, the message store stops and
comes back, a client stops reading. Real daphne processes (python -m
chatsite.server), real websockets clients, and services of the test's own
(private redis-server / FerretDB on free loopback ports) that the test kills;
the shared Redis and PostgreSQL are never touched.

The invariant checked after every fault: each message the server
acknowledged (a direct `new_message` answer) is in the channel's history
exactly once, at the id it was acknowledged with, ids strictly increasing;
each client received it live or through `afterId` catch-up, and never twice;
a send that was not acknowledged, retried with its clientId after recovery,
is stored exactly once.

The heartbeat fault (a client that stops answering pings is closed within
ping interval + timeout) is tests/e2e/test_chat_e2e.py::
test_client_that_stops_answering_pings_is_closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import sqlite3
import threading
import time
from collections import Counter
from urllib.parse import urlparse

import pytest
import websockets

from tests import ferretdb
from tests.e2e.conftest import Classroom
from tests.e2e.harness import Server, migrate
from tests.reliability.faults import (
    CONNECT_ERRORS,
    ChatClient,
    FerretProcess,
    RedisProcess,
    StalledReader,
    assert_alive,
    channel_history,
    explain_gap,
    health,
    ledger_check,
    percentile,
    rss_mb,
    server_env,
    wait_health,
)
from tests.reliability.record import record

pytestmark = [pytest.mark.e2e, pytest.mark.needs_redis]

ALLOWED_FAILURES = {"server_error", "closed", "timeout"}


def figures(title: str, store: str | None = None, **values) -> None:
    """The test's figures, printed and kept for docs/reliability.md (record.py)."""
    record(re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-"), store=store, **values)


@pytest.fixture
def private_redis():
    redis = RedisProcess().start()
    yield redis
    redis.stop()


@pytest.fixture
def started():
    """Servers a test starts, stopped at teardown (logs: Server.log_path)."""
    servers: list[Server] = []
    yield servers
    for server in servers:
        server.stop()


def check_clients(clients: list[ChatClient], history: list[dict]) -> dict:
    """Per client: every acknowledged message of the others arrived live or by
    catch-up, none twice. Returns the figures; asserts."""
    acked_ids = {m["id"]: (c.name, cid) for c in clients for cid, m in c.acked.items()}
    missing: dict[str, list] = {}
    repeated: dict[str, list] = {}
    for c in clients:
        counts = Counter(c.received)
        repeated[c.name] = [i for i, n in counts.items() if n > 1]
        others = {i for i, (name, _) in acked_ids.items() if name != c.name}
        missing[c.name] = sorted(acked_ids[i] for i in others - set(counts))
    assert not any(repeated.values()), f"a client received a message twice: {repeated}"
    if any(missing.values()):
        by_key = {v: k for k, v in acked_ids.items()}
        why = [f"{c.name} misses {key} (id {by_key[key]}): {explain_gap(c, by_key[key])}" for c in clients for key in missing[c.name]]
        raise AssertionError("acknowledged messages a client never received (live or catch-up):\n" + "\n".join(why))
    return {"received": sum(len(c.received) for c in clients)}


def overtaken(client: ChatClient) -> int:
    """Broadcasts that reached the client after the direct answer to one of its
    own sends with a higher id, on the same connection."""
    count, newest_ack = 0, 0
    for kind, detail in client.timeline:
        if kind == "ack":
            newest_ack = max(newest_ack, detail)
        elif kind == "recv" and detail < newest_ack:
            count += 1
        elif kind == "drop":
            newest_ack = 0
    return count


def assert_ledger(clients: list[ChatClient], history: list[dict]) -> dict:
    acked = {}
    for c in clients:
        assert not c.pending, f"{c.name} still has unacknowledged sends: {list(c.pending)}"
        acked.update(c.acked_keys())
    result = ledger_check(history, acked)
    bad = {k: result[k] for k in ("gaps", "duplicates", "id_changed", "not_increasing", "repeated_ids") if result[k]}
    assert not bad, f"history does not match what was acknowledged: {result}"
    stray = [m for m in history if (m["authorId"], m.get("clientId")) not in acked]
    assert not stray, f"stored but never acknowledged, even after the retries: {stray[:3]}"
    return result


# --------------------------------------------------------------- 1. Redis


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
        deadline = time.monotonic() + 30
        base = {c.name: len(c.acked) for c in clients}
        while time.monotonic() < deadline and not all(c.ws is not None and len(c.acked) > base[c.name] + 5 for c in clients):
            await asyncio.sleep(0.2)
        assert all(len(c.acked) > base[c.name] + 5 for c in clients), f"no recovery after Redis came back: {stats}"
        await asyncio.sleep(1.0)
    finally:
        stop.set()
        results = await asyncio.gather(*tasks, return_exceptions=True)
    errors = [r for r in results if isinstance(r, BaseException)]
    assert not errors, errors
    assert_alive(server)

    # Final: reconnect with afterId, retry what is still unacknowledged, then
    # one live message each way proves broadcast works after the restart.
    for c in clients:
        await c.connect()
        await c.retry_pending()
    for c in clients:
        client_id, content = c.new_client_id()
        assert await c.send(client_id, content) == "ack"
    for c in clients:
        await c.pump(1.0)
    history = channel_history(room.teacher, room.general)
    for c in clients:
        await c.drop()
    ledger = assert_ledger(clients, history)
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


# ------------------------------------------------------- 2. message store


class SqlTableOffline:
    """The SQL message store goes away: its table is renamed from outside
    (SQLite file or the test's own PostgreSQL database), so every store call
    fails with a DatabaseError while users, sessions and channels still work.
    Renamed back, the store returns with its data."""

    label = "sql store table offline"
    store = "sql"

    def __init__(self, env: dict[str, str]):
        self.url = env["DATABASE_URL"]

    def _execute(self, sql: str) -> None:
        if self.url.startswith("sqlite:"):
            path = urlparse(self.url).path
            path = path[1:] if path.startswith("//") else path
            conn = sqlite3.connect(path, timeout=30)
            try:
                conn.execute(sql)
                conn.commit()
            finally:
                conn.close()
        else:
            import psycopg

            with psycopg.connect(self.url, autocommit=True) as conn:
                conn.execute(sql)

    def stop(self) -> None:
        self._execute("ALTER TABLE chatcore_message RENAME TO chatcore_message_offline")

    def resume(self) -> None:
        self._execute("ALTER TABLE chatcore_message_offline RENAME TO chatcore_message")


class MongoProcessKilled:
    """The MongoDB store's server (a private FerretDB) is killed, then started
    again on the same port with the same files."""

    label = "mongodb store process killed"
    store = "mongodb"

    def __init__(self, ferret: FerretProcess):
        self.ferret = ferret

    def stop(self) -> None:
        self.ferret.kill()

    def resume(self) -> None:
        self.ferret.start()


@pytest.fixture(params=["sql", "mongodb"])
def store_fault(request, private_redis, started):
    """(server, fault) for each store this build can serve."""
    if request.param == "sql":
        env = server_env("store_sql", private_redis.url(), CHAT_MESSAGE_STORE="sql")
        server = Server(env, log_name="store-sql").start()
        started.append(server)
        yield server, SqlTableOffline(env)
        return
    ferret = FerretProcess().start()
    try:
        env = server_env("store_mongo", private_redis.url(), CHAT_MESSAGE_STORE="mongodb", MONGODB_URI=ferret.uri, FERRETDB_SQLITE_DIR=ferret.data_dir)
        # The database is a copy of one migrated for sql: the store's schema,
        # and the operator's FerretDB index, as a deployment has them.
        migrate(env)
        server = Server(env, log_name="store-mongodb").start()
        started.append(server)
        serving = health(server)[1].get("checks", {}).get("messageStore")
        assert serving == "mongodb", f"CHAT_MESSAGE_STORE=mongodb fell back: healthz messageStore={serving!r}"
        plan = ferretdb.lookup_plan(ferret.data_dir, "chat", "message_locators")
        assert "USING INDEX" in plan, plan
        yield server, MongoProcessKilled(ferret)
    finally:
        ferret.stop()


REFUSED = 3  # sends while the store is down (each waits for the store's timeout)


async def typing_keepalive(clients: list[ChatClient], every: float = 1.0) -> None:
    while True:
        for c in clients:
            if c.ws is not None:
                await c.ws.send({"type": "typing", "channelId": c.channel_id})
        await asyncio.sleep(every)


async def test_message_store_stopped(store_fault):
    server, fault = store_fault
    room = Classroom(server)
    sender = ChatClient(room.alice, room.general, "alice", resume_from="stream")
    reader = ChatClient(room.bob, room.general, "bob", resume_from="stream")
    await sender.connect()
    await reader.connect()
    for _ in range(5):
        assert await sender.send(*sender.new_client_id()) == "ack"
    await reader.pump(0.5)

    # Channel-layer traffic for both connections while sends wait on the
    # store: without it the idle-connection bug (test_idle_connection_stays_open)
    # would close them and hide what this test checks.
    keepalive = asyncio.create_task(typing_keepalive([sender, reader]))
    fault.stop()
    try:
        status, body = await asyncio.to_thread(wait_health, server, 503, 15)
        assert status == 503 and body["checks"]["messageStore"] == "failing", (status, body)
        outcomes = Counter()
        for _ in range(REFUSED):
            outcome = await sender.send(*sender.new_client_id(), timeout=20)
            outcomes[outcome] += 1
        assert outcomes == {"server_error": REFUSED}, f"while the store is down every send must answer server_error: {outcomes}"
        # The connection stays usable, nobody hears of the failed messages.
        assert (await sender.ws.request({"type": "ping"}, "pong"))["type"] == "pong"
        await reader.ws.expect_none("new_message", wait=0.5)
        # A catch-up that cannot be served must say so, never answer an empty page.
        late = await room.teacher.connect()
        answer = await late.request({"type": "join_channel", "channelId": room.general, "afterId": 1}, "joined_channel", timeout=20)
        assert answer["type"] == "error" and answer["code"] == "server_error", answer
        await late.close()
        history_status = room.teacher.http.get(f"/api/channels/{room.general}/messages/").status_code
        assert history_status >= 500, f"history while the store is down answered {history_status}"
        assert_alive(server)
    finally:
        fault.resume()
        keepalive.cancel()
        with contextlib.suppress(BaseException):
            await keepalive

    status, body = await asyncio.to_thread(wait_health, server, 200, 30)
    assert status == 200, f"healthz after the store came back: {status} {body}"
    failed = len(sender.pending)
    await sender.retry_pending(timeout=20)
    for _ in range(5):
        assert await sender.send(*sender.new_client_id()) == "ack"
    await reader.pump(1.0)
    history = channel_history(room.teacher, room.general)
    ledger = assert_ledger([sender, reader], history)
    check_clients([sender, reader], history)
    await sender.drop()
    await reader.drop()
    figures(
        "message store stopped",
        store=fault.store,
        acknowledged=ledger["acknowledged"],
        in_history=ledger["messages"],
        refused_while_down=failed,
        retried_after=failed,
        history_while_down=history_status,
        gaps=ledger["gaps"],
        duplicates=ledger["duplicates"],
    )


# ------------------------------------------------------ 3. slow consumer

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


# ------------------------------------------- idle connections, resume point


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
