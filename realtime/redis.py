"""The one place Redis clients are built: for shared state (rate limits,
presence, connection counts, Django's cache: one client per process for sync
code and one per event loop for async code) and, through `layer_host`, the
channel layer's. None without Redis.

Redis is either one server (REDIS_URL) or a primary watched by Redis Sentinel
(REDIS_SENTINELS + REDIS_SENTINEL_MASTER, which win over REDIS_URL): then
every connection asks the Sentinels for the current primary, and after a
failover the next connection goes to the promoted replica.
tests/chatsite/test_redis_clients.py checks that no other module builds a
Redis client.
"""

from __future__ import annotations

import asyncio
import threading
import weakref
from typing import Any

import redis
import redis.asyncio as aredis
from django.conf import settings
from redis.asyncio.retry import Retry as AsyncRetry
from redis.asyncio.sentinel import Sentinel as AsyncSentinel
from redis.asyncio.sentinel import SentinelConnectionPool as AsyncSentinelPool
from redis.asyncio.sentinel import SentinelManagedConnection as AsyncSentinelConnection
from redis.backoff import ExponentialBackoff, NoBackoff
from redis.retry import Retry
from redis.sentinel import Sentinel, SentinelManagedConnection

# Sentinel only: a connection error is retried this many times, waiting
# 0.1, 0.2, 0.4, then 0.5 s (1.2 s in all), asking the Sentinels for the
# primary before each new connection (redis-py's SentinelManagedConnection
# applies the same policy to connecting). A failover that ends meanwhile
# (docs/scaling.md: ~1.5 s after the primary dies, with the test timings of
# scripts/services) is invisible to the command; a longer one fails it (the
# send answers `server_error`; the hub closes its sockets with 1011).
FAILOVER_RETRIES = 4
FAILOVER_BACKOFF = ExponentialBackoff(cap=0.5, base=0.05)
# How long one Sentinel may take to answer (it is asked before each connection).
SENTINEL_TIMEOUT = 1.0


def parse_sentinels(value: str) -> list[tuple[str, int]]:
    """REDIS_SENTINELS, "host:port,host:port", as (host, port) pairs."""
    pairs = []
    for item in value.split(","):
        item = item.strip()
        if not item:
            continue
        host, sep, port = item.rpartition(":")
        if not sep or not host or not port.isdigit():
            raise ValueError(f"REDIS_SENTINELS: {item!r} is not host:port")
        pairs.append((host.strip("[]"), int(port)))
    return pairs


def retry_options(retry_class: type = Retry, *, failover: bool = False) -> dict:
    """How every Redis client here retries (ours, and channels-redis's through
    `layer_host`), after a connection error only. One Redis: once, at once,
    on a fresh connection: a pooled socket left over from a restarted Redis
    fails its first command; redis-py's asyncio client retries nothing by
    default. Sentinel (`failover`): with backoff, FAILOVER_RETRIES times, to
    ride out a failover (a demoted primary's ReadOnlyError reaches us as a
    ConnectionError: redis-py's SentinelManagedConnection). Never after a
    timeout: the command may have run (a rate-limit token taken twice, a
    PUBLISH delivered twice). `retry_class`: redis-py's sync or asyncio Retry."""
    errors = (redis.exceptions.ConnectionError,)
    if failover:
        retry = retry_class(FAILOVER_BACKOFF, FAILOVER_RETRIES, supported_errors=errors)
    else:
        retry = retry_class(NoBackoff(), 1, supported_errors=errors)
    return {"retry": retry, "retry_on_error": list(errors)}


def sentinel_kwargs() -> dict[str, Any]:
    """Connection options for the Sentinels themselves."""
    return {"socket_timeout": SENTINEL_TIMEOUT, "socket_connect_timeout": SENTINEL_TIMEOUT}


# redis-py (8.1) reconnects a connection dropped during a command, inside the
# command's retry, to the address it last had (send_packed_command ->
# connect_check_health -> _connect), not through Sentinel: a command that
# meets a failover retries the dead primary until its retries run out. These
# ask the Sentinels for the primary on every (re)connect, and count the times
# the answer changed: replication is asynchronous, so the newest writes of a
# dead primary (a broadcast on its way) may be lost with it, and the hub
# treats a change like a channel-layer outage (clients resume with afterId).
_failovers = 0
_primary: Any = None  # the primary the Sentinels named last, to any client of this process


def failovers() -> int:
    """How often this process saw the Redis primary change (Sentinel only)."""
    return _failovers


