"""How many WebSockets each user holds open, across processes, so one session
cannot open hundreds (PROTOCOL.md: CHAT_MAX_CONNECTIONS_PER_USER, default 20;
past it the new one is refused with close code 4008).

With REDIS_URL each user has a sorted set of connection names scored by
expiry; a process's live connections are refreshed from the hub's
maintenance round, so a crashed process's entries expire. Without it, an
in-process dict counts for the one process.
"""

from __future__ import annotations

import time

from django.conf import settings

from realtime.redis import async_client

CLOSE_TOO_MANY = 4008
# An entry lives this long unless refreshed (the hub refreshes every 20 s).
TTL = 60.0

_OPEN = """
local now = tonumber(ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[3]) then return 0 end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[4])
redis.call('EXPIRE', KEYS[1], math.ceil(tonumber(ARGV[2])) + 5)
return 1
"""

_local: dict[int, set[str]] = {}
_live: dict[str, int] = {}  # this process's counted connections: name -> user id


def _key(user_id: int) -> str:
    return f"connections:{int(user_id)}"


async def connection_open(user_id: int, connection: str) -> bool:
    """Count the connection in; False (and not counted) past the limit."""
    limit = settings.CHAT_MAX_CONNECTIONS_PER_USER
    client = async_client()
    if client is None:
        conns = _local.setdefault(user_id, set())
        if len(conns) >= limit:
            return False
        conns.add(connection)
    elif not int(await client.eval(_OPEN, 1, _key(user_id), time.time(), TTL, limit, connection)):
        return False
    _live[connection] = user_id
    return True


async def connection_closed(user_id: int, connection: str) -> None:
    _live.pop(connection, None)
    client = async_client()
    if client is None:
        conns = _local.get(user_id)
        if conns is not None:
            conns.discard(connection)
            if not conns:
                del _local[user_id]
        return
    await client.zrem(_key(user_id), connection)


async def connections_refresh(hub: object) -> None:
    """Keep this process's live entries from expiring (one pipeline)."""
    client = async_client()
    if client is None or not _live:
        return
    expires = time.time() + TTL
    async with client.pipeline(transaction=False) as pipe:
        for connection, user_id in list(_live.items()):
            pipe.zadd(_key(user_id), {connection: expires}, xx=True)
            pipe.expire(_key(user_id), int(TTL) + 5)
        await pipe.execute()


def live_user_ids() -> set[int]:
    """The users with a counted connection in this process."""
    return set(_live.values())


def reset_local() -> None:
    _local.clear()
    _live.clear()
