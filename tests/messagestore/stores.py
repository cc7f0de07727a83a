"""The stores under test (each on its real server) and helpers shared by the
store contract modules; conftest.py makes the fixtures
here every module's."""

from __future__ import annotations

import itertools
import multiprocessing
import os
import uuid
from typing import Any
from urllib.parse import urlparse

import pytest

from messagestore import MessageStore, NewMessage, ids
from tests import ferretdb
from tests.conftest import require_service

RUN = uuid.uuid4().hex[:10]
BACKENDS = [
    pytest.param("sql", id="sql"),
    pytest.param("cassandra", id="cassandra", marks=pytest.mark.needs_cassandra),
    pytest.param("mongodb", id="mongodb", marks=pytest.mark.needs_mongodb),
]
REAL_SERVERS = [
    pytest.param("cassandra", id="cassandra", marks=pytest.mark.needs_cassandra),
    pytest.param("mongodb", id="mongodb", marks=pytest.mark.needs_mongodb),
]


def build_store(name: str, config: dict[str, Any]) -> MessageStore:
    if name == "sql":
        from messagestore.sql import SqlMessageStore

        return SqlMessageStore()
    if name == "cassandra":
        from messagestore.cassandra import CassandraMessageStore

        return CassandraMessageStore(**config)
    if name == "mongodb":
        from messagestore.mongodb import MongoMessageStore

        return MongoMessageStore(**config)
    raise AssertionError(name)


@pytest.fixture(scope="session")
def cassandra_config():
    hosts = os.environ.get("CASSANDRA_HOSTS", "")
    require_service("CASSANDRA_HOSTS", hosts)
    config = {"hosts": hosts.split(","), "port": int(os.environ.get("CASSANDRA_PORT") or 9042), "keyspace": f"chat_test_{RUN}"}
    store = build_store("cassandra", config)
    store.ensure_schema()
    yield config
    store.drop_schema()


def _mongodb_uri(database: str) -> str:
    uri = os.environ.get("MONGODB_URI", "")
    require_service("MONGODB_URI", uri)
    return urlparse(uri)._replace(path=f"/{database}").geturl()


@pytest.fixture(scope="session")
def mongodb_config():
    config = {"uri": _mongodb_uri(f"chat_test_{RUN}")}
    store = build_store("mongodb", config)
    store.ensure_schema()
    if ferretdb.sqlite_dir():  # FerretDB on SQLite (scripts/services): indexed as an operator would
        ferretdb.index(ferretdb.sqlite_dir(), f"chat_test_{RUN}")
    yield config
    store.drop_schema()


@pytest.fixture(params=BACKENDS)
def backend(request) -> tuple[str, dict[str, Any]]:
    name = request.param
    return name, (request.getfixturevalue(f"{name}_config") if name != "sql" else {})


@pytest.fixture
def store(backend) -> MessageStore:
    return build_store(*backend)


@pytest.fixture
def stream() -> str:
    return f"ch:{uuid.uuid4().int % 10**12}"


@pytest.fixture
def fast_clock(monkeypatch):
    """Each id is made two days after the previous one, so a few messages
    span many of Cassandra's 10-day buckets (the stores only see the ids)."""
    start = ids.now_ms() - 500 * 86_400_000
    ticks = itertools.count()
    monkeypatch.setattr(ids, "now_ms", lambda: start + next(ticks) * 2 * 86_400_000)


def add(store: MessageStore, stream: str, n: int, *, author: int = 1, prefix: str = "m") -> list[int]:
    return [store.append(NewMessage(stream=stream, author_id=author, content=f"{prefix}{i}"))[0].id for i in range(n)]


def walk_back(store: MessageStore, stream: str, limit: int) -> list[int]:
    collected: list[int] = []
    before = None
    while True:
        page, more = store.page(stream, before=before, limit=limit)
        collected = [m.id for m in page] + collected
        if not more:
            return collected
        before = page[0].id


def walk_forward(store: MessageStore, stream: str, limit: int, after: int = 0) -> list[int]:
    collected: list[int] = []
    while True:
        page, more = store.page(stream, after=after, limit=limit)
        collected += [m.id for m in page]
        if not more:
            return collected
        after = page[-1].id




def in_two_processes(target, args_for) -> list[Any]:
    """Run `target(*args_for(i), queue)` in two forked processes (i = 1, 2);
    what each put on the queue."""
    from django.db import connections

    connections.close_all()
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    procs = [ctx.Process(target=target, args=(*args_for(i), queue)) for i in (1, 2)]
    for p in procs:
        p.start()
    results = [queue.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(30)
        assert p.exitcode == 0
    return results
