"""Per-user token bucket shared by all connections (and, over Redis, all
processes): CHAT_RATE_LIMIT_MESSAGES tokens, refilled over
CHAT_RATE_LIMIT_WINDOW seconds."""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass

from django.conf import settings

from realtime.redis import sync_client


@dataclass(frozen=True)
class Decision:
    allowed: bool
    retry_after: float  # seconds until one token is back; 0 when allowed


# KEYS[1] bucket; ARGV: capacity, refill per second, ttl seconds.
# Redis TIME keeps every process on one clock.
_LUA = """
local cap = tonumber(ARGV[1])
local rate = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local v = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(v[1])
local ts = tonumber(v[2])
if tokens == nil then tokens = cap; ts = now end
tokens = math.min(cap, tokens + (now - ts) * rate)
local allowed = 0
local retry = 0
if tokens >= 1 then
  tokens = tokens - 1
  allowed = 1
else
  retry = (1 - tokens) / rate
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', tostring(now))
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[3]))
return {allowed, tostring(retry)}
"""

_local: dict[str, tuple[float, float]] = {}
_local_lock = threading.Lock()


def take(key: str, *, capacity: int | None = None, window: float | None = None) -> Decision:
    """Take one token from the bucket `key`. Defaults: the message rate limit
    (CHAT_RATE_LIMIT_MESSAGES per CHAT_RATE_LIMIT_WINDOW seconds)."""
    capacity = max(1, int(settings.CHAT_RATE_LIMIT_MESSAGES if capacity is None else capacity))
    rate = capacity / max(0.001, float(settings.CHAT_RATE_LIMIT_WINDOW if window is None else window))
    client = sync_client()
    if client is not None:
        ttl = math.ceil(capacity / rate) + 1
        allowed, retry = client.eval(_LUA, 1, f"ratelimit:{key}", capacity, rate, ttl)
        return Decision(bool(int(allowed)), float(retry))
    now = time.monotonic()
    with _local_lock:
        tokens, ts = _local.get(key, (float(capacity), now))
        tokens = min(capacity, tokens + (now - ts) * rate)
        if tokens >= 1:
            _local[key] = (tokens - 1, now)
            return Decision(True, 0.0)
        _local[key] = (tokens, now)
        return Decision(False, (1 - tokens) / rate)


def reset_local() -> None:
    """Tests: forget in-process buckets."""
    with _local_lock:
        _local.clear()