def _noticed(address: Any) -> None:
    """`address`: the primary the Sentinels name now. Counted once per change
    for the whole process: a client that reconnects only later (the sync one,
    used now and then) sees the same new primary and counts nothing."""
    global _failovers, _primary
    if _primary is not None and address != _primary:
        _failovers += 1
    _primary = address


class FollowPrimary(SentinelManagedConnection):
    def _connect(self) -> Any:
        pool = self.connection_pool
        if pool.is_master:
            self.host, self.port = pool.get_master_address()
            _noticed((self.host, self.port))
        return super()._connect()


class AsyncFollowPrimary(AsyncSentinelConnection):
    async def _connect(self) -> None:
        pool = self.connection_pool
        if pool.is_master:
            self.host, self.port = await pool.get_master_address()
            _noticed((self.host, self.port))
        await super()._connect()


def layer_host(*, url: str, sentinels: list[tuple[str, int]], master: str, db: int) -> dict:
    """channels-redis connection options (chatsite.settings.CHANNEL_LAYERS),
    with the retry policy of every Redis client here. With `sentinels`,
    channels-redis's own Sentinel support (channels_redis.utils.create_pool:
    a SentinelConnectionPool for `master_name`)."""
    # redis-py's default 5 s socket timeout ties with channels-redis's 5 s
    # blocking receive and kills idle consumers: give it headroom. Its pool
    # fails past max_connections instead of waiting: 1,000 sockets closing at
    # once leave 1,000 user groups at once (redis-py's default, 100, refused
    # most of them in the join-storm bench); a pool opens only what is in use.
    options = {"socket_timeout": 30, "max_connections": 1000, **retry_options(AsyncRetry, failover=bool(sentinels))}
    if sentinels:
        return {
            "sentinels": sentinels,
            "master_name": master,
            "db": db,
            "sentinel_kwargs": sentinel_kwargs(),
            "connection_class": AsyncFollowPrimary,
            **options,
        }
    return {"address": url, **options}


def configured() -> bool:
    return bool(settings.REDIS_SENTINELS or settings.REDIS_URL)


_sync_client: redis.Redis | None = None
_lock = threading.Lock()
_async_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, aredis.Redis] = weakref.WeakKeyDictionary()


def sync_client() -> redis.Redis | None:
    global _sync_client
    if not configured():
        return None
    with _lock:
        if _sync_client is None:
            options: dict[str, Any] = {"socket_timeout": 5, "health_check_interval": 30}
            if settings.REDIS_SENTINELS:
                sentinel = Sentinel(settings.REDIS_SENTINELS, sentinel_kwargs=sentinel_kwargs())
                _sync_client = sentinel.master_for(
                    settings.REDIS_SENTINEL_MASTER,
                    db=settings.REDIS_SENTINEL_DB,
                    connection_class=FollowPrimary,
                    **options,
                    **retry_options(Retry, failover=True),
                )
            else:
                _sync_client = redis.Redis.from_url(settings.REDIS_URL, **options, **retry_options(Retry))
        return _sync_client


class _BlockingSentinelPool(AsyncSentinelPool, aredis.BlockingConnectionPool):
    """redis-py's Sentinel pool (the primary's address from the Sentinels)
    that waits for a free connection like BlockingConnectionPool."""


def async_client() -> aredis.Redis | None:
    if not configured():
        return None
    loop = asyncio.get_running_loop()
    client = _async_clients.get(loop)
    if client is None:
        # A blocking pool: past its size a command waits for a free
        # connection (up to 5 s) instead of failing with "Too many
        # connections", which a join storm of 1,000 sockets hit with
        # redis-py's default pool of 100 (docs/presence.md).
        options: dict[str, Any] = {"max_connections": settings.CHAT_REDIS_MAX_CONNECTIONS, "timeout": 5, "socket_timeout": 5}
        pool: aredis.ConnectionPool
        if settings.REDIS_SENTINELS:
            pool = _BlockingSentinelPool(
                settings.REDIS_SENTINEL_MASTER,
                AsyncSentinel(settings.REDIS_SENTINELS, sentinel_kwargs=sentinel_kwargs()),
                db=settings.REDIS_SENTINEL_DB,
                connection_class=AsyncFollowPrimary,
                **options,
                **retry_options(AsyncRetry, failover=True),
            )
        else:
            pool = aredis.BlockingConnectionPool.from_url(settings.REDIS_URL, **options, **retry_options(AsyncRetry))
        client = aredis.Redis(connection_pool=pool)
        _async_clients[loop] = client
    return client
