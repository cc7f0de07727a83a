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
from messagestore.base import ReadPointer, ScanningStore, StoredMessage, StoreError
from messagestore.cassandra.models import BUCKET_SECONDS, DRIVER_ERRORS, MODELS, _aware, bucket_of

T = TypeVar("T")

# Reads go through these prepared statements; writes through the models.
_MIN_INT, _MAX_INT, _MAX_BIGINT = -(2**31), 2**31 - 1, 2**63 - 1
_COLUMNS = (
    "stream, bucket, id, author_id, content, message_type, file_url, reply_to, mentions, created_at,"
    " edited_at, is_pinned, pinned_by, is_ai, client_id, grade, feedback, graded_by, hidden"
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
            self._prepared[cql] = statement
        return statement

    def _session(self) -> Session:
        return connection.get_session(self.connection_name)

    def _execute(self, cql: str, params: Sequence[Any]) -> list[dict[str, Any]]:
        # The hot reads skip cqlengine's model instances (see the package docstring).
        return self._execute_prepared(self._statement(cql), params)

    def _execute_prepared(self, statement: PreparedStatement, params: Sequence[Any]) -> list[dict[str, Any]]:
        return list(self._session().execute(statement, params))

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
            hidden=bool(row["hidden"]),
        )

    def _scan(
        self, stream: str, *, after: int | None, before: int | None, ascending: bool, chunk: int, narrow: bool = False
    ) -> Iterator[dict[str, Any]]:
        """ScanningStore._scan: bucket by bucket; each query reads at most
        `chunk` rows (`narrow`: only id, author_id and hidden)."""
        cursor = after if ascending else before
        if cursor is not None:
            # The cursor's own bucket first, without asking which buckets
            # exist: a page that it fills costs one query. (Lazy: a caller
            # that has its page stops before the bucket list is read.)
            yield from self._scan_bucket(stream, bucket_of(cursor), after=after, before=before, ascending=ascending, chunk=chunk, narrow=narrow)
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
                yield from self._scan_bucket(stream, row["bucket"], after=after, before=before, ascending=ascending, chunk=chunk, narrow=narrow)
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
            yield from self._scan_bucket(stream, bucket, after=after, before=before, ascending=False, chunk=chunk, narrow=narrow, first=first)

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
    ) -> Iterator[dict[str, Any]]:
        """`first`: the result of this bucket's first query, already read."""
        query = self._statement(_SCAN[(ascending, narrow)])
        low = after if after is not None else -1
        high = before if before is not None else _MAX_BIGINT
        while True:
            rows = list(first) if first is not None else self._execute_prepared(query, (stream, bucket, low, high, chunk))
            first = None
            for row in rows:
                if row["author_id"] is not None and not row["hidden"]:
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
