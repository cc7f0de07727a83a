"""Redis clients for shared state (rate limits, presence), one per process for
sync code and one per event loop for async code. None without REDIS_URL."""

from __future__ import annotations

import asyncio
import threading
import weakref

import redis
import redis.asyncio as aredis
from django.conf import settings
from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import NoBackoff
from redis.retry import Retry


def retry_options(retry_class: type = Retry) -> dict:
    """How every Redis client here retries (ours, and channels-redis's through
    chatsite.settings.redis_layer_host): once, at once, on a fresh connection,
    after a connection error only. A pooled socket left over from a restarted
    Redis fails its first command; redis-py's asyncio client retries nothing
    by default. Never after a timeout: the command may have run (a rate-limit
    token taken twice, a PUBLISH delivered twice). `retry_class`: redis-py's
    sync or asyncio Retry."""
    errors = (redis.exceptions.ConnectionError,)
    return {"retry": retry_class(NoBackoff(), 1, supported_errors=errors), "retry_on_error": list(errors)}


_sync_client: redis.Redis | None = None
_lock = threading.Lock()
_async_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, aredis.Redis] = weakref.WeakKeyDictionary()


def sync_client() -> redis.Redis | None:
    global _sync_client
    if not settings.REDIS_URL:
        return None
    with _lock:
        if _sync_client is None:
            _sync_client = redis.Redis.from_url(
                settings.REDIS_URL,
                socket_timeout=5,
                health_check_interval=30,
                **retry_options(Retry),
            )
        return _sync_client


def async_client() -> aredis.Redis | None:
    if not settings.REDIS_URL:
        return None
    loop = asyncio.get_running_loop()
    client = _async_clients.get(loop)
    if client is None:
        # A blocking pool: past its size a command waits for a free
        # connection (up to 5 s) instead of failing with "Too many
        # connections", which a join storm of 1,000 sockets hit with
        # redis-py's default pool of 100 (docs/presence.md).
        pool = aredis.BlockingConnectionPool.from_url(
            settings.REDIS_URL,
            max_connections=settings.CHAT_REDIS_MAX_CONNECTIONS,
            timeout=5,
            socket_timeout=5,
            **retry_options(AsyncRetry),
        )
        client = aredis.Redis(connection_pool=pool)
        _async_clients[loop] = client
    return client
