#!/usr/bin/env python3
"""Message store benchmark: p50/p99 of reading a 50-message history page
from one channel holding 1,000,000 messages, for each store (`make bench-store`).

Per store it makes a database of its own (PostgreSQL database / Cassandra
keyspace / MongoDB database named chat_bench_<pid>), bulk-loads the channel
directly in the store's layout (COPY; unlogged batches per partition;
insert_many), then reads through the store interface, as the app does:

- latest: the newest page (opening a channel);
- decorated: that page with its reactions and thread counts, as a history
  answer reads it (the message lifecycle's two extra reads);
- scrollback: the page before a random message of the channel;
- append: then a send into that channel (no target; it shows what a store's
  layout costs writers at this size).

On FerretDB with its SQLite backend (FERRETDB_SQLITE_DIR set, as
scripts/services prints it) the mongodb row is measured twice: `mongodb` as
FerretDB stands (its `_id` lookups scan the table), then `mongodb+ix` after
the operator's index there (scripts/ferretdb_index.py).

Each row also prints the 1-minute load average taken just before it ran: the
machine is shared, and figures taken under load say more about the load.

Ids are spread ten seconds apart (1M messages span ~116 days, so Cassandra's
10-day buckets and MongoDB's 64-message buckets are what a long-lived busy
channel has). Loopback only; every phase is bounded; the database is dropped
afterwards. Needs the services' variables (DATABASE_URL, CASSANDRA_HOSTS,
MONGODB_URI), which `make bench-store` sets through scripts/services.
Target: p99 <= 10 ms.
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

STREAM = "ch:1"
STEP_MS = 10_000
TARGET_P99_MS = 10.0


def message_ids(count: int) -> list[int]:
    from messagestore import ids

    first_ms = ids.now_ms() - count * STEP_MS - 60_000
    return [((first_ms + i * STEP_MS - ids.EPOCH_MS) << ids.SEQUENCE_BITS) for i in range(count)]


def created_at(message_id: int) -> datetime:
    from messagestore import ids

    return ids.id_time(message_id)


def content(i: int) -> str:
    return f"message {i}: the quick brown fox jumps over the lazy dog, again and again"


def chunks(items: list[int], size: int) -> Iterator[list[int]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class Deadline:
    def __init__(self, seconds: float, what: str):
        self.end = time.monotonic() + seconds
        self.what = what

    def check(self) -> None:
        if time.monotonic() > self.end:
            raise TimeoutError(f"{self.what} took longer than its budget")


# -- SQL (PostgreSQL through DATABASE_URL) --------------------------------------------


def sql_setup(database: str) -> None:
    """Point Django at a fresh PostgreSQL database before django.setup()."""
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith(("postgres://", "postgresql://")):
        raise SystemExit("the SQL store benchmark needs DATABASE_URL=postgres://... (scripts/services up postgres)")
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{database}"')
    os.environ["DATABASE_URL"] = urlparse(url)._replace(path=f"/{database}").geturl()


def sql_load(ids_: list[int], deadline: Deadline) -> Any:
    from django.core.management import call_command
    from django.db import connection

    from messagestore.sql import SqlMessageStore

    call_command("migrate", verbosity=0, interactive=False)
    with connection.cursor() as cursor:
        raw = cursor.cursor  # psycopg 3: COPY is the fast path for a million rows
        columns = "stream, message_id, author_id, content, message_type, mentions, created_at, is_pinned, is_ai, hidden"
        with raw.copy(f"COPY chatcore_message ({columns}) FROM STDIN") as copy:
            for i, message_id in enumerate(ids_):
                copy.write_row((STREAM, message_id, 1 + i % 7, content(i), "text", "[]", created_at(message_id), False, False, False))
                if i % 100_000 == 0:
                    deadline.check()
        cursor.execute("INSERT INTO chatcore_streamhead (stream, last_id) VALUES (%s, %s)", [STREAM, ids_[-1]])
        cursor.execute("ANALYZE chatcore_message")
    return SqlMessageStore()


def sql_drop(database: str) -> None:
    from django.db import connections

    connections.close_all()
    import psycopg

    url = urlparse(os.environ["DATABASE_URL"])._replace(path="/postgres").geturl()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


# -- Cassandra ---------------------------------------------------------------------


def cassandra_load(ids_: list[int], keyspace: str, deadline: Deadline) -> Any:
    from cassandra.concurrent import execute_concurrent
    from cassandra.query import BatchStatement, BatchType

    from messagestore.cassandra import CassandraMessageStore, bucket_of

    hosts = os.environ.get("CASSANDRA_HOSTS", "")
    if not hosts:
        raise SystemExit("CASSANDRA_HOSTS is not set (scripts/services up cassandra)")
    store = CassandraMessageStore(hosts=hosts.split(","), port=int(os.environ.get("CASSANDRA_PORT") or 9042), keyspace=keyspace, timeout=10)
    store.ensure_schema()
    session = store._session()
    insert = session.prepare(
        f"INSERT INTO {keyspace}.messages (stream, bucket, id, author_id, content, message_type, mentions, created_at,"
        " is_pinned, is_ai, hidden) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
    )
    index = {message_id: i for i, message_id in enumerate(ids_)}
    by_bucket: dict[int, list[int]] = {}
    for message_id in ids_:
        by_bucket.setdefault(bucket_of(message_id), []).append(message_id)
    for bucket in by_bucket:
        session.execute(f"INSERT INTO {keyspace}.stream_buckets (stream, bucket) VALUES (%s, %s)", (STREAM, bucket))

    def batches() -> Iterator[tuple[BatchStatement, tuple]]:
        # Unlogged batches of one partition each: one mutation per batch on
        # the server, the cheapest bulk path Cassandra has short of sstables.
        for bucket, members in by_bucket.items():
            for part in chunks(members, 100):
                batch = BatchStatement(batch_type=BatchType.UNLOGGED)
                for message_id in part:
                    i = index[message_id]
                    values = (STREAM, bucket, message_id, 1 + i % 7, content(i), "text", [], created_at(message_id), False, False, False)
                    batch.add(insert, values)
                yield batch, ()
            deadline.check()

    for result in execute_concurrent(session, batches(), concurrency=16, raise_on_first_error=True, results_generator=True):
        if not result.success:
            raise RuntimeError(result.result_or_exc)
    session.execute(f"INSERT INTO {keyspace}.stream_heads (stream, last_id) VALUES (%s, %s) IF NOT EXISTS", (STREAM, ids_[-1]))
    settle_compactions(session)
    return store


def settle_compactions(session: Any, limit: float = 180.0) -> None:
    """A bulk load leaves Cassandra compacting for a while, busy on both
    cores; a channel read in production is not. Wait (bounded) until no
    compaction has run for 3 s, and say how long that took."""
    started = time.monotonic()
    quiet_since = None
    while time.monotonic() - started < limit:
        busy = list(session.execute("SELECT kind FROM system_views.sstable_tasks"))
        if busy:
            quiet_since = None
        elif quiet_since is None:
            quiet_since = time.monotonic()
        elif time.monotonic() - quiet_since >= 3:
            break
        time.sleep(0.5)
    print(f"[cassandra] compactions after the load settled in {time.monotonic() - started:.0f}s (limit {limit:.0f}s)", flush=True)


# -- MongoDB -------------------------------------------------------------------------


def mongodb_load(ids_: list[int], database: str, deadline: Deadline) -> Any:
    from messagestore import StoredMessage
    from messagestore.mongodb import BUCKET_SIZE, MongoMessageStore, document_of, encode

    uri = os.environ.get("MONGODB_URI", "")
    if not uri:
        raise SystemExit("MONGODB_URI is not set (scripts/services up mongodb)")
    store = MongoMessageStore(uri=uri, database=database, timeout=10)
    store.ensure_schema()
    top = (len(ids_) - 1) // BUCKET_SIZE
    recent: dict[str, dict[str, Any]] = {}  # the newest two buckets live in the stream's head
    for first in range(0, len(ids_), BUCKET_SIZE * 200):
        # 200 buckets of 64 messages per insert_many, each bucket in the
        # store's own encoding (one JSON line per message).
        docs = []
        for start in range(first, min(first + BUCKET_SIZE * 200, len(ids_)), BUCKET_SIZE):
            members = ids_[start : start + BUCKET_SIZE]
            lines = [
                encode(document_of(StoredMessage(id=m, stream=STREAM, author_id=1 + (start + k) % 7, content=content(start + k), created_at=created_at(m))))
                for k, m in enumerate(members)
            ]
            number = start // BUCKET_SIZE
            if number >= top - 1:
                recent[f"b{number}"] = {"lo": members[0], "hi": members[-1], "messages": "\n".join(lines)}
                continue
            docs.append(
                {"_id": f"{STREAM}|{number}", "stream": STREAM, "b": number, "lo": members[0], "hi": members[-1], "messages": "\n".join(lines)}
            )
        if docs:
            store.buckets.insert_many(docs, ordered=False)
        deadline.check()
    for first in range(0, len(ids_), 10_000):
        store.locators.insert_many(
            [{"_id": f"{STREAM}|{m}", "b": (first + k) // BUCKET_SIZE} for k, m in enumerate(ids_[first : first + 10_000])], ordered=False
        )
        deadline.check()
    store.heads.insert_one({"_id": STREAM, "last_id": ids_[-1], "seq": len(ids_), "pins": [], "recent": recent})
    return store


# -- measuring -----------------------------------------------------------------------


def measure(read: Callable[[], Any], count: int, budget: float) -> list[float]:
    end = time.monotonic() + budget
    for _ in range(min(20, count)):  # warm caches and JITs, as a running server has
        read()
        if time.monotonic() > end - budget * 0.75:
            break
    times: list[float] = []
    while len(times) < count and time.monotonic() < end:
        started = time.perf_counter()
        read()
        times.append((time.perf_counter() - started) * 1000)
    return times


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


KINDS = ("latest", "decorated", "scrollback", "append")


def bench_store(
    name: str, store: Any, ids_: list[int], reads: int, budget: float, kinds: tuple[str, ...] = KINDS
) -> list[tuple[str, str, int, float, float, float]]:
    from messagestore import NewMessage

    rng = random.Random(42)
    rows = []

    def latest() -> None:
        page, _ = store.page(STREAM, limit=50)
        assert len(page) == 50 and page[-1].id == ids_[-1]

    def decorated() -> None:
        # What a history answer reads from the store: the page, then its
        # reactions and thread counts (the message lifecycle).
        page, _ = store.page(STREAM, limit=50)
        page_ids = [m.id for m in page]
        store.reactions(STREAM, page_ids)
        store.thread_stats(STREAM, page_ids)

    def scrollback() -> None:
        position = rng.randrange(50, len(ids_))
        page, _ = store.page(STREAM, before=ids_[position], limit=50)
        assert len(page) == 50 and page[-1].id == ids_[position - 1]

    def append() -> None:
        # A send into the same channel (after the reads: it adds messages).
        store.append(NewMessage(stream=STREAM, author_id=1, content=content(0)))

    plan = (("latest", latest, reads), ("decorated", decorated, reads), ("scrollback", scrollback, reads), ("append", append, min(reads, 200)))
    for kind, read, count in plan:
        if kind not in kinds:
            continue
        load = os.getloadavg()[0]  # before the kind runs: what else was using the machine
        times = measure(read, count, budget)
        rows.append((name, kind, len(times), percentile(times, 0.5), percentile(times, 0.99), load))
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stores", default="sql,cassandra,mongodb")
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--reads", type=int, default=500, help="timed page reads per kind and store")
    parser.add_argument("--load-budget", type=float, default=900, help="seconds allowed to load one store")
    parser.add_argument("--read-budget", type=float, default=60, help="seconds allowed for one kind of read")
    args = parser.parse_args()
    stores = [s.strip() for s in args.stores.split(",") if s.strip()]
    database = f"chat_bench_{os.getpid()}"

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chatsite.settings")
    os.environ["LOG_LEVEL"] = "WARNING"
    if "sql" in stores:
        sql_setup(database)
    import django

    django.setup()
    ids_ = message_ids(args.messages)
    rows: list[tuple[str, str, int, float, float, float]] = []
    loads: dict[str, float] = {}
    for name in stores:
        print(f"[{name}] loading {args.messages:,} messages ...", flush=True)
        started = time.monotonic()
        deadline = Deadline(args.load_budget, f"loading {name}")
        store = None
        try:
            if name == "sql":
                store = sql_load(ids_, deadline)
            elif name == "cassandra":
                store = cassandra_load(ids_, database, deadline)
            elif name == "mongodb":
                store = mongodb_load(ids_, database, deadline)
            else:
                raise SystemExit(f"unknown store {name}")
            loads[name] = time.monotonic() - started
            print(f"[{name}] loaded in {loads[name]:.0f}s; reading ...", flush=True)
            ferretdb_dir = os.environ.get("FERRETDB_SQLITE_DIR", "") if name == "mongodb" else ""
            if ferretdb_dir:
                # FerretDB on SQLite: first as it stands (its _id lookups scan),
                # then with the operator's index (scripts/ferretdb_index.py).
                rows += bench_store("mongodb", store, ids_, args.reads, args.read_budget, kinds=("latest", "decorated", "scrollback"))
                indexing = time.monotonic()
                subprocess.run([sys.executable, str(ROOT / "scripts" / "ferretdb_index.py"), ferretdb_dir, "--database", store.db.name], check=True)
                print(f"[{name}] FerretDB SQLite _id index added in {time.monotonic() - indexing:.0f}s; reading ...", flush=True)
                name = "mongodb+ix"
                loads[name] = loads["mongodb"]
            rows += bench_store(name, store, ids_, args.reads, args.read_budget)
        finally:
            if name == "sql":
                sql_drop(database)
            elif store is not None:
                store.drop_schema()

    print()
    print(f"History page of 50 from one channel of {args.messages:,} messages (target p99 <= {TARGET_P99_MS:.0f} ms)")
    print(f"{'store':<10} {'kind':<11} {'n':>5} {'p50 ms':>8} {'p99 ms':>8}  {'load s':>7}  {'loadavg':>7}  target")
    for name, kind, n, p50, p99, load in rows:
        verdict = ("ok" if p99 <= TARGET_P99_MS else "MISSED") if kind != "append" else "(no target)"
        print(f"{name:<10} {kind:<11} {n:>5} {p50:>8.2f} {p99:>8.2f}  {loads[name]:>7.0f}  {load:>7.2f}  {verdict}")
    print(f"\nmachine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC")
    return 0


if __name__ == "__main__":
    sys.exit(main())
