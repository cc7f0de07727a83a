"""A Redis Sentinel failover, as one process sees it (realtime.redis counts
primary changes; realtime.hub closes its connections once per change, so
clients resume with afterId: a dead primary's newest writes may not have
reached the promoted replica). The real thing, with a killed primary and
two daphne processes: tests/cluster/test_redis_sentinel.py."""

from __future__ import annotations

import asyncio

from realtime import redis as chat_redis
from realtime.hub import Hub
from tests.realtime.test_hub import FlakyLayer, Recorder, memory_layer, until

__all__ = ["memory_layer"]  # the fixture, imported for pytest


def test_a_primary_change_is_counted_once_per_process(monkeypatch):
    monkeypatch.setattr(chat_redis, "_failovers", 0)
    monkeypatch.setattr(chat_redis, "_primary", None)
    chat_redis._noticed(("127.0.0.1", 6380))  # the first primary: no failover
    chat_redis._noticed(("127.0.0.1", 6380))
    assert chat_redis.failovers() == 0
    chat_redis._noticed(("127.0.0.1", 6381))  # promoted: one client notices
    chat_redis._noticed(("127.0.0.1", 6381))  # another client, later: the same change
    assert chat_redis.failovers() == 1
    chat_redis._noticed(("127.0.0.1", 6380))  # and back
    assert chat_redis.failovers() == 2


async def test_the_hub_closes_its_connections_after_a_failover(memory_layer, monkeypatch):
    from realtime import hub as hub_module

    monkeypatch.setattr(hub_module, "PROBE_EVERY", 0.05)
    monkeypatch.setattr(chat_redis, "_failovers", 0)
    hub = Hub(FlakyLayer(memory_layer))
    a = Recorder()
    hub.register(a)
    await hub.join("g", a)
    await asyncio.sleep(0.2)
    assert a.failed == 0
    monkeypatch.setattr(chat_redis, "_failovers", 1)
    await until(lambda: a.failed == 1)
    assert await hub.wait_ready(2), "the layer answers: new connections go ahead"
    await asyncio.sleep(0.2)
    assert a.failed == 1, "once per failover"
    hub.close()
