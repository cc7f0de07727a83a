"""Login throttling (PROTOCOL.md, "Login throttling"): after
CHAT_LOGIN_FAILURES failed logins for one username within CHAT_LOGIN_WINDOW
seconds, that username's logins are refused (429, Retry-After), the right
password included, until the window has passed; a successful login before
that clears the count. Counted in Redis when REDIS_URL is set, so every
process sees the same count; in-process otherwise. An unknown username is
counted like a known one, so the answers tell nothing about who exists."""

from __future__ import annotations

import threading
import time
import unicodedata

from django.conf import settings

from realtime.redis import sync_client

_local: dict[str, tuple[int, float]] = {}  # key -> (failures, the window's end on the monotonic clock)
_lock = threading.Lock()


def _key(username: str) -> str:
    return "login-failures:" + unicodedata.normalize("NFKC", username).casefold()


def login_wait(username: str) -> float:
    """Seconds until `username` may try again; 0 when it may now."""
    key, limit = _key(username), settings.CHAT_LOGIN_FAILURES
    client = sync_client()
    if client is not None:
        pipe = client.pipeline()
        pipe.get(key)
        pipe.ttl(key)
        failures, ttl = pipe.execute()
        return float(max(ttl, 1)) if failures is not None and int(failures) >= limit else 0.0
    with _lock:
        failures, ends = _local.get(key, (0, 0.0))
        left = ends - time.monotonic()
        return left if failures >= limit and left > 0 else 0.0


def login_failed(username: str) -> None:
    key, window = _key(username), int(settings.CHAT_LOGIN_WINDOW)
    client = sync_client()
    if client is not None:
        # The window starts at the first failure: EXPIRE only when INCR made the key.
        client.eval("if redis.call('INCR', KEYS[1]) == 1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end return 0", 1, key, window)
        return
    with _lock:
        failures, ends = _local.get(key, (0, 0.0))
        now = time.monotonic()
        _local[key] = (failures + 1, ends) if ends > now else (1, now + window)


def login_succeeded(username: str) -> None:
    client = sync_client()
    if client is not None:
        client.delete(_key(username))
        return
    with _lock:
        _local.pop(_key(username), None)


def reset_local() -> None:
    """Tests: forget in-process counts."""
    with _lock:
        _local.clear()
