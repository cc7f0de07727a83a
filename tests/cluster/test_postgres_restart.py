"""Fault 4 of issue 19: PostgreSQL restarts under load.

A throwaway PostgreSQL cluster of the test's own (tests.cluster.
sentinel_fixtures.PostgresInstance: never the shared one on 5433) holds the
relational data and the messages (SQL store), a private Redis the channel
layer; one daphne process; three people in one channel send ~15 messages a
second over real websockets. PostgreSQL is stopped (`pg_ctl -m fast`: every
session is cut, as in an operator's restart), kept down a few seconds, and
started again. Checked:

- during the outage every send is answered, promptly, with the protocol
  `error` event code `server_error` (no hang, no closed socket, no crash);
  an edit is refused the same way;
- nothing half-written: every acknowledged message is in history once; every
  stored message was acknowledged (sends that failed were retried with their
  clientId afterwards); each stream head is the stream's newest message; the
  edit refused during the outage left the message and the change feed as
  they were;
- service resumes without restarting daphne (the same sockets send again),
  and the search index (fed after commit) has every stored message.

Figures: test-artifacts/cluster/postgres-restart.json.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections import Counter

import psycopg
import pytest

from messagestore.streams import channel_stream
from tests.cluster.sentinel_fixtures import PostgresInstance, private_postgres, write_figures
from tests.e2e.conftest import Classroom
from tests.e2e.harness import Server, migrate, server_base_env
from tests.reliability.faults import RedisProcess, app_crashes, assert_alive, percentile
from tests.reliability.ledger import ChatClient, assert_ledger, channel_history, check_clients, more_acks, stop_load

pytestmark = [pytest.mark.e2e]

__all__ = ["private_postgres"]  # the fixture, imported for pytest

SEND_INTERVAL = 0.15
OUTAGE = 4.0  # seconds PostgreSQL stays down
# "No hang": a send during the outage is answered within this.
ANSWER_WITHIN = 5.0


def private_env(pg: PostgresInstance, redis: RedisProcess) -> dict[str, str]:
    """The e2e server environment (tests/reliability/faults.server_env), on
    the private PostgreSQL (migrated here) and Redis."""
    env = server_base_env(drop=("REDIS_SENTINEL",))
    env.update({"CHAT_MESSAGE_STORE": "sql", "REDIS_URL": redis.url(), "DATABASE_URL": pg.url})
    migrate(env)
    return env


class Load:
    def __init__(self) -> None:
        self.stats: Counter = Counter()
        self.down: tuple[float, float] | None = None  # (stopped, started again), monotonic
        self.during: list[tuple[str, float]] = []  # (outcome, seconds to the answer) while down
        self.acks: list[float] = []


async def chatter(client: ChatClient, stop: asyncio.Event, load: Load) -> None:
    """Sends its outbox in order on one socket, never reconnecting: a failed
    send stays in the outbox and is retried, same clientId, next tick."""
    while not stop.is_set():
        client.pending.setdefault(*client.new_client_id())
        for client_id, content in list(client.pending.items()):
            started = time.monotonic()
            outcome = await client.send(client_id, content, timeout=10)
            answered = time.monotonic()
            load.stats[outcome] += 1
            down = load.down
            if down is not None and down[0] <= started and (down[1] == 0 or started <= down[1]):
                load.during.append((outcome, answered - started))
            if outcome == "ack":
                load.acks.append(answered)
                continue
            break
        await asyncio.sleep(SEND_INTERVAL)


def stream_state(pg: PostgresInstance, stream: str) -> dict:
    """The SQL store's rows of `stream`, read straight from the database."""
    from messagestore.models import Change, Message, StreamHead
    from search.models import SearchEntry

    messages, heads, changes, index = (m._meta.db_table for m in (Message, StreamHead, Change, SearchEntry))
    with psycopg.connect(pg.url) as conn:
        count, newest = conn.execute(f"SELECT count(*), max(message_id) FROM {messages} WHERE stream = %s", [stream]).fetchone()
        head = conn.execute(f"SELECT last_id FROM {heads} WHERE stream = %s", [stream]).fetchone()
        rows = conn.execute(f"SELECT message_id, kind FROM {changes} WHERE stream = %s", [stream]).fetchall()
        indexed = conn.execute(f"SELECT count(*) FROM {index} WHERE stream = %s", [stream]).fetchone()[0]
    return {"messages": count, "newest": newest, "head": head[0] if head else None, "changes": rows, "indexed": indexed}


