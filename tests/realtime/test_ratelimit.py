import pytest

from realtime import ratelimit


def _exhaust(key: str, n: int) -> list[bool]:
    return [ratelimit.take(key).allowed for _ in range(n)]


def test_in_process_bucket(settings):
    settings.REDIS_URL = ""
    settings.CHAT_RATE_LIMIT_MESSAGES = 3
    settings.CHAT_RATE_LIMIT_WINDOW = 60
    assert _exhaust("user:1", 4) == [True, True, True, False]
    decision = ratelimit.take("user:1")
    assert not decision.allowed and 0 < decision.retry_after <= 20
    assert ratelimit.take("user:2").allowed


def test_bucket_refills(settings):
    settings.REDIS_URL = ""
    settings.CHAT_RATE_LIMIT_MESSAGES = 2
    settings.CHAT_RATE_LIMIT_WINDOW = 0.2
    assert _exhaust("user:9", 3) == [True, True, False]
    import time

    time.sleep(0.25)
    assert ratelimit.take("user:9").allowed


@pytest.mark.needs_redis
def test_redis_bucket_is_shared(settings, redis_url):
    import uuid

    import redis

    from realtime import redis as chat_redis

    settings.REDIS_URL = redis_url
    settings.REDIS_SENTINELS = []  # REDIS_URL's Redis, where the check below looks, even in a Sentinel run
    settings.CHAT_RATE_LIMIT_MESSAGES = 3
    settings.CHAT_RATE_LIMIT_WINDOW = 60
    chat_redis._sync_client = None
    key = f"user:test-{uuid.uuid4()}"
    try:
        assert _exhaust(key, 3) == [True, True, True]
        # State lives in Redis, not in this process: forget the local client.
        chat_redis._sync_client = None
        decision = ratelimit.take(key)
        assert not decision.allowed and decision.retry_after > 0
        assert redis.Redis.from_url(redis_url).exists(f"ratelimit:{key}")
    finally:
        chat_redis._sync_client = None
