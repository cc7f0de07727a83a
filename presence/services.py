"""Who is online in a channel, counted per user across all their connections.

A user is online in a channel while at least one of their connections has
joined it. With REDIS_URL the connections are kept in Redis (one sorted set
per (channel, user), scored by expiry, and one per channel of the users
online there, for `joined_channel.online`) so every process sees the same
count and a crashed process's entries expire; each process refreshes the entries of
its live connections in one pipeline from the hub's maintenance round
(`connections_refresh`, registered in presence.apps). Without REDIS_URL, one
in-process dict does the same for one process.
"""

from __future__ import annotations

import time
from typing import cast

from realtime.redis import async_client

# A connection entry lives this long unless refreshed; the hub's maintenance
# round (realtime.hub.MAINTENANCE_EVERY, a third of this) refreshes it.
PRESENCE_TTL = 60.0

# KEYS: the (channel, user) connections, the channel's users online.
_JOIN = """
local now = tonumber(ARGV[1])
local ttl = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local added = redis.call('ZADD', KEYS[1], now + ttl, ARGV[3])
redis.call('EXPIRE', KEYS[1], math.ceil(ttl) + 5)
redis.call('ZADD', KEYS[2], now + ttl, ARGV[4])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
redis.call('EXPIRE', KEYS[2], math.ceil(ttl) + 5)
return {added, redis.call('ZCARD', KEYS[1]), redis.call('ZRANGE', KEYS[2], 0, -1)}
"""
# Refresh: only an entry that is still there (a leave that raced the
# refresh is not undone), XX = update existing members only.
_REFRESH = """
local expires = tonumber(ARGV[1]) + tonumber(ARGV[2])
local ttl = math.ceil(tonumber(ARGV[2])) + 5
if redis.call('ZSCORE', KEYS[1], ARGV[3]) then
  redis.call('ZADD', KEYS[1], expires, ARGV[3])
  redis.call('EXPIRE', KEYS[1], ttl)
  redis.call('ZADD', KEYS[2], 'GT', expires, ARGV[4])
  redis.call('EXPIRE', KEYS[2], ttl)
end
return 0
"""
_LEAVE = """
local now = tonumber(ARGV[1])
local removed = redis.call('ZREM', KEYS[1], ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local count = redis.call('ZCARD', KEYS[1])
if count == 0 then redis.call('ZREM', KEYS[2], ARGV[3]) end
return {removed, count}
"""

# channel -> user -> connections (without Redis).
_local: dict[int, dict[int, set[str]]] = {}
# This process's connections and the channels each has joined: what
# `connections_refresh` keeps alive in Redis.
_live: dict[str, tuple[int, set[int]]] = {}


def _key(channel_id: int, user_id: int) -> str:
    return f"presence:{int(channel_id)}:{int(user_id)}"


def _users_key(channel_id: int) -> str:
    return f"presence:{int(channel_id)}:users"


async def connection_join(*, channel_id: int, user_id: int, connection: str) -> tuple[bool, list[int]]:
    """Record a connection in the channel: (whether it is the user's first
    there, the users online in the channel now, the user included)."""
    client = async_client()
    if client is None:
        users = _local.setdefault(channel_id, {})
        conns = users.setdefault(user_id, set())
        first = not conns
        conns.add(connection)
        return first, sorted(users)
    keys = (_key(channel_id, user_id), _users_key(channel_id))
    added, count, online = await client.eval(_JOIN, 2, *keys, time.time(), PRESENCE_TTL, connection, user_id)
    _live.setdefault(connection, (user_id, set()))[1].add(channel_id)
    return int(added) == 1 and int(count) == 1, sorted({int(u) for u in online})


async def online_users(channel_id: int) -> list[int]:
    """The users with a live connection joined to the channel."""
    client = async_client()
    if client is None:
        return sorted(_local.get(channel_id, ()))
    online = cast(list[bytes], await client.zrangebyscore(_users_key(channel_id), time.time(), "+inf"))
    return sorted({int(u) for u in online})


async def connection_leave(*, channel_id: int, user_id: int, connection: str) -> bool:
    """Forget a connection; True if it was the user's last in the channel."""
    live = _live.get(connection)
    if live is not None:
        live[1].discard(channel_id)
        if not live[1]:
            del _live[connection]
    client = async_client()
    if client is None:
        users = _local.get(channel_id, {})
        conns = users.get(user_id)
        if not conns or connection not in conns:
            return False
        conns.discard(connection)
        if not conns:
            del users[user_id]
            if not users:
                del _local[channel_id]
            return True
        return False
    keys = (_key(channel_id, user_id), _users_key(channel_id))
    removed, count = await client.eval(_LEAVE, 2, *keys, time.time(), connection, user_id)
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
                pipe.eval(_REFRESH, 2, _key(channel_id, user_id), _users_key(channel_id), now, PRESENCE_TTL, connection, user_id)
        await pipe.execute()


def reset_local() -> None:
    _local.clear()
    _live.clear()
