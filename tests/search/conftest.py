"""Search tests run on the database the suite runs on: SQLite (FTS5) in the
embedded run, PostgreSQL (tsvector, GIN, unaccent) with DATABASE_URL."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _unlimited(settings):
    settings.CHAT_RATE_LIMIT_MESSAGES = 100_000
    settings.CHAT_RATE_LIMIT_EVENTS = 100_000
