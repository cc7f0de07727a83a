"""Django's Redis cache backend on the project's own Redis client
(realtime.redis.sync_client): one connection pool per process for the cache,
rate limits and the login throttle, and Sentinel failover for all of them.
LOCATION is only a label here; the client comes from REDIS_URL or
REDIS_SENTINELS."""

from __future__ import annotations

from typing import Any

from django.core.cache.backends.redis import RedisCache as DjangoRedisCache
from django.core.cache.backends.redis import RedisCacheClient
from django.core.exceptions import ImproperlyConfigured

from realtime.redis import sync_client


class SharedClient(RedisCacheClient):
    def get_client(self, key: Any = None, *, write: bool = False) -> Any:
        client = sync_client()
        if client is None:
            raise ImproperlyConfigured("realtime.cache.RedisCache needs REDIS_URL or REDIS_SENTINELS")
        return client


class RedisCache(DjangoRedisCache):
    def __init__(self, server: str, params: dict[str, Any]) -> None:
        super().__init__(server, params)
        self._class = SharedClient