async def test_postgres_restart_under_load(private_postgres: PostgresInstance):
    pg = private_postgres
    redis = RedisProcess().start()
    server: Server | None = None
    try:
        server = Server(private_env(pg, redis), log_name="pg-restart").start()
        room = Classroom(server)
        clients = [ChatClient(p, room.general, name, resume_from="stream") for p, name in ((room.alice, "alice"), (room.bob, "bob"), (room.teacher, "teacher"))]
        for c in clients:
            await c.connect()
        # Alice's second socket, for the edit (one reader per socket).
        editor = await room.alice.connect()
        joined = await editor.request({"type": "join_channel", "channelId": room.general}, "joined_channel")
        assert joined["type"] == "joined_channel", joined
        load = Load()
        stop = asyncio.Event()
        tasks = [asyncio.create_task(chatter(c, stop, load)) for c in clients]
        try:
            # Warm up: a few seconds of traffic (longer on a busy machine).
            deadline = time.monotonic() + 30
            await asyncio.sleep(2.5)
            while sum(len(c.acked) for c in clients) < 20 and time.monotonic() < deadline:
                await asyncio.sleep(0.1)
            acked_before = sum(len(c.acked) for c in clients)
            assert acked_before >= 20, f"the load did not get going: {load.stats}"
            target = next(iter(clients[0].acked.values()))  # alice edits it during the outage

            stopped = time.monotonic()
            load.down = (stopped, 0.0)
            await asyncio.to_thread(pg.stop, "fast")
            stop_took = time.monotonic() - stopped
            await asyncio.sleep(0.5)
            edit = await editor.request(
                {"type": "edit_message", "channelId": room.general, "messageId": target["id"], "content": "edited while down"}, "message_updated", timeout=ANSWER_WITHIN + 2
            )
            assert edit["type"] == "error" and edit["code"] == "server_error", edit
            await asyncio.sleep(max(0.0, OUTAGE - (time.monotonic() - stopped)))
            assert_alive(server)

            await asyncio.to_thread(pg.start)
            restarted = time.monotonic()
            load.down = (stopped, restarted)
            acks_at_restart = len(load.acks)
            assert await more_acks(clients, 5, within=30, poll=0.1), f"no recovery after PostgreSQL came back: {load.stats}"
            first_ack_after = min((t for t in load.acks[acks_at_restart:] if t >= restarted), default=None)
            await asyncio.sleep(1.0)
        finally:
            errors = await stop_load(stop, tasks)
        assert not errors, errors
        assert_alive(server)

        outcomes_down = Counter(outcome for outcome, _ in load.during)
        assert load.during, "no send was attempted during the outage"
        assert set(outcomes_down) <= {"server_error", "ack"}, f"sends during the outage: {outcomes_down} (wanted server_error)"
        assert outcomes_down["server_error"] > 0, outcomes_down
        slowest = max(seconds for _, seconds in load.during)
        assert slowest < ANSWER_WITHIN, f"a send during the outage took {slowest:.1f}s to be answered"
        assert all(c.connects == 1 for c in clients), "a socket was closed by the restart"

        # The same sockets, then: what failed is retried with its clientId.
        for c in clients:
            await c.retry_pending()
            await c.pump(0.5)
        history = channel_history(room.teacher, room.general)
        ledger = assert_ledger(clients, history)
        check_clients(clients, history)
        state = stream_state(pg, channel_stream(room.general))
        assert state["messages"] == len(history) and state["head"] == state["newest"] == history[-1]["id"], state
        assert not [m for m in history if m["id"] == target["id"] and m.get("editedAt")], "the refused edit was applied"
        assert not [change for change in state["changes"] if change[0] == target["id"]], f"a change without its edit: {state['changes']}"
        # The search index (search.worker, after commit) waits out the outage too.
        assert state["indexed"] == state["messages"], f"{state['messages'] - state['indexed']} stored messages never indexed"
        assert app_crashes(server) == 0
        for c in clients:
            await c.drop()
        await room.close()

        write_figures(
            "postgres-restart",
            {
                "clients": len(clients),
                "outage_s": round(restarted - stopped, 2),
                "pg_ctl_stop_s": round(stop_took, 2),
                "sends_during_outage": len(load.during),
                "outcomes_during_outage": dict(outcomes_down),
                "answer_p50_s_during_outage": round(percentile([s for _, s in load.during], 50), 3),
                "answer_max_s_during_outage": round(slowest, 3),
                "first_ack_after_restart_s": round(first_ack_after - restarted, 2) if first_ack_after else None,
                "acknowledged": ledger["acknowledged"],
                "in_history": ledger["messages"],
                "gaps": ledger["gaps"],
                "duplicates": ledger["duplicates"],
                "search_entries_missing": state["messages"] - state["indexed"],
                "sockets_closed": sum(c.connects - 1 for c in clients),
                "outcomes": dict(load.stats),
                "load_average_1m": round(os.getloadavg()[0], 1),
            },
        )
    finally:
        if server is not None:
            server.stop()
        redis.stop()
