"""The Cassandra message store: writes through the models
(messagestore.cassandra.models), reads through prepared statements. The
layout and why: messagestore/cassandra/__init__.py."""

from __future__ import annotations

import logging
import os
import time
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from functools import wraps
from typing import Any, TypeVar

from cassandra.cluster import Session
from cassandra.cqlengine import connection, management
from cassandra.cqlengine.models import Model as CqlModel
from cassandra.cqlengine.query import LWTException
from cassandra.query import PreparedStatement
from django_cassandra_engine.models import DjangoCassandraModel

from messagestore import ids
from messagestore.base import NewMessage, ReadPointer, ScanningStore, StoredMessage, StoreError
from messagestore.cassandra.models import (
    BUCKET_SECONDS,
    DRIVER_ERRORS,
    MODELS,
    CassandraClientId,
    CassandraMessage,
    CassandraPin,
    CassandraReadPointer,
    CassandraStreamBucket,
    CassandraStreamHead,
    _aware,
    _now,
    bucket_of,
    connect,
)

logger = logging.getLogger(__name__)

# An append that has not written its message this long after taking its id
# (or reserving its clientId) gives up (StoreError): another may take its
# clientId over, and the next append stops waiting for it after twice as long,
# so an append that gives up never writes after a later id was taken.
CLAIM_STALE_SECONDS = 5.0
MAX_CAS_ATTEMPTS = 64
SCHEMA_TIMEOUT_SECONDS = 120.0

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
    def wrapper(self: CassandraMessageStore, *args: Any, **kwargs: Any) -> T:
        self._bind()
        try:
            return method(self, *args, **kwargs)
        except StoreError:
            raise
        except DRIVER_ERRORS as exc:
            raise StoreError(f"Cassandra: {type(exc).__name__}: {exc}") from exc

    return wrapper


