"""Who is online in a channel, counted per user across all their connections.

A user is online in a channel while at least one of their connections has
joined it. With REDIS_URL the connections are kept in Redis (one sorted set
per (channel, user), scored by expiry) so every process sees the same count
and a crashed process's entries expire; each process refreshes the entries of
its live connections in one pipeline from the hub's maintenance round
(`connections_refresh`, registered in presence.apps). Without REDIS_URL, one
in-process dict does the same for one process.
"""

from __future__ import annotations

import time

from realtime.redis import async_client

# A connection entry lives this long unless refreshed; the hub's maintenance
# round (realtime.hub.MAINTENANCE_EVERY, a third of this) refreshes it.
PRESENCE_TTL = 60.0

_JOIN = """
local now = tonumber(ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local added = redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[3])
redis.call('EXPIRE', KEYS[1], math.ceil(tonumber(ARGV[2])) + 5)
return {added, redis.call('ZCARD', KEYS[1])}
"""
# Refresh: only an entry that is still there (a leave that raced the
# refresh is not undone), XX = update existing members only.
_REFRESH = """
redis.call('ZADD', KEYS[1], 'XX', tonumber(ARGV[1]) + tonumber(ARGV[2]), ARGV[3])
redis.call('EXPIRE', KEYS[1], math.ceil(tonumber(ARGV[2])) + 5)
return 0
"""
_LEAVE = """
local now = tonumber(ARGV[1])
local removed = redis.call('ZREM', KEYS[1], ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
return {removed, redis.call('ZCARD', KEYS[1])}
"""

_local: dict[tuple[int, int], set[str]] = {}
# This process's connections and the channels each has joined: what
# `connections_refresh` keeps alive in Redis.
_live: dict[str, tuple[int, set[int]]] = {}


def _key(channel_id: int, user_id: int) -> str:
    return f"presence:{int(channel_id)}:{int(user_id)}"


async def connection_join(*, channel_id: int, user_id: int, connection: str) -> bool:
    """Record a connection in the channel; True if it is the user's first."""
    client = async_client()
    if client is None:
        conns = _local.setdefault((channel_id, user_id), set())
        first = not conns
        conns.add(connection)
        return first
    added, count = await client.eval(_JOIN, 1, _key(channel_id, user_id), time.time(), PRESENCE_TTL, connection)
    _live.setdefault(connection, (user_id, set()))[1].add(channel_id)
    return int(added) == 1 and int(count) == 1


async def connection_leave(*, channel_id: int, user_id: int, connection: str) -> bool:
    """Forget a connection; True if it was the user's last in the channel."""
    live = _live.get(connection)
    if live is not None:
        live[1].discard(channel_id)
        if not live[1]:
            del _live[connection]
    client = async_client()
    if client is None:
        conns = _local.get((channel_id, user_id))
        if not conns or connection not in conns:
            return False
        conns.discard(connection)
        if not conns:
            del _local[(channel_id, user_id)]
            return True
        return False
    removed, count = await client.eval(_LEAVE, 1, _key(channel_id, user_id), time.time(), connection)
    return int(removed) == 1 and int(count) == 0


def connection_gone(connection: str) -> None:
    """The connection ended, whether or not it left its channels: stop
    refreshing it (its Redis entries expire within PRESENCE_TTL)."""
    _live.pop(connection, None)


async def connections_refresh(hub: object) -> None:
    """Keep the Redis entries of this process's live connections from
    expiring: one pipeline for the whole process."""
    await connections_refresh_many([(user_id, list(channels), connection) for connection, (user_id, channels) in list(_live.items())])


async def connections_refresh_many(entries: list[tuple[int, list[int], str]]) -> None:
    """(user_id, channel_ids, connection) each, in one pipeline."""
    client = async_client()
    if client is None or not entries:
        return
    now = time.time()
    async with client.pipeline(transaction=False) as pipe:
        for user_id, channel_ids, connection in entries:
            for channel_id in channel_ids:
                pipe.eval(_REFRESH, 1, _key(channel_id, user_id), now, PRESENCE_TTL, connection)
        await pipe.execute()


def reset_local() -> None:
    _local.clear()
    _live.clear()
