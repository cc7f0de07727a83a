"""The Cassandra message store: writes through the models
(messagestore.cassandra.models), reads through prepared statements. The
layout and why: messagestore/cassandra/__init__.py."""

from __future__ import annotations

import logging
import os
import time
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from cassandra.concurrent import execute_concurrent_with_args
from cassandra.cqlengine import connection, management
from cassandra.cqlengine.models import Model as CqlModel
from cassandra.cqlengine.query import LWTException
from cassandra.query import SimpleStatement
from django_cassandra_engine.models import DjangoCassandraModel

from messagestore import ids
from messagestore.base import NewMessage, StoredMessage, StoreError
from messagestore.cassandra.models import (
    DRIVER_ERRORS,
    MODELS,
    CassandraChange,
    CassandraClientId,
    CassandraMessage,
    CassandraPin,
    CassandraReaction,
    CassandraReadPointer,
    CassandraStreamBucket,
    CassandraStreamHead,
    CassandraThreadReply,
    _aware,
    _now,
    _now_ms_monotonic,
    bucket_of,
    connect,
)
from messagestore.cassandra.reads import _EXISTS, _HEAD, _LAST_CHANGE, _PING, CassandraReads, _driver_errors

logger = logging.getLogger(__name__)

# An append that has not written its message this long after taking its id
# (or reserving its clientId) gives up (StoreError): another may take its
# clientId over, and the next append stops waiting for it after twice as long,
# so an append that gives up never writes after a later id was taken.
CLAIM_STALE_SECONDS = 5.0
MAX_CAS_ATTEMPTS = 64
SCHEMA_TIMEOUT_SECONDS = 120.0



