"""Per-user token buckets shared by all connections (and, over Redis, all
processes): CHAT_RATE_LIMIT_MESSAGES tokens for messages and
CHAT_RATE_LIMIT_EVENTS for every other event, each refilled over
CHAT_RATE_LIMIT_WINDOW seconds; and the coalescing of typing events."""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass

from django.conf import settings

from realtime.redis import async_client, sync_client


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
_quiet: dict[str, float] = {}  # once_per without Redis: key -> quiet until (monotonic)
_local_lock = threading.Lock()


def _limits(capacity: int | None, window: float | None) -> tuple[int, float]:
    capacity = max(1, int(settings.CHAT_RATE_LIMIT_MESSAGES if capacity is None else capacity))
    return capacity, capacity / max(0.001, float(settings.CHAT_RATE_LIMIT_WINDOW if window is None else window))


def take(key: str, *, capacity: int | None = None, window: float | None = None) -> Decision:
    """Take one token from the bucket `key`. Defaults: the message rate limit
    (CHAT_RATE_LIMIT_MESSAGES per CHAT_RATE_LIMIT_WINDOW seconds)."""
    capacity, rate = _limits(capacity, window)
    client = sync_client()
    if client is not None:
        allowed, retry = client.eval(_LUA, 1, f"ratelimit:{key}", capacity, rate, math.ceil(capacity / rate) + 1)
        return Decision(bool(int(allowed)), float(retry))
    return _take_local(key, capacity, rate)


async def atake(key: str, *, capacity: int | None = None, window: float | None = None) -> Decision:
    """`take` from async code (the event loop's Redis client: no thread hop)."""
    capacity, rate = _limits(capacity, window)
    client = async_client()
    if client is not None:
        allowed, retry = await client.eval(_LUA, 1, f"ratelimit:{key}", capacity, rate, math.ceil(capacity / rate) + 1)
        return Decision(bool(int(allowed)), float(retry))
    return _take_local(key, capacity, rate)


def _take_local(key: str, capacity: int, rate: float) -> Decision:
    now = time.monotonic()
    with _local_lock:
        tokens, ts = _local.get(key, (float(capacity), now))
        tokens = min(capacity, tokens + (now - ts) * rate)
        if tokens >= 1:
            _local[key] = (tokens - 1, now)
            return Decision(True, 0.0)
        _local[key] = (tokens, now)
        return Decision(False, (1 - tokens) / rate)


# Everything but messages (typing, read marks, joins and leaves): a bucket of
# its own per user, CHAT_RATE_LIMIT_EVENTS per CHAT_RATE_LIMIT_WINDOW.
def events_key(user_id: int) -> str:
    return f"events:{user_id}"


async def take_event(user_id: int) -> Decision:
    return await atake(events_key(user_id), capacity=settings.CHAT_RATE_LIMIT_EVENTS)


def take_event_sync(user_id: int) -> Decision:
    return take(events_key(user_id), capacity=settings.CHAT_RATE_LIMIT_EVENTS)


def reset_local() -> None:
    """Tests: forget in-process buckets."""
    with _local_lock:
        _local.clear()
        _quiet.clear()


async def once_per(key: str, seconds: float) -> bool:
    """True at most once per `seconds` for `key`, across processes (Redis
    SET NX PX); the typing coalescer."""
    client = async_client()
    if client is not None:
        return bool(await client.set(f"once:{key}", 1, nx=True, px=int(seconds * 1000)))
    now = time.monotonic()
    with _local_lock:
        if _quiet.get(key, 0.0) > now:
            return False
        _quiet[key] = now + seconds
        return True


async def once_per_clear(key: str) -> None:
    client = async_client()
    if client is not None:
        await client.delete(f"once:{key}")
        return
    with _local_lock:
        _quiet.pop(key, None)
