"""Fault 2 of issue 19: the Redis primary dies (SIGKILL) under load.

A private Sentinel set (tests.cluster.sentinel_fixtures: primary, replica,
three Sentinels through `scripts/services up redis-sentinel`), two daphne
processes configured with REDIS_SENTINELS only (no REDIS_URL), four people
in one channel over real websockets, two on each process, sending ~20
messages a second together. The primary is SIGKILLed: Sentinel promotes the
replica, both processes follow (their /healthz answers 200 again without a
restart), clients whose sockets were closed resume with `afterId`, and the
ledger holds: every acknowledged message is in history once, in id order,
each client got every other client's acknowledged message exactly once.
The window of refused sends is measured and written to
test-artifacts/cluster/redis-sentinel-failover.json.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections import Counter

import pytest

from tests.cluster.sentinel_fixtures import SentinelSet, sentinel_set, write_figures
from tests.e2e.conftest import Classroom
from tests.e2e.harness import Person, Server
from tests.reliability.faults import CONNECT_ERRORS, app_crashes, assert_alive, health, percentile, server_env
from tests.reliability.ledger import ALLOWED_FAILURES, ChatClient, check_clients, resume_and_read

pytestmark = [pytest.mark.e2e]

__all__ = ["sentinel_set"]  # the fixture, imported for pytest

SEND_INTERVAL = 0.1  # per client, plus the round trip: four clients, ~20 messages a second on a quiet machine
# Sentinel's failover (down-after 1 s + election + promotion) plus the
# clients' reconnect; far above what it takes (docs/scaling.md).
FAILOVER_BUDGET = 20.0


class Load:
    """What the chatter saw; times in seconds relative to the kill (negative
    before it)."""

    def __init__(self) -> None:
        self.stats: Counter = Counter()
        self.acks: list[float] = []  # times of acknowledged sends
        self.refused: list[float] = []  # times of sends or connects that failed
        self.send_seconds: list[tuple[float, float]] = []  # (start, duration) of acknowledged sends
        self.killed_at = time.monotonic() + 3600.0  # set at the kill

    def now(self) -> float:
        return time.monotonic() - self.killed_at


async def chatter(client: ChatClient, stop: asyncio.Event, load: Load) -> None:
    """An outbox sent in order with the same clientIds on retry; any failure
    drops the socket and the next tick reconnects with afterId."""
    while not stop.is_set():
        client.pending.setdefault(*client.new_client_id())
        if client.ws is None:
            try:
                await client.connect()
                load.stats["connects"] += 1
            except CONNECT_ERRORS as exc:
                load.stats[f"connect_failed:{type(exc).__name__}"] += 1
                load.refused.append(load.now())
                await client.drop()
                await asyncio.sleep(SEND_INTERVAL)
                continue
        for client_id, content in list(client.pending.items()):
            started = load.now()
            outcome = await client.send(client_id, content, timeout=8)
            load.stats[outcome] += 1
            if outcome == "ack":
                load.acks.append(load.now())
                load.send_seconds.append((started, load.now() - started))
                continue
            assert outcome in ALLOWED_FAILURES, f"{client.name}: unexpected answer {outcome} during a failover"
            load.refused.append(load.now())
            await client.drop()
            break
        await asyncio.sleep(SEND_INTERVAL)


async def wait_for(check, timeout: float, step: float = 0.1) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await check():
            return True
        await asyncio.sleep(step)
    return bool(await check())


async def test_redis_primary_killed_under_load(sentinel_set: SentinelSet):
    sentinels = sentinel_set
    env = server_env("sentinel", "", **sentinels.env)
    env.pop("REDIS_URL")  # Sentinel only: nothing may reach Redis another way
    servers: list[Server] = []
    try:
        servers.append(Server(env, log_name="sentinel-a").start())
        servers.append(Server(env, log_name="sentinel-b").start())
        node_a, node_b = servers
        room = Classroom(node_a)
        carol = Person(node_a, display_name="Carol S")
        r = room.teacher.http.post(f"/api/workspaces/{room.workspace_id}/members/", {"username": carol.username, "role": "student"})
        assert r.status_code == 201, r.text
        clients = [
            ChatClient(room.alice, room.general, "alice", resume_from="stream"),
            ChatClient(room.teacher, room.general, "teacher", resume_from="stream"),
            ChatClient(room.bob.relogin(node_b), room.general, "bob", resume_from="stream"),
            ChatClient(carol.relogin(node_b), room.general, "carol", resume_from="stream"),
        ]
        for c in clients:
            await c.connect()
        load = Load()
        stop = asyncio.Event()
        tasks = [asyncio.create_task(chatter(c, stop, load)) for c in clients]
        try:
            # Warm up: a few seconds of traffic (longer on a busy machine).
            warm_start = time.monotonic()

            async def warm() -> bool:
                return time.monotonic() - warm_start >= 3.0 and sum(len(c.acked) for c in clients) >= 30

            assert await wait_for(warm, 30), f"the load did not get going: {load.stats}"
            acked_before = sum(len(c.acked) for c in clients)
            rate_before = acked_before / (time.monotonic() - warm_start)

            load.killed_at = time.monotonic()
            old = await asyncio.to_thread(sentinels.kill_primary)
            promoted = await asyncio.to_thread(sentinels.wait_promoted, old, FAILOVER_BUDGET)
            assert promoted is not None, f"Sentinel did not promote the replica within {FAILOVER_BUDGET}s"
            promoted_s = load.now()

            async def servers_follow() -> bool:
                answers = await asyncio.gather(*(asyncio.to_thread(health, s, 3) for s in servers))
                return all(status == 200 for status, _ in answers)

            assert await wait_for(servers_follow, FAILOVER_BUDGET), f"a server's /healthz is not 200 after the failover: {[health(s) for s in servers]}"
            healthy_s = load.now()
            base = {c.name: len(c.acked) for c in clients}

            async def all_sending() -> bool:
                return all(c.ws is not None and len(c.acked) > base[c.name] + 5 for c in clients)

            assert await wait_for(all_sending, FAILOVER_BUDGET), f"no recovery after the failover: {load.stats}"
            await asyncio.sleep(2.0)
        finally:
            stop.set()
            results = await asyncio.gather(*tasks, return_exceptions=True)
        errors = [r for r in results if isinstance(r, BaseException)]
        assert not errors, errors
        for s in servers:
            assert_alive(s)

        # Final: reconnect with afterId, retry what is still unacknowledged,
        # one live message each, and read the channel's whole history.
        history, ledger = await resume_and_read(clients, room)
        check_clients(clients, history)
        order = {c.name: c.order_violations() for c in clients}
        assert not any(order.values()), f"a connection got a message twice or out of order: {order}"
        assert app_crashes(*servers) == 0, "an application crashed during the failover"

        assert not [t for t in load.refused if t < 0], f"sends refused before the fault: {load.stats}"
        after = load.refused
        acks_after = sorted(t for t in load.acks if t >= 0)
        gaps = [b - a for a, b in zip([0.0, *acks_after], acks_after, strict=False)]
        during = [d for start, d in load.send_seconds if 0 <= start <= healthy_s + 1]
        figures = {
            "clients": len(clients),
            "servers": len(servers),
            "send_rate_before_per_s": round(rate_before, 1),
            "acknowledged": ledger["acknowledged"],
            "in_history": ledger["messages"],
            "gaps": ledger["gaps"],
            "duplicates": ledger["duplicates"],
            # All three Sentinels name the replica (the last may learn it late;
            # the servers follow the first that does) and it answers as master.
            "promoted_after_s": round(promoted_s, 2),
            # Polled once promoted_after_s is reached: never below it.
            "healthz_200_after_s": round(healthy_s, 2),
            "refused_sends_and_connects": len(after),
            "refused_window_s": round(max(after) - min(after), 2) if after else 0.0,
            "refused_first_s": round(min(after), 2) if after else None,
            "refused_last_s": round(max(after), 2) if after else None,
            "longest_ack_gap_s": round(max(gaps), 2) if gaps else None,
            "first_ack_after_kill_s": round(acks_after[0], 2) if acks_after else None,
            # Service back: the first acknowledged send after the last refusal.
            "resumed_after_s": round(min((t for t in acks_after if t > max(after)), default=float("nan")), 2) if after else 0.0,
            "send_p50_s_during_failover": round(percentile(during, 50), 3) if during else None,
            "send_max_s_during_failover": round(max(during), 3) if during else None,
            "reconnects": sum(c.connects for c in clients) - 2 * len(clients),
            "outcomes": dict(load.stats),
            "sentinel_start_s": round(sentinels.start_seconds, 1),
            "load_average_1m": round(os.getloadavg()[0], 1),
        }
        write_figures("redis-sentinel-failover", figures)
        for s in servers:
            assert "invalid close code" not in s.log_path.read_text(errors="replace")
        await room.close()
    finally:
        for s in servers:
            s.stop()
