"""Shared fixtures. Data is made through the real services, never mocks."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable

import pytest

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def require_service(name: str, value: str) -> None:
    """A test that needs a real service fails in CI when it is missing, and is
    skipped (with the reason printed) only outside CI."""
    if value:
        return
    message = f"{name} is not set: start it with `scripts/services up` (make test does)"
    if IN_CI:
        pytest.fail(message)
    print(f"SKIP: {message}", file=sys.stderr)
    pytest.skip(message)


logging.getLogger("httpx").setLevel(logging.WARNING)


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, django_db_blocker):
    """The test database, dropped at the end even while a worker thread of
    `database_sync_to_async` still holds a connection to it (connections are
    per thread and kept for DATABASE_CONN_MAX_AGE): on PostgreSQL those
    sessions are ended first, so no test database is left behind."""
    yield
    from django.db import connection

    if connection.vendor != "postgresql":
        return
    with django_db_blocker.unblock(), connection.cursor() as cursor:
        cursor.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()")


@pytest.fixture(autouse=True)
def _fresh_in_process_state(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    # Every event a consumer sends is checked against its schema (wire.schema):
    # a test during which one did not match fails here.
    settings.CHAT_CHECK_EVENTS = True
    # The search index is written in the writer's transaction: the async
    # indexer (PostgreSQL's default) would write after a test's commit, into
    # the next test's tables. tests/search/test_worker.py turns it on.
    settings.CHAT_SEARCH_INDEX_MODE = "sync"
    # Tests register many users from one address; the registration throttle
    # has its own test (tests/reliability/test_hardening.py).
    settings.CHAT_REGISTER_RATE = "100000/hour"
    from django.core.cache import cache

    from accounts import throttle
    from messagestore import reset_store
    from presence import services as presence
    from realtime import connections, ratelimit
    from wire import schema
    from workspace_chat import selectors as chat_selectors

    ratelimit.reset_local()
    connections.reset_local()
    throttle.reset_local()
    cache.clear()
    presence.reset_local()
    chat_selectors._member_counts.clear()
    reset_store()
    _fresh_redis()
    schema.violations.clear()
    yield
    _fresh_redis()
    violations = list(schema.violations)
    schema.violations.clear()
    assert not violations, f"events left a consumer with fields their schema does not declare: {violations}"


def _fresh_redis() -> None:
    """In-process tests share REDIS_URL's database: empty it (rate-limit
    buckets, presence, channel-layer groups of earlier tests reuse the same
    ids) and drop cached layer and client instances, whose connections and
    locks belong to an earlier test's event loop. End-to-end servers use
    databases of their own (tests/e2e/conftest.py)."""
    from channels.layers import channel_layers

    from realtime import redis as chat_redis

    channel_layers.backends.clear()
    chat_redis._sync_client = None
    chat_redis._async_clients.clear()
    client = chat_redis.sync_client()  # REDIS_URL's or, with REDIS_SENTINELS, the primary's database
    if client is not None:
        client.flushdb()
        client.close()
    chat_redis._sync_client = None  # made anew with the test's settings


@pytest.fixture
def redis_url() -> str:
    url = os.environ.get("REDIS_URL", "")
    require_service("REDIS_URL", url)
    return url


@pytest.fixture
def make_user(db) -> Callable[..., object]:
    from accounts.services import user_register

    counter = {"n": 0}

    def make(username: str | None = None, *, display_name: str = "", password: str = "correct-horse-9"):
        counter["n"] += 1
        return user_register(username=username or f"user{counter['n']}", password=password, display_name=display_name)

    return make


@pytest.fixture
def school(make_user):
    """A workspace: admin alice, teacher bob, student carol, outsider dave;
    a public text channel, an announcement channel and a private channel."""
    from workspace_chat import services
    from workspace_chat.models import ChannelKind

    alice = make_user("alice", display_name="Alice A")
    bob = make_user("bob", display_name="Bob B")
    carol = make_user("carol", display_name="Carol C")
    dave = make_user("dave")
    ws = services.workspace_create(user=alice, name="School").workspace
    services.workspace_member_add(actor=alice, workspace_id=ws.id, username="bob", role="teacher")
    services.workspace_member_add(actor=alice, workspace_id=ws.id, username="carol", role="student")
    general = services.channel_create(actor=alice, workspace_id=ws.id, name="general", kind=ChannelKind.TEXT, is_private=False)
    news = services.channel_create(actor=alice, workspace_id=ws.id, name="news", kind=ChannelKind.ANNOUNCEMENT, is_private=False)
    staff = services.channel_create(actor=alice, workspace_id=ws.id, name="staff", kind=ChannelKind.TEXT, is_private=True)

    class School:
        pass

    s = School()
    s.alice, s.bob, s.carol, s.dave = alice, bob, carol, dave
    s.workspace, s.general, s.news, s.staff = ws, general, news, staff
    return s


@pytest.fixture
def fast_and_unlimited(settings):
    """For tests that create many users and write a lot: a cheap password
    hash, and rate limits out of the way (they have tests of their own)."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.CHAT_RATE_LIMIT_MESSAGES = 100_000
    settings.CHAT_RATE_LIMIT_EVENTS = 100_000


@pytest.fixture
def in_memory_layer(settings):
    """The in-memory channel layer, for tests that read broadcasts from
    synchronous code: each async_to_sync call runs its own event loop, which
    channels-redis's per-loop receive buffers do not allow."""
    from channels.layers import channel_layers

    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    channel_layers.backends.clear()
    yield
    channel_layers.backends.clear()


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_teardown(item):
    """Before the test's event loop is closed: stop the per-process hubs
    (realtime.hub) that ran on it, which a cancellation alone may not."""
    from realtime.hub import close_hubs

    close_hubs()


def pytest_sessionfinish(session, exitstatus):
    """Drop the PostgreSQL databases the session's server processes used
    (tests.e2e.harness.create_database); the servers have stopped by now."""
    from tests.e2e.harness import drop_created_databases

    drop_created_databases()
