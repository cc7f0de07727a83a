"""The Cassandra store's reads: prepared statements over the tables of
messagestore/cassandra/models.py, and ScanningStore's walk of a stream,
bucket by bucket. The layout and why: messagestore/cassandra/__init__.py."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from functools import wraps
from typing import Any, TypeVar

from cassandra.cluster import Session
from cassandra.cqlengine import connection
from cassandra.query import PreparedStatement

from messagestore import ids
from messagestore.base import MAX_PAGE, Change, Reaction, ReadPointer, ScanningStore, StoredMessage, StoreError, ThreadStats
from messagestore.cassandra.models import BUCKET_SECONDS, DRIVER_ERRORS, MODELS, _aware, bucket_of

T = TypeVar("T")

# Reads go through these prepared statements; writes through the models.
_MIN_INT, _MAX_INT, _MAX_BIGINT = -(2**31), 2**31 - 1, 2**63 - 1
_COLUMNS = (
    "stream, bucket, id, author_id, content, message_type, file_url, reply_to, mentions, created_at,"
    " edited_at, is_pinned, pinned_by, is_ai, client_id, grade, feedback, graded_by, graded_at, hidden, deleted_at, deleted_by"
)
_GET = "SELECT " + _COLUMNS + " FROM {ks}.messages WHERE stream = ? AND bucket = ? AND id = ?"
_BUCKETS = {
    False: "SELECT bucket FROM {ks}.stream_buckets WHERE stream = ? AND bucket >= ? AND bucket <= ?",
    True: "SELECT bucket FROM {ks}.stream_buckets WHERE stream = ? AND bucket >= ? AND bucket <= ? ORDER BY bucket ASC",
}
_SCAN = {
    (ascending, narrow): "SELECT "
    + ("id, author_id, hidden" if narrow else _COLUMNS)
    + " FROM {ks}.messages WHERE stream = ? AND bucket = ? AND id > ? AND id < ?"
    + (" ORDER BY id ASC" if ascending else "")
    + " LIMIT ?"
    for ascending in (False, True)
    for narrow in (False, True)
}
_NEWEST_BUCKETS_KEPT = 10_000  # streams whose newest bucket a process remembers
_PING = "SELECT stream FROM {ks}.stream_heads LIMIT 1"
_HEAD = "SELECT last_id FROM {ks}.stream_heads WHERE stream = ?"
_EXISTS = "SELECT id FROM {ks}.messages WHERE stream = ? AND bucket = ? AND id = ?"
_CLIENT_ID = "SELECT message_id FROM {ks}.client_ids WHERE stream = ? AND author_id = ? AND client_id = ?"
_READ_POINTERS = "SELECT user_id, message_id, read_at FROM {ks}.read_pointers WHERE stream = ?"
_PINS = "SELECT message_id FROM {ks}.pins WHERE stream = ?"
# The message lifecycle: reactions and the thread index are read bucket by
# bucket (a page's ids span one or two buckets), the change feed newest first.
_REACTIONS = (
    "SELECT message_id, emoji, user_id, at FROM {ks}.reactions"
    " WHERE stream = ? AND bucket = ? AND message_id >= ? AND message_id <= ?"
)
_THREADS = (
    "SELECT root_id, created_at FROM {ks}.thread_replies"
    " WHERE stream = ? AND bucket = ? AND root_id >= ? AND root_id <= ?"
)
_THREAD_REPLIES = "SELECT reply_id FROM {ks}.thread_replies WHERE stream = ? AND bucket = ? AND root_id = ? AND reply_id > ? LIMIT ?"
_LAST_CHANGE = "SELECT change_id FROM {ks}.changes WHERE stream = ? LIMIT 1"
_CHANGES = "SELECT change_id, message_id, kind FROM {ks}.changes WHERE stream = ? AND change_id > ? ORDER BY change_id ASC LIMIT ?"


def _driver_errors(method: Callable[..., T]) -> Callable[..., T]:
    """Every driver failure leaves the store as StoreError (services turn it
    into `server_error`)."""

    @wraps(method)
    def wrapper(self: CassandraReads, *args: Any, **kwargs: Any) -> T:
        self._bind()
        try:
            return method(self, *args, **kwargs)
        except StoreError:
            raise
        except DRIVER_ERRORS as exc:
            raise StoreError(f"Cassandra: {type(exc).__name__}: {exc}") from exc

    return wrapper


class CassandraReads(ScanningStore):
    """What the store reads; CassandraMessageStore (store.py) adds the
    connection, the schema and the writes."""

    keyspace: str
    connection_name: str
    _prepared: dict[str, PreparedStatement]
    # stream -> its newest bucket, as last seen here: the guess of `_scan`.
    _newest_bucket: dict[str, int]

    def _bind(self) -> None:
        for model in MODELS:
            model.__connection__ = self.connection_name
            model.__keyspace__ = self.keyspace


    def _statement(self, cql: str) -> PreparedStatement:
        """A prepared statement for this store's keyspace (`{ks}` in `cql`)."""
        statement = self._prepared.get(cql)
        if statement is None:
            statement = self._session().prepare(cql.format(ks=self.keyspace))
            # Every statement here is a read: safe to repeat on another host
            # (messagestore/cassandra/policies.py).
            statement.is_idempotent = True
            self._prepared[cql] = statement
        return statement

    def _session(self) -> Session:
        return connection.get_session(self.connection_name)

    def _execute(self, cql: str, params: Sequence[Any]) -> list[dict[str, Any]]:
        # The hot reads skip cqlengine's model instances (see the package docstring).
        return self._execute_prepared(self._statement(cql), params)

    def _execute_prepared(self, statement: PreparedStatement, params: Sequence[Any]) -> list[dict[str, Any]]:
        return list(self._session().execute(statement, params))

    def _execute_all(self, cql: str, params: Sequence[Sequence[Any]]) -> list[list[dict[str, Any]]]:
        """One query per parameter set, all in flight at once; the rows of each."""
        if len(params) == 1:
            return [self._execute(cql, params[0])]
        statement, session = self._statement(cql), self._session()
        futures = [session.execute_async(statement, p) for p in params]
        return [list(future.result()) for future in futures]

    def _row(self, stream: str, message_id: int) -> dict[str, Any] | None:
        """The row even when hidden; None when absent or a ghost."""
        if message_id <= 0 or message_id > ids.MAX_ID:
            return None
        rows = self._execute(_GET, (stream, bucket_of(message_id), message_id))
        return rows[0] if rows and rows[0]["author_id"] is not None else None

    def _record(self, stream: str, row: Mapping[str, Any]) -> StoredMessage:
        return StoredMessage(
            id=row["id"],
            stream=stream,
            author_id=row["author_id"],
            content=row["content"] or "",
            created_at=_aware(row["created_at"]) or ids.id_time(row["id"]),
            message_type=row["message_type"] or "text",
            file_url=row["file_url"],
            reply_to=row["reply_to"],
            mentions=list(row["mentions"] or []),
            edited_at=_aware(row["edited_at"]),
            is_pinned=bool(row["is_pinned"]),
            pinned_by=row["pinned_by"],
            is_ai=bool(row["is_ai"]),
            client_id=row["client_id"],
            grade=row["grade"],
            feedback=row["feedback"],
            graded_by=row["graded_by"],
            graded_at=_aware(row["graded_at"]),
            hidden=bool(row["hidden"]),
            deleted_at=_aware(row["deleted_at"]),
            deleted_by=row["deleted_by"],
        )

    def _scan(
        self, stream: str, *, after: int | None, before: int | None, ascending: bool, chunk: int, narrow: bool = False, with_hidden: bool = False
    ) -> Iterator[dict[str, Any]]:
        """ScanningStore._scan: bucket by bucket; each query reads at most
        `chunk` rows (`narrow`: only id, author_id and hidden)."""
        cursor = after if ascending else before
        if cursor is not None:
            # The cursor's own bucket first, without asking which buckets
            # exist: a page that it fills costs one query. (Lazy: a caller
            # that has its page stops before the bucket list is read.)
            yield from self._scan_bucket(stream, bucket_of(cursor), after=after, before=before, ascending=ascending, chunk=chunk, narrow=narrow, with_hidden=with_hidden)
            low_bucket = bucket_of(cursor) + 1 if ascending else (bucket_of(after) if after is not None else _MIN_INT)
            high_bucket = (bucket_of(before) if before is not None else _MAX_INT) if ascending else bucket_of(cursor) - 1
        else:
            low_bucket = bucket_of(after) if after is not None else _MIN_INT
            high_bucket = bucket_of(before) if before is not None else _MAX_INT
        if low_bucket > high_bucket:
            return
        buckets_query = (self._statement(_BUCKETS[ascending]), (stream, low_bucket, high_bucket))
        if cursor is not None or ascending:
            for row in self._execute_prepared(*buckets_query):
                yield from self._scan_bucket(stream, row["bucket"], after=after, before=before, ascending=ascending, chunk=chunk, narrow=narrow, with_hidden=with_hidden)
            return
        # The newest page (opening a channel): which bucket is the newest is
        # only known from the bucket list, so the newest bucket is guessed
        # (the last one this process saw, else the bucket of now) and read at
        # the same time as the list: one round trip instead of two when the
        # guess is right; when it is not, its rows are dropped.
        guess = self._newest_bucket.get(stream, int(time.time()) // BUCKET_SECONDS)
        session = self._session()
        listing = session.execute_async(*buckets_query)
        guessed = None
        if low_bucket <= guess <= high_bucket:
            guessed = session.execute_async(self._statement(_SCAN[(False, narrow)]), (stream, guess, -1, before if before is not None else _MAX_BIGINT, chunk))
        buckets = [row["bucket"] for row in listing.result()]
        if buckets:
            self._remember_newest(stream, buckets[0])
        for index, bucket in enumerate(buckets):
            first = guessed.result() if index == 0 and bucket == guess and guessed is not None else None
            yield from self._scan_bucket(stream, bucket, after=after, before=before, ascending=False, chunk=chunk, narrow=narrow, first=first, with_hidden=with_hidden)

    def _remember_newest(self, stream: str, bucket: int) -> None:
        if len(self._newest_bucket) >= _NEWEST_BUCKETS_KEPT and stream not in self._newest_bucket:
            self._newest_bucket.clear()
        self._newest_bucket[stream] = bucket

    def _scan_bucket(
        self,
        stream: str,
        bucket: int,
        *,
        after: int | None,
        before: int | None,
        ascending: bool,
        chunk: int,
        narrow: bool,
        first: Sequence[dict[str, Any]] | None = None,
        with_hidden: bool = False,
    ) -> Iterator[dict[str, Any]]:
        """`first`: the result of this bucket's first query, already read."""
        query = self._statement(_SCAN[(ascending, narrow)])
        low = after if after is not None else -1
        high = before if before is not None else _MAX_BIGINT
        while True:
            rows = list(first) if first is not None else self._execute_prepared(query, (stream, bucket, low, high, chunk))
            first = None
            for row in rows:
                if row["author_id"] is not None and (with_hidden or not row["hidden"]):
                    yield row
            if len(rows) < chunk:
                return
            if ascending:
                low = rows[-1]["id"]
            else:
                high = rows[-1]["id"]

    @_driver_errors
    def find_by_client_id(self, stream: str, author_id: int, client_id: str) -> StoredMessage | None:
        claims = self._execute(_CLIENT_ID, (stream, author_id, client_id))
        if not claims or claims[0]["message_id"] is None:
            return None
        row = self._row(stream, claims[0]["message_id"])
        return self._record(stream, row) if row is not None else None

    @_driver_errors
    def get(self, stream: str, message_id: int) -> StoredMessage | None:
        row = self._row(stream, message_id)
        return self._record(stream, row) if row is not None and not row["hidden"] else None

    @_driver_errors
    def read_pointers(self, stream: str) -> dict[int, ReadPointer]:
        return {
            r["user_id"]: ReadPointer(r["user_id"], r["message_id"], _aware(r["read_at"]) or ids.id_time(r["message_id"]))
            for r in self._execute(_READ_POINTERS, (stream,))
            if r["message_id"] is not None
        }

    @_driver_errors
    def pinned(self, stream: str) -> list[StoredMessage]:
        found = []
        for pin in self._execute(_PINS, (stream,)):
            row = self._row(stream, pin["message_id"])
            if row is not None and row["is_pinned"] and not row["hidden"]:
                found.append(self._record(stream, row))
        return found

    # -- the message lifecycle (writes: store.py) --------------------------------

    @staticmethod
    def _by_bucket(message_ids: Sequence[int]) -> dict[int, tuple[int, int]]:
        """bucket -> (lowest, highest) of the valid ids in it."""
        spans: dict[int, tuple[int, int]] = {}
        for message_id in message_ids:
            if 0 < message_id <= ids.MAX_ID:
                bucket = bucket_of(message_id)
                low, high = spans.get(bucket, (message_id, message_id))
                spans[bucket] = (min(low, message_id), max(high, message_id))
        return spans

    def _ranges(self, cql: str, stream: str, message_ids: Sequence[int]) -> Iterator[dict[str, Any]]:
        spans = self._by_bucket(message_ids)
        if not spans:
            return
        for rows in self._execute_all(cql, [(stream, bucket, low, high) for bucket, (low, high) in spans.items()]):
            yield from rows

    @_driver_errors
    def reactions(self, stream: str, message_ids: Sequence[int]) -> dict[int, list[Reaction]]:
        wanted = set(message_ids)
        rows = sorted(
            (r for r in self._ranges(_REACTIONS, stream, message_ids) if r["message_id"] in wanted),
            key=lambda r: (r["at"], r["emoji"], r["user_id"]),
        )
        found: dict[int, list[Reaction]] = {}
        for r in rows:
            found.setdefault(r["message_id"], []).append(Reaction(r["emoji"], r["user_id"], _aware(r["at"]) or ids.id_time(r["message_id"])))
        return found

    @_driver_errors
    def thread_stats(self, stream: str, root_ids: Sequence[int]) -> dict[int, ThreadStats]:
        # The index holds the visible replies only (store.py keeps it so).
        wanted = set(root_ids)
        counts: dict[int, int] = {}
        newest: dict[int, Any] = {}
        for r in self._ranges(_THREADS, stream, root_ids):
            root = r["root_id"]
            if root in wanted:
                counts[root] = counts.get(root, 0) + 1
                if r["created_at"] is not None and (root not in newest or r["created_at"] > newest[root]):
                    newest[root] = r["created_at"]
        return {root: ThreadStats(n, _aware(newest.get(root)) or ids.id_time(root)) for root, n in counts.items()}

    @_driver_errors
    def thread_page(self, stream: str, root_id: int, *, after: int | None = None, limit: int = 50) -> tuple[list[StoredMessage], bool]:
        limit = max(1, min(int(limit), MAX_PAGE))
        if not 0 < root_id <= ids.MAX_ID:
            return [], False
        found: list[StoredMessage] = []
        cursor = max(after or 0, 0)
        while len(found) <= limit:
            want = limit + 1 - len(found)
            reply_ids = [r["reply_id"] for r in self._execute(_THREAD_REPLIES, (stream, bucket_of(root_id), root_id, cursor, want))]
            if reply_ids:
                # An index row may outlive its reply for a moment (a hide or a
                # delete in flight): the message row decides.
                for rows in self._execute_all(_GET, [(stream, bucket_of(i), i) for i in reply_ids]):
                    row = rows[0] if rows else None
                    if row is not None and row["author_id"] is not None and not row["hidden"] and row["reply_to"] == root_id:
                        found.append(self._record(stream, row))
            if len(reply_ids) < want:
                break
            cursor = reply_ids[-1]
        return found[:limit], len(found) > limit

    @_driver_errors
    def changes(self, stream: str, *, after: int, limit: int) -> list[Change]:
        if limit <= 0:
            return []
        return [Change(r["change_id"], r["message_id"], r["kind"]) for r in self._execute(_CHANGES, (stream, max(int(after), 0), int(limit)))]

    @_driver_errors
    def last_change_id(self, stream: str) -> int:
        rows = self._execute(_LAST_CHANGE, (stream,))
        return int(rows[0]["change_id"]) if rows else 0
