"""Fault 3 of issue 19: one daphne process behind nginx is killed (SIGKILL)
while ten people send about 20 messages a second through nginx. Its clients
reconnect through nginx, which passes them to the other process, and resume
with `afterId`; sends that were not acknowledged are retried with their
clientId. Afterwards every acknowledged message is in the history once, in
id order, and every client received every other person's message exactly
once. New connections and requests after the kill all succeed (nginx's
proxy_next_upstream and max_fails). Figures go to
test-artifacts/nginx_failover.json and are printed."""

from __future__ import annotations

import asyncio
import json
import signal
import time
from pathlib import Path

import httpx
import pytest

from tests.cluster.nginx_fixtures import Balanced, balanced
from tests.e2e.harness import ROOT
from tests.reliability.faults import CONNECT_ERRORS, percentile
from tests.reliability.ledger import ChatClient, channel_history, ledger_check

__all__ = ["balanced"]  # the fixture, imported for this module

pytestmark = [pytest.mark.e2e, pytest.mark.needs_redis, pytest.mark.needs_postgres]

RATE = 20.0  # messages per second, all people together
BEFORE = 4.0  # seconds of traffic before the kill
AFTER = 8.0  # and after it


async def talk(client: ChatClient, stop_at: float, interval: float, killed_at: list[float], figures: dict) -> None:
    """Send every `interval` seconds until `stop_at`; on a closed connection,
    reconnect through nginx (afterId: the newest id seen) and retry what was
    not acknowledged."""
    next_send = time.monotonic()
    while time.monotonic() < stop_at:
        client_id, content = client.new_client_id()
        sent = time.monotonic()
        outcome = await client.send(client_id, content, timeout=5)
        figures["sends"] += 1
        if outcome == "ack":
            figures["latencies"].append(time.monotonic() - sent)
        if outcome != "ack":
            figures["refused_sends"] += 1
            figures["refusals"][outcome] = figures["refusals"].get(outcome, 0) + 1
            lost_at = time.monotonic()
            attempts = 0
            while True:
                attempts += 1
                try:
                    await client.connect()
                    break
                except CONNECT_ERRORS:
                    figures["failed_reconnects"] += 1
                    await asyncio.sleep(0.1)
            joined = time.monotonic()
            await client.retry_pending(timeout=10)
            back = time.monotonic()
            figures["reconnects"].append(
                {
                    "client": client.name,
                    "attempts": attempts,
                    # connected through nginx and joined with afterId (catch-up in hand)
                    "rejoined_s_after_kill": round(joined - killed_at[0], 3) if killed_at else None,
                    # and the unacknowledged send retried and acknowledged
                    "since_kill_s": round(back - killed_at[0], 3) if killed_at else None,
                    "since_noticed_s": round(back - lost_at, 3),
                }
            )
        next_send += interval
        await asyncio.sleep(max(0.0, next_send - time.monotonic()))


