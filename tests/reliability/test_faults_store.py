"""Faults (issue 8): the message store stops and comes back, on each store
this build serves: the SQL store's table goes offline, the MongoDB store's
server (a private FerretDB, tests/reliability/faults.py) is killed. While it
is down every send answers `server_error`; after it returns, the retried
sends are stored once each and the ledger (tests/reliability/ledger.py)
holds."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections import Counter
from urllib.parse import urlparse

import pytest

from tests import ferretdb
from tests.e2e.conftest import Classroom
from tests.e2e.harness import Server, migrate
from tests.reliability.faults import FerretProcess, assert_alive, health, server_env, wait_health
from tests.reliability.ledger import ChatClient, assert_ledger, channel_history, check_clients
from tests.reliability.record import figures

pytestmark = [pytest.mark.e2e, pytest.mark.needs_redis]


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
