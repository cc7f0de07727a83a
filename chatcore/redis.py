"""Redis clients for shared state (rate limits, presence), one per process for
sync code and one per event loop for async code. None without REDIS_URL."""

from __future__ import annotations

import asyncio
import threading
import weakref

import redis
import redis.asyncio as aredis
from django.conf import settings

_sync_client: redis.Redis | None = None
_lock = threading.Lock()
_async_clients: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, aredis.Redis]" = weakref.WeakKeyDictionary()


def sync_client() -> redis.Redis | None:
    global _sync_client
    if not settings.REDIS_URL:
        return None
    with _lock:
        if _sync_client is None:
            _sync_client = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=5, health_check_interval=30)
        return _sync_client


def async_client() -> aredis.Redis | None:
    if not settings.REDIS_URL:
        return None
    loop = asyncio.get_running_loop()
    client = _async_clients.get(loop)
    if client is None:
        client = aredis.Redis.from_url(settings.REDIS_URL, socket_timeout=5)
        _async_clients[loop] = client
    return client
