"""Search tests run on the database the suite runs on: SQLite (FTS5) in the
embedded run, PostgreSQL (tsvector, GIN, unaccent) with DATABASE_URL."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _unlimited(settings):
    settings.CHAT_RATE_LIMIT_MESSAGES = 100_000
    settings.CHAT_RATE_LIMIT_EVENTS = 100_000


@pytest.fixture(autouse=True)
def _index_in_the_writers_transaction(settings):
    # A test runs inside one transaction that never commits: the async
    # indexer (the default on PostgreSQL) would never hear of its writes.
    # tests/search/test_worker.py tests that mode with real commits.
    settings.CHAT_SEARCH_INDEX_MODE = "sync"
