"""Who is online in a channel (presence.services): first join and last leave
per user across connections, the `online` snapshot, and expiry of a crashed
process's entries; in one process and on Redis."""

from __future__ import annotations

import asyncio

import pytest

from presence import services as presence
from realtime import redis as chat_redis


def _use(settings, redis_url: str):
    settings.REDIS_URL = redis_url
    chat_redis._async_clients.clear()
    presence.reset_local()


@pytest.fixture(params=["local", pytest.param("redis", marks=pytest.mark.needs_redis)])
def where(request, settings):
    _use(settings, request.getfixturevalue("redis_url") if request.param == "redis" else "")
    yield request.param
    _use(settings, "")


@pytest.fixture
def on_redis(settings, redis_url):
    _use(settings, redis_url)
    yield
    _use(settings, "")


async def test_first_join_last_leave_and_the_snapshot(where):
    assert await presence.online_users(7) == []
    assert await presence.connection_join(channel_id=7, user_id=1, connection="a1") == (True, [1])
    assert await presence.connection_join(channel_id=7, user_id=2, connection="b1") == (True, [1, 2])
    assert await presence.connection_join(channel_id=7, user_id=1, connection="a2") == (False, [1, 2])  # a second tab
    assert await presence.connection_join(channel_id=8, user_id=3, connection="c1") == (True, [3])  # another channel
    assert await presence.connection_leave(channel_id=7, user_id=1, connection="a1") is False
    assert await presence.online_users(7) == [1, 2]
    assert await presence.connection_leave(channel_id=7, user_id=1, connection="a2") is True
    assert await presence.connection_leave(channel_id=7, user_id=1, connection="a2") is False  # twice: nothing
    assert await presence.online_users(7) == [2]
    assert await presence.online_users(8) == [3]


@pytest.mark.needs_redis
async def test_a_dead_process_drops_out_and_a_live_one_is_refreshed(on_redis, monkeypatch):
    monkeypatch.setattr(presence, "PRESENCE_TTL", 1.0)
    await presence.connection_join(channel_id=9, user_id=1, connection="dead")
    await presence.connection_join(channel_id=9, user_id=2, connection="alive")
    presence.connection_gone("dead")  # its process stops refreshing it (as if it crashed)
    for _ in range(3):
        await asyncio.sleep(0.5)
        await presence.connections_refresh(None)
    assert await presence.online_users(9) == [2]
    # The dead user's next join is a first join again.
    assert await presence.connection_join(channel_id=9, user_id=1, connection="back") == (True, [1, 2])