class CassandraMessageStore(CassandraReads):
    name = "cassandra"

    def __init__(
        self, *, hosts: Sequence[str], keyspace: str, port: int = 9042, timeout: float = 3.0, replication: int = 1, datacenter: str = ""
    ):
        self.hosts = tuple(h.strip() for h in hosts if h.strip())
        self.port = port
        self.keyspace = keyspace
        # 1: one node, SimpleStrategy; more: NetworkTopologyStrategy with that
        # many replicas in the local datacenter, and the cluster's policies.
        self.replication = max(1, replication)
        self.datacenter = datacenter
        self.connection_name = connect(hosts=self.hosts, port=port, timeout=timeout, replication=self.replication, datacenter=datacenter)
        self._prepared = {}
        self._newest_bucket = {}
        self._bind()

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
            # Created only when missing (an existing keyspace keeps its
            # replication: an operator changes it with ALTER KEYSPACE and repair).
            if self.replication > 1:
                management.create_keyspace_network_topology(
                    self.keyspace, {self.local_datacenter(): self.replication}, connections=[self.connection_name]
                )
            else:
                management.create_keyspace_simple(self.keyspace, 1, connections=[self.connection_name])
            had_thread_index = bool(
                self._session().execute(
                    "SELECT table_name FROM system_schema.tables WHERE keyspace_name = %s AND table_name = %s",
                    (self.keyspace, CassandraThreadReply.__table_name__),
                ).all()
            )
            # cqlengine's sync_table insists on its own Model base class;
            # django_cassandra_engine's sync_cassandra widens that check the same way.
            management.Model = (CqlModel, DjangoCassandraModel)
            with warnings.catch_warnings():
                # sync_table works on a clone of each model, which Django's model
                # registry reports as a re-registration.
                warnings.simplefilter("ignore", RuntimeWarning)
                for model in MODELS:
                    management.sync_table(model)
            if not had_thread_index:
                self._index_old_replies()

    def local_datacenter(self) -> str:
        """CASSANDRA_DATACENTER, else the datacenter of the node we talk to."""
        if self.datacenter:
            return self.datacenter
        return str(self._session().execute("SELECT data_center FROM system.local").one()["data_center"])

    def _index_old_replies(self) -> None:
        """Index the replies stored before `thread_replies` existed: once,
        when `ensure_schema` creates it (a scan of every message's few
        columns). Interrupted, the table is dropped, so the next `migrate`
        starts over."""
        session = self._session()
        scan = SimpleStatement(f"SELECT stream, id, author_id, reply_to, created_at, hidden FROM {self.keyspace}.messages", fetch_size=1000)
        insert = session.prepare(
            f"INSERT INTO {self.keyspace}.thread_replies (stream, bucket, root_id, reply_id, created_at) VALUES (?, ?, ?, ?, ?)"
        )
        written = 0
        try:
            result = session.execute(scan)
            while True:
                # Page by page, from this thread: the driver's callbacks must
                # not wait for the next page.
                replies = [
                    (r["stream"], bucket_of(r["reply_to"]), r["reply_to"], r["id"], r["created_at"] or ids.id_time(r["id"]))
                    for r in result.current_rows
                    if r["reply_to"] is not None and r["author_id"] is not None and not r["hidden"]
                ]
                if replies:
                    execute_concurrent_with_args(session, insert, replies, concurrency=32)
                    written += len(replies)
                if not result.has_more_pages:
                    break
                result.fetch_next_page()
        except BaseException:
            session.execute(f"DROP TABLE IF EXISTS {self.keyspace}.{CassandraThreadReply.__table_name__}")
            raise
        if written:
            logger.info("thread index: indexed %d replies stored before it existed", written)

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
                self._reindex(existing)
                return existing, False
        message_id, prev_id = self._allocate_id(new.stream)
        taken = time.monotonic()
        if new.client_id:
            existing = self._claim_client_id(new, message_id)
            if existing is not None:
                self._void(new.stream, message_id)
                self._reindex(existing)
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
        if new.reply_to is not None:
            # After the message row (a thread never counts a reply that is not
            # stored); if this write fails the append fails with the message
            # stored, and the client's retry (same clientId) writes it.
            self._index_reply(new.stream, message_id, new.reply_to, stored.created_at)
        return stored, True

    # -- the thread index: a visible reply has a row under its root ----------

    def _index_reply(self, stream: str, reply_id: int, root_id: int, created_at: datetime) -> None:
        CassandraThreadReply.create(stream=stream, bucket=bucket_of(root_id), root_id=root_id, reply_id=reply_id, created_at=created_at)

    def _unindex_reply(self, stream: str, reply_id: int, root_id: int) -> None:
        CassandraThreadReply.objects.filter(stream=stream, bucket=bucket_of(root_id), root_id=root_id, reply_id=reply_id).delete()

    def _reindex(self, existing: StoredMessage) -> None:
        """A reply sent again: the first append may have stored it and failed
        before its thread index row."""
        if existing.reply_to is not None and not existing.hidden:
            self._index_reply(existing.stream, existing.id, existing.reply_to, existing.created_at)

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
        # Milliseconds, as Cassandra keeps them (a later read returns the same).
        now = _now()
        return self._update_visible(stream, message_id, grade=grade, feedback=feedback, graded_by=by, graded_at=now.replace(microsecond=now.microsecond // 1000 * 1000))

    @_driver_errors
    def update_content(self, stream, message_id, *, content, edited):
        fields: dict[str, Any] = {"content": content}
        if edited:
            fields["edited_at"] = _now()
        return self._update_visible(stream, message_id, **fields)

    @_driver_errors
    def set_hidden(self, stream, message_id, hidden):
        row = self._row(stream, message_id)
        if row is None or row["deleted_at"] is not None:
            return False  # a deleted message stays hidden
        CassandraMessage.objects.filter(stream=stream, bucket=row["bucket"], id=message_id).update(hidden=hidden)
        if row["reply_to"] is not None:
            if hidden:
                self._unindex_reply(stream, message_id, row["reply_to"])
            else:
                self._index_reply(stream, message_id, row["reply_to"], _aware(row["created_at"]) or ids.id_time(message_id))
        return True

    @_driver_errors
    def delete(self, stream, message_id):
        row = self._row(stream, message_id)
        if row is None:
            return False
        CassandraMessage.objects.filter(stream=stream, bucket=row["bucket"], id=message_id).delete()
        CassandraPin.objects.filter(stream=stream, message_id=message_id).delete()
        if row["reply_to"] is not None:
            self._unindex_reply(stream, message_id, row["reply_to"])
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

    # -- the message lifecycle (reads: reads.py) ---------------------------------

    @_driver_errors
    def edit(self, stream, message_id, *, content, mentions):
        return self._update_visible(stream, message_id, content=content, mentions=list(mentions), edited_at=_now())

    @_driver_errors
    def soft_delete(self, stream, message_id, *, by):
        row = self._row(stream, message_id)
        if row is None or row["hidden"]:
            return None
        before = self._record(stream, row)
        CassandraMessage.objects.filter(stream=stream, bucket=row["bucket"], id=message_id).update(
            hidden=True, is_pinned=False, deleted_at=_now(), deleted_by=by
        )
        if row["is_pinned"]:
            # Only then: each delete leaves a tombstone in the stream's pins
            # partition. (A pin racing this delete is on a hidden row, which
            # `pinned` skips.)
            CassandraPin.objects.filter(stream=stream, message_id=message_id).delete()
        if row["reply_to"] is not None:
            self._unindex_reply(stream, message_id, row["reply_to"])
        return before

    @_driver_errors
    def add_reaction(self, stream, message_id, *, emoji, user_id):
        # One row per (message, emoji, user), made by INSERT ... IF NOT EXISTS:
        # concurrent adds from any number of processes never lose one.
        try:
            CassandraReaction.if_not_exists().create(
                stream=stream, bucket=bucket_of(message_id), message_id=message_id, emoji=emoji, user_id=user_id, at=_now_ms_monotonic()
            )
            return True
        except LWTException:
            return False

    @_driver_errors
    def remove_reaction(self, stream, message_id, *, emoji, user_id):
        try:
            CassandraReaction.objects.filter(
                stream=stream, bucket=bucket_of(message_id), message_id=message_id, emoji=emoji, user_id=user_id
            ).if_exists().delete()
            return True
        except LWTException:
            return False

    @_driver_errors
    def record_change(self, stream, message_id, kind):
        """The insert IF NOT EXISTS at the newest id + 1 both takes the id
        and writes the change, so change n + 1 is never there without n; a
        writer that lost the id tries the one after the winner's."""
        rows = self._execute(_LAST_CHANGE, (stream,))
        candidate = (int(rows[0]["change_id"]) if rows else 0) + 1
        for _ in range(MAX_CAS_ATTEMPTS):
            try:
                CassandraChange.if_not_exists().create(stream=stream, change_id=candidate, message_id=message_id, kind=kind)
                return candidate
            except LWTException as exc:
                taken = exc.existing.get("change_id")
                candidate = (int(taken) if taken is not None else candidate) + 1
        raise StoreError(f"the change feed of {stream} stayed contended after {MAX_CAS_ATTEMPTS} attempts")