async def test_killing_one_process_behind_nginx_loses_nothing(balanced: Balanced):
    server = balanced.server
    clients = [ChatClient(person, balanced.channel_id, f"p{i}") for i, person in enumerate(balanced.people)]
    for client in clients:
        await client.connect()
    per_process = balanced.connections_per_process()
    assert all(n >= 1 for n in per_process), f"nginx should spread the connections over both processes: {per_process}"

    figures: dict = {"latencies": [], "sends": 0, "refused_sends": 0, "refusals": {}, "failed_reconnects": 0, "reconnects": []}
    killed_at: list[float] = []
    start = time.monotonic()
    interval = len(clients) / RATE
    talkers = [asyncio.create_task(talk(c, start + BEFORE + AFTER, interval, killed_at, figures)) for c in clients]

    await asyncio.sleep(BEFORE)
    victim = server.procs[0]
    victim.send_signal(signal.SIGKILL)
    killed_at.append(time.monotonic())
    # New requests and connections right after the kill: nginx passes them on.
    async with httpx.AsyncClient(base_url=server.base, timeout=10) as http:
        health = [(await http.get("/healthz")).status_code for _ in range(10)]
    fresh = []
    for person in balanced.people[:4]:
        ws = await person.connect()
        fresh.append(ws)
    await asyncio.gather(*talkers)
    victim.wait(5)

    # Everyone reads what is still on the way, then the ledger is checked.
    await asyncio.gather(*(c.pump(2.0) for c in clients))
    for ws in fresh:
        await ws.close()
    history = channel_history(balanced.people[0], balanced.channel_id)
    acked = {key: message_id for c in clients for key, message_id in c.acked_keys().items()}
    ledger = ledger_check(history, acked)
    missed = {}
    twice = {}
    for c in clients:
        others = [m["id"] for m in history if m["authorId"] != c.person.id]
        received = c.received
        missed[c.name] = len(set(others) - set(received))
        twice[c.name] = len(received) - len(set(received))
    order = {c.name: len(c.order_violations()) for c in clients}

    reconnect_times = [r["since_kill_s"] for r in figures["reconnects"] if r["since_kill_s"] is not None]
    result = {
        "test": "nginx_failover",
        "processes": 2,
        "people": len(clients),
        "rate_msg_per_s": RATE,
        "seconds": BEFORE + AFTER,
        "connections_per_process_before": per_process,
        "sends": figures["sends"],
        "achieved_msg_per_s": round(figures["sends"] / (BEFORE + AFTER), 1),
        "send_ms_p50": round(1000 * percentile(figures["latencies"], 50), 1),
        "send_ms_p99": round(1000 * percentile(figures["latencies"], 99), 1),
        "acknowledged": ledger["acknowledged"],
        "refused_sends": figures["refused_sends"],
        "refusals": figures["refusals"],
        "clients_reconnected": len({r["client"] for r in figures["reconnects"]}),
        "failed_reconnect_attempts": figures["failed_reconnects"],
        "rejoined_s_after_kill_max": max((r["rejoined_s_after_kill"] or 0 for r in figures["reconnects"]), default=None),
        "reconnect_s_after_kill_max": max(reconnect_times, default=None),
        "reconnect_s_after_kill_p50": percentile(reconnect_times, 50) if reconnect_times else None,
        "reconnect_s_after_noticed_max": max((r["since_noticed_s"] for r in figures["reconnects"]), default=None),
        "reconnects": figures["reconnects"],
        "healthz_through_nginx_after_kill": health,
        "fresh_connections_after_kill": len(fresh),
        "history": ledger["messages"],
        "lost": ledger["gaps"],
        "duplicated": ledger["duplicates"],
        "not_increasing": ledger["not_increasing"],
        "missed_by_clients": sum(missed.values()),
        "received_twice": sum(twice.values()),
        "order_violations": sum(order.values()),
    }
    out = ROOT / "test-artifacts"
    out.mkdir(exist_ok=True)
    Path(out / "nginx_failover.json").write_text(json.dumps(result, indent=2) + "\n")
    print("\nnginx failover figures:\n" + json.dumps({k: v for k, v in result.items() if k != "reconnects"}, indent=2))

    assert figures["reconnects"], "no client was on the killed process"
    assert health == [200] * 10, f"nginx passed requests to the dead process: {health}"
    assert ledger["gaps"] == 0 and ledger["duplicates"] == 0 and ledger["id_changed"] == 0, ledger
    assert ledger["not_increasing"] == 0 and ledger["repeated_ids"] == 0, ledger
    assert sum(missed.values()) == 0, f"messages a client never received: {missed}"
    assert sum(twice.values()) == 0, f"messages a client received twice: {twice}"
    assert sum(order.values()) == 0, f"out of order on a connection: {order}"
    assert all(not c.pending for c in clients), "a send was never acknowledged"
    assert figures["failed_reconnects"] == 0, "nginx refused a reconnect while one process was alive"