class CassandraMessageStore(ScanningStore):
    name = "cassandra"

    def __init__(self, *, hosts: Sequence[str], keyspace: str, port: int = 9042, timeout: float = 3.0):
        self.hosts = tuple(h.strip() for h in hosts if h.strip())
        self.port = port
        self.keyspace = keyspace
        self.connection_name = connect(hosts=self.hosts, port=port, timeout=timeout)
        self._prepared: dict[str, PreparedStatement] = {}
        # stream -> its newest bucket, as last seen here: the guess of `page`.
        self._newest_bucket: dict[str, int] = {}
        self._bind()

    def _bind(self) -> None:
        for model in MODELS:
            model.__connection__ = self.connection_name
            model.__keyspace__ = self.keyspace

    # -- schema ------------------------------------------------------------

    @contextmanager
    def _schema_change(self) -> Iterator[None]:
        """Schema changes wait for the cluster to agree, far longer than a
        request may (seconds on a busy 2-core machine): lift the request
        timeout while one runs. Only `migrate`, tests and the benchmark do this."""
        profile = connection.get_cluster(self.connection_name).profile_manager.default
        request_timeout = profile.request_timeout
        profile.request_timeout = SCHEMA_TIMEOUT_SECONDS
        try:
            yield
        finally:
            profile.request_timeout = request_timeout

    @_driver_errors
    def ensure_schema(self) -> None:
        os.environ.setdefault("CQLENG_ALLOW_SCHEMA_MANAGEMENT", "1")
        with self._schema_change():
            # Created with replication factor 1 only when missing; a production
            # keyspace is made beforehand (NetworkTopologyStrategy) and left alone.
            management.create_keyspace_simple(self.keyspace, 1, connections=[self.connection_name])
            # cqlengine's sync_table insists on its own Model base class;
            # django_cassandra_engine's sync_cassandra widens that check the same way.
            management.Model = (CqlModel, DjangoCassandraModel)
            with warnings.catch_warnings():
                # sync_table works on a clone of each model, which Django's model
                # registry reports as a re-registration.
                warnings.simplefilter("ignore", RuntimeWarning)
                for model in MODELS:
                    management.sync_table(model)

    @_driver_errors
    def drop_schema(self) -> None:
        """Drop the keyspace (tests and the benchmark; not part of MessageStore)."""
        with self._schema_change():
            self._session().execute(f"DROP KEYSPACE IF EXISTS {self.keyspace}")

    @_driver_errors
    def ping(self) -> None:
        # Reads one of our tables, so a keyspace that `migrate` never created
        # counts as unavailable (and start-up falls back) instead of failing
        # every send later.
        self._execute(_PING, ())

    # -- reads -------------------------------------------------------------

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

    # -- writes --------------------------------------------------------------

    def _allocate_id(self, stream: str) -> tuple[int, int]:
        """(the stream's next id, the id before it; 0 for its first): a
        compare-and-set on its head row, retried with the value that beat us,
        so ids increase in acceptance order. An id is taken only once the row
        of the one before it is written (`_wait_written`), as the SQL store's
        row lock and the MongoDB store's lease do: a reader never sees a
        message while one with a lower id is still on its way, so `prev_id`
        tells consumers what to fill (realtime.delivery)."""
        heads = self._execute(_HEAD, (stream,))
        last = heads[0]["last_id"] if heads else None
        for _ in range(MAX_CAS_ATTEMPTS):
            if last is not None:
                self._wait_written(stream, last)
            candidate = ids.next_id(last)
            try:
                if last is None:
                    CassandraStreamHead.if_not_exists().create(stream=stream, last_id=candidate)
                else:
                    CassandraStreamHead.objects.filter(stream=stream).iff(last_id=last).update(last_id=candidate)
                return candidate, last or 0
            except LWTException as exc:
                last = exc.existing.get("last_id")
        raise StoreError(f"could not allocate an id in {stream} after {MAX_CAS_ATTEMPTS} attempts")

    def _wait_written(self, stream: str, message_id: int) -> None:
        """Until `message_id`'s row is written (a message, or the void row of
        an append that found its clientId stored), or its append has given up
        or died (2 x CLAIM_STALE_SECONDS from now at the latest)."""
        delay, deadline = 0.001, time.monotonic() + 2 * CLAIM_STALE_SECONDS
        while not self._execute(_EXISTS, (stream, bucket_of(message_id), message_id)):
            if time.monotonic() > deadline:
                logger.warning("message %s of %s was never written (its append died): taking the next id", message_id, stream)
                return
            time.sleep(delay)
            delay = min(delay * 2, 0.05)

    def _void(self, stream: str, message_id: int) -> None:
        """A row for an id that will hold no message (its clientId was stored
        already), so the next append need not wait for it; readers skip it
        (no author: a "ghost", see the package docstring)."""
        CassandraMessage.create(stream=stream, bucket=bucket_of(message_id), id=message_id)

    def _claim_client_id(self, new: NewMessage, message_id: int) -> StoredMessage | None:
        """Reserve the clientId for `message_id`: None when reserved (go on and
        store), else the message stored earlier under that clientId."""
        key = {"stream": new.stream, "author_id": new.author_id, "client_id": new.client_id}
        for _ in range(MAX_CAS_ATTEMPTS):
            try:
                CassandraClientId.if_not_exists().create(**key, message_id=message_id, reserved_at=_now())
                return None
            except LWTException as exc:
                held, reserved_at = exc.existing.get("message_id"), _aware(exc.existing.get("reserved_at"))
            if held is None:
                continue  # released meanwhile: try again
            row = self._row(new.stream, held)
            if row is not None:
                return self._record(new.stream, row)
            if reserved_at is not None and (_now() - reserved_at).total_seconds() < CLAIM_STALE_SECONDS:
                time.sleep(0.05)  # the other append is between its reservation and its write
                continue
            try:
                CassandraClientId.objects.filter(**key).iff(message_id=held).update(message_id=message_id, reserved_at=_now())
                logger.warning("took over clientId %r in %s: its append never stored message %s", new.client_id, new.stream, held)
                return None
            except LWTException:
                continue
        raise StoreError(f"clientId {new.client_id!r} stayed contended in {new.stream}")

    def _release_client_id(self, new: NewMessage, message_id: int) -> None:
        try:
            CassandraClientId.objects.filter(stream=new.stream, author_id=new.author_id, client_id=new.client_id).iff(
                message_id=message_id
            ).delete()
        except DRIVER_ERRORS:
            logger.warning("could not release clientId %r in %s", new.client_id, new.stream, exc_info=True)

    @_driver_errors
    def append(self, new: NewMessage) -> tuple[StoredMessage, bool]:
        if new.client_id:
            existing = self.find_by_client_id(new.stream, new.author_id, new.client_id)
            if existing is not None:
                return existing, False
        message_id, prev_id = self._allocate_id(new.stream)
        taken = time.monotonic()
        if new.client_id:
            existing = self._claim_client_id(new, message_id)
            if existing is not None:
                self._void(new.stream, message_id)
                return existing, False
        now = _now()
        # Cassandra keeps milliseconds: hand back what a later read returns.
        stored = new.stored(message_id=message_id, created_at=now.replace(microsecond=now.microsecond // 1000 * 1000), prev_id=prev_id)
        bucket = bucket_of(message_id)
        try:
            if time.monotonic() - taken > CLAIM_STALE_SECONDS:
                # The next append may stop waiting for this one soon: written
                # then, it could appear below a message readers already have.
                raise StoreError(f"the append of {message_id} in {new.stream} stalled past {CLAIM_STALE_SECONDS}s")
            # The bucket row first: a message is never in a bucket that pages skip.
            CassandraStreamBucket.create(stream=new.stream, bucket=bucket)
            if bucket >= self._newest_bucket.get(new.stream, bucket):
                self._remember_newest(new.stream, bucket)
            CassandraMessage.create(
                stream=new.stream,
                bucket=bucket,
                id=message_id,
                author_id=stored.author_id,
                content=stored.content,
                message_type=stored.message_type,
                file_url=stored.file_url,
                reply_to=stored.reply_to,
                mentions=stored.mentions,
                created_at=stored.created_at,
                is_pinned=False,
                is_ai=stored.is_ai,
                client_id=stored.client_id,
                hidden=False,
            )
        except Exception:
            if new.client_id:
                self._release_client_id(new, message_id)
            raise
        return stored, True

    @_driver_errors
    def set_read_pointer(self, stream: str, user_id: int, message_id: int) -> bool:
        for _ in range(MAX_CAS_ATTEMPTS):
            try:
                CassandraReadPointer.objects.filter(stream=stream, user_id=user_id).iff(message_id__lt=message_id).update(
                    message_id=message_id, read_at=_now()
                )
                return True
            except LWTException as exc:
                if exc.existing.get("message_id") is not None:
                    return False  # already at or past it
            try:
                CassandraReadPointer.if_not_exists().create(stream=stream, user_id=user_id, message_id=message_id, read_at=_now())
                return True
            except LWTException:
                continue  # created by another tab meanwhile: compare again
        raise StoreError(f"read pointer of {user_id} in {stream} stayed contended")

    def _update_visible(self, stream: str, message_id: int, **fields: Any) -> StoredMessage | None:
        row = self._row(stream, message_id)
        if row is None or row["hidden"]:
            return None
        CassandraMessage.objects.filter(stream=stream, bucket=row["bucket"], id=message_id).update(**fields)
        return self.get(stream, message_id)

    @_driver_errors
    def set_pinned(self, stream, message_id, *, pinned, by):
        updated = self._update_visible(stream, message_id, is_pinned=pinned, pinned_by=by if pinned else None)
        if updated is not None:
            if pinned:
                CassandraPin.create(stream=stream, message_id=message_id)
            else:
                CassandraPin.objects.filter(stream=stream, message_id=message_id).delete()
        return updated

    @_driver_errors
    def set_grade(self, stream, message_id, *, grade, feedback, by):
        return self._update_visible(stream, message_id, grade=grade, feedback=feedback, graded_by=by)

    @_driver_errors
    def update_content(self, stream, message_id, *, content, edited):
        fields: dict[str, Any] = {"content": content}
        if edited:
            fields["edited_at"] = _now()
        return self._update_visible(stream, message_id, **fields)

    @_driver_errors
    def set_hidden(self, stream, message_id, hidden):
        row = self._row(stream, message_id)
        if row is None:
            return False
        CassandraMessage.objects.filter(stream=stream, bucket=row["bucket"], id=message_id).update(hidden=hidden)
        return True

    @_driver_errors
    def delete(self, stream, message_id):
        row = self._row(stream, message_id)
        if row is None:
            return False
        CassandraMessage.objects.filter(stream=stream, bucket=row["bucket"], id=message_id).delete()
        CassandraPin.objects.filter(stream=stream, message_id=message_id).delete()
        if row["client_id"]:
            # Like the SQL store, where the unique (stream, author, client_id)
            # goes with the row: a later retry of that clientId stores anew.
            try:
                CassandraClientId.objects.filter(stream=stream, author_id=row["author_id"], client_id=row["client_id"]).iff(
                    message_id=message_id
                ).delete()
            except LWTException:
                pass
        return True
