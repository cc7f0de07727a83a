"""SQL backend of the message store (Django ORM): the embedded default."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from django.db import DatabaseError, IntegrityError, connection, connections, transaction
from django.db.models import Count, Field, Max, Q
from django.utils import timezone

from messagestore import ids
from messagestore.base import MAX_PAGE, Change, MessageStore, NewMessage, Reaction, ReadPointer, StoredMessage, StoreError, ThreadStats
from messagestore.models import Change as ChangeRow
from messagestore.models import ChangeHead, Message, StreamHead
from messagestore.models import Reaction as ReactionRow
from messagestore.models import ReadPointer as ReadPointerRow


def _record(row: Message) -> StoredMessage:
    return StoredMessage(
        id=row.message_id,
        stream=row.stream,
        author_id=row.author_id,
        content=row.content,
        created_at=row.created_at,
        message_type=row.message_type,
        file_url=row.file_url,
        reply_to=row.reply_to,
        mentions=list(row.mentions or []),
        edited_at=row.edited_at,
        is_pinned=row.is_pinned,
        pinned_by=row.pinned_by,
        is_ai=row.is_ai,
        client_id=row.client_id,
        grade=row.grade,
        feedback=row.feedback,
        graded_by=row.graded_by,
        graded_at=row.graded_at,
        hidden=row.hidden,
        deleted_at=row.deleted_at,
        deleted_by=row.deleted_by,
    )


# The history page, the hottest read, skips the ORM: building the query and 51
# model instances cost far more than the index scan of (stream, message_id)
# itself (docs/stores.md has the figures).
_PAGE_FIELDS = (
    "message_id", "author_id", "content", "created_at", "message_type", "file_url", "reply_to", "mentions", "edited_at",
    "is_pinned", "pinned_by", "is_ai", "client_id", "grade", "feedback", "graded_by", "graded_at", "hidden",
)  # fmt: skip
_MENTIONS = _PAGE_FIELDS.index("mentions")


def _field(model: type[Message] | type[StreamHead], name: str) -> Field:
    field = model._meta.get_field(name)
    assert isinstance(field, Field)
    return field


def _column(model: type[Message] | type[StreamHead], name: str) -> str:
    column = _field(model, name).column
    assert column is not None
    return column


def _columns(quote: Callable[[str], str]) -> dict[str, str]:
    """Field name -> quoted column of the message table."""
    return {f.name: quote(f.column) for f in Message._meta.concrete_fields if f.column}


def _page_sql(quote: Callable[[str], str], *, before: bool, after: bool) -> str:
    table = quote(Message._meta.db_table)
    column = _columns(quote)
    where = [f"{column['stream']} = %s", f"{column['hidden']} = %s"]
    if after:
        where.append(f"{column['message_id']} > %s")
    if before:
        where.append(f"{column['message_id']} < %s")
    # Newest first unless paging forward: the (stream, message_id) index is
    # read in that direction and the scan stops after limit + 1 rows.
    return (
        f"SELECT {', '.join(column[f] for f in _PAGE_FIELDS)} FROM {table} WHERE {' AND '.join(where)}"
        f" ORDER BY {column['message_id']} {'ASC' if after else 'DESC'} LIMIT %s"
    )


# Sending a message, the hottest write, skips it too: through the ORM the
# duplicate check, the stream head and the insert cost several times their
# queries in Python (docs/scaling.md).
_INSERT_FIELDS = (
    "stream", "message_id", "author_id", "content", "message_type", "file_url", "reply_to", "mentions", "created_at",
    "is_ai", "client_id", "edited_at", "is_pinned", "pinned_by", "grade", "feedback", "graded_by", "hidden",
)  # fmt: skip


class _Queries:
    """The raw queries of the hot paths (page, duplicate check, stream head,
    insert) and the value converters the ORM would apply (the backend's and
    the fields'), prepared once per database connection alias."""

    def __init__(self, alias: str):
        conn = connections[alias]
        quote = conn.ops.quote_name
        self.queries = {
            (b, a): _page_sql(quote, before=b, after=a) for b in (False, True) for a in (False, True)
        }
        table = quote(Message._meta.db_table)
        column = _columns(quote)
        self.by_client_id = (
            f"SELECT {', '.join(column[f] for f in _PAGE_FIELDS)} FROM {table}"
            f" WHERE {column['stream']} = %s AND {column['author_id']} = %s AND {column['client_id']} = %s"
        )
        self.insert_fields = [_field(Message, name) for name in _INSERT_FIELDS]
        self.insert = (
            f"INSERT INTO {table} ({', '.join(column[f] for f in _INSERT_FIELDS)})"
            f" VALUES ({', '.join(['%s'] * len(_INSERT_FIELDS))})"
        )
        head = quote(StreamHead._meta.db_table)
        head_stream, head_last = (quote(_column(StreamHead, name)) for name in ("stream", "last_id"))
        # SQLite has no FOR UPDATE: a write transaction there is already alone.
        lock = " FOR UPDATE" if conn.features.has_select_for_update else ""
        self.head_lock = f"SELECT {head_last} FROM {head} WHERE {head_stream} = %s{lock}"
        self.head_update = f"UPDATE {head} SET {head_last} = %s WHERE {head_stream} = %s"
        self.converters: list[tuple[int, list, Any]] = []
        for index, name in enumerate(_PAGE_FIELDS):
            if index == _MENTIONS:
                continue  # decoded below, with a fast path for "no mentions"
            field = _field(Message, name)
            expression = field.get_col(Message._meta.db_table)
            found = conn.ops.get_db_converters(expression) + field.get_db_converters(conn)
            if found:
                self.converters.append((index, found, expression))

    def records(self, stream: str, rows: list[tuple]) -> list[StoredMessage]:
        conn = connection
        converted = []
        for raw in rows:
            row = list(raw)
            for index, functions, expression in self.converters:
                value = row[index]
                for function in functions:
                    value = function(value, expression, conn)
                row[index] = value
            mentions = row[_MENTIONS]
            if mentions is None or mentions == "[]":
                row[_MENTIONS] = []
            elif isinstance(mentions, str | bytes):
                row[_MENTIONS] = json.loads(mentions)
            else:
                row[_MENTIONS] = list(mentions)
            converted.append(_page_record(stream, row))
        return converted


def _page_record(stream: str, row: list) -> StoredMessage:
    (message_id, author_id, content, created_at, message_type, file_url, reply_to, mentions, edited_at,
     is_pinned, pinned_by, is_ai, client_id, grade, feedback, graded_by, graded_at, hidden) = row  # fmt: skip
    return StoredMessage(
        id=message_id,
        stream=stream,
        author_id=author_id,
        content=content,
        created_at=created_at,
        message_type=message_type,
        file_url=file_url,
        reply_to=reply_to,
        mentions=mentions,
        edited_at=edited_at,
        is_pinned=bool(is_pinned),
        pinned_by=pinned_by,
        is_ai=bool(is_ai),
        client_id=client_id,
        grade=grade,
        feedback=feedback,
        graded_by=graded_by,
        graded_at=graded_at,
        hidden=bool(hidden),
    )


_readers: dict[str, _Queries] = {}
MAX_CHANGE_ATTEMPTS = 64


class SqlMessageStore(MessageStore):
    name = "sql"

    def _visible(self, stream: str):
        return Message.objects.filter(stream=stream, hidden=False)

    @staticmethod
    def _reader() -> _Queries:
        reader = _readers.get(connection.alias)
        if reader is None:
            reader = _readers[connection.alias] = _Queries(connection.alias)
        return reader

    def find_by_client_id(self, stream: str, author_id: int, client_id: str) -> StoredMessage | None:
        reader = self._reader()
        with connection.cursor() as cursor:
            cursor.execute(reader.by_client_id, [stream, author_id, client_id])
            rows = cursor.fetchall()
        return reader.records(stream, rows)[0] if rows else None

    def append(self, new: NewMessage) -> tuple[StoredMessage, bool]:
        reader = self._reader()
        try:
            # No look-up of the clientId first (services.message_send has just
            # done one): the unique (stream, author, client_id) constraint
            # refuses a duplicate, the savepoint undoes the head's move, and the
            # stored message is returned below.
            with transaction.atomic():
                with connection.cursor() as cursor:
                    cursor.execute(reader.head_lock, [new.stream])
                    head = cursor.fetchone()
                    if head is None:
                        # First message of the stream: two writers may race here, so
                        # insert-or-ignore, then lock the one row that exists.
                        StreamHead.objects.bulk_create([StreamHead(stream=new.stream, last_id=0)], ignore_conflicts=True)
                        cursor.execute(reader.head_lock, [new.stream])
                        head = cursor.fetchone()
                    prev_id = head[0]  # 0: the stream's first message
                    message_id = ids.next_id(prev_id or None)
                    cursor.execute(reader.head_update, [message_id, new.stream])
                    stored = new.stored(message_id=message_id, created_at=timezone.now(), prev_id=prev_id)
                    cursor.execute(
                        reader.insert,
                        [
                            field.get_db_prep_save(stored.id if field.name == "message_id" else getattr(stored, field.name), connection)
                            for field in reader.insert_fields
                        ],
                    )
                return stored, True
        except IntegrityError:
            # The clientId is stored already (a retry, or a race lost).
            if new.client_id:
                existing = self.find_by_client_id(new.stream, new.author_id, new.client_id)
                if existing is not None:
                    return existing, False
            raise
        except DatabaseError as exc:
            raise StoreError(str(exc)) from exc

    def get(self, stream: str, message_id: int) -> StoredMessage | None:
        row = self._visible(stream).filter(message_id=message_id).first()
        return _record(row) if row else None

    def page(self, stream, *, before=None, after=None, limit=50):
        limit = max(1, min(int(limit), MAX_PAGE))
        reader = self._reader()
        params: list = [stream, False]
        if after is not None:
            params.append(int(after))
        if before is not None:
            params.append(int(before))
        params.append(limit + 1)
        with connection.cursor() as cursor:
            cursor.execute(reader.queries[(before is not None, after is not None)], params)
            rows = cursor.fetchall()
        has_more = len(rows) > limit
        rows = rows[:limit]
        if after is None:
            rows.reverse()
        return reader.records(stream, rows), has_more

    def moderation_page(self, stream, *, before=None, limit=50):
        limit = max(1, min(int(limit), MAX_PAGE))
        qs = Message.objects.filter(stream=stream)
        if before is not None:
            qs = qs.filter(message_id__lt=before)
        rows = [_record(r) for r in qs.order_by("-message_id")[: limit + 1]]
        return list(reversed(rows[:limit])), len(rows) > limit

    def last_id(self, stream: str) -> int | None:
        return self._visible(stream).order_by("-message_id").values_list("message_id", flat=True).first()

    def count_after(self, stream, after_id, *, exclude_author=None, cap=1000):
        qs = self._visible(stream)
        if after_id is not None:
            qs = qs.filter(message_id__gt=after_id)
        if exclude_author is not None:
            qs = qs.exclude(author_id=exclude_author)
        return len(qs.values_list("message_id", flat=True)[:cap])

    def set_read_pointer(self, stream: str, user_id: int, message_id: int) -> bool:
        now = timezone.now()
        with transaction.atomic():
            moved = ReadPointerRow.objects.filter(stream=stream, user_id=user_id, message_id__lt=message_id).update(
                message_id=message_id, read_at=now
            )
            if moved:
                return True
            if ReadPointerRow.objects.filter(stream=stream, user_id=user_id).exists():
                return False
            try:
                with transaction.atomic():
                    ReadPointerRow.objects.create(stream=stream, user_id=user_id, message_id=message_id, read_at=now)
                return True
            except IntegrityError:
                return bool(
                    ReadPointerRow.objects.filter(stream=stream, user_id=user_id, message_id__lt=message_id).update(
                        message_id=message_id, read_at=now
                    )
                )

    def read_pointers(self, stream: str) -> dict[int, ReadPointer]:
        return {
            r.user_id: ReadPointer(r.user_id, r.message_id, r.read_at)
            for r in ReadPointerRow.objects.filter(stream=stream)
        }

    def _update(self, stream: str, message_id: int, **fields) -> StoredMessage | None:
        if not self._visible(stream).filter(message_id=message_id).update(**fields):
            return None
        return self.get(stream, message_id)

    def set_pinned(self, stream, message_id, *, pinned, by):
        return self._update(stream, message_id, is_pinned=pinned, pinned_by=by if pinned else None)

    def pinned(self, stream):
        return [_record(r) for r in self._visible(stream).filter(is_pinned=True).order_by("message_id")]

    def set_grade(self, stream, message_id, *, grade, feedback, by):
        return self._update(stream, message_id, grade=grade, feedback=feedback, graded_by=by, graded_at=timezone.now())

    def update_content(self, stream, message_id, *, content, edited):
        fields = {"content": content}
        if edited:
            fields["edited_at"] = timezone.now()
        return self._update(stream, message_id, **fields)

    def set_hidden(self, stream, message_id, hidden):
        # A deleted message stays hidden.
        return bool(Message.objects.filter(stream=stream, message_id=message_id, deleted_at__isnull=True).update(hidden=hidden))

    def delete(self, stream, message_id):
        deleted, _ = Message.objects.filter(stream=stream, message_id=message_id).delete()
        return bool(deleted)

    # -- the message lifecycle -------------------------------------------------

    def edit(self, stream, message_id, *, content, mentions):
        return self._update(stream, message_id, content=content, mentions=list(mentions), edited_at=timezone.now())

    def soft_delete(self, stream, message_id, *, by):
        with transaction.atomic():
            row = self._visible(stream).select_for_update().filter(message_id=message_id).first()
            if row is None:
                return None
            before = _record(row)
            self._visible(stream).filter(message_id=message_id).update(
                hidden=True, is_pinned=False, deleted_at=timezone.now(), deleted_by=by
            )
        return before

    def add_reaction(self, stream, message_id, *, emoji, user_id):
        try:
            with transaction.atomic():
                ReactionRow.objects.create(stream=stream, message_id=message_id, emoji=emoji, user_id=user_id, created_at=timezone.now())
            return True
        except IntegrityError:
            return False

    def remove_reaction(self, stream, message_id, *, emoji, user_id):
        deleted, _ = ReactionRow.objects.filter(stream=stream, message_id=message_id, emoji=emoji, user_id=user_id).delete()
        return bool(deleted)

    def reactions(self, stream, message_ids):
        found: dict[int, list[Reaction]] = {}
        if not message_ids:
            return found
        rows = ReactionRow.objects.filter(stream=stream, message_id__in=list(message_ids)).order_by("created_at", "id")
        for message_id, emoji, user_id, at in rows.values_list("message_id", "emoji", "user_id", "created_at"):
            found.setdefault(message_id, []).append(Reaction(emoji, user_id, at))
        return found

    def thread_stats(self, stream, root_ids):
        if not root_ids:
            return {}
        rows = (
            self._visible(stream)
            .filter(reply_to__in=list(root_ids))
            .values("reply_to")
            .annotate(n=Count("id"), last=Max("created_at"))
            .values_list("reply_to", "n", "last")
        )
        return {root: ThreadStats(n, last) for root, n, last in rows}

    def thread_page(self, stream, root_id, *, after=None, limit=50):
        limit = max(1, min(int(limit), MAX_PAGE))
        qs = self._visible(stream).filter(reply_to=root_id, message_id__gt=after or 0).order_by("message_id")
        rows = [_record(r) for r in qs[: limit + 1]]
        return rows[:limit], len(rows) > limit

    def record_change(self, stream, message_id, kind):
        # The stream's change head, locked: writers queue on it (no retry
        # limit), and the unique (stream, change_id) stays the last guard
        # (SQLite has no FOR UPDATE; its writers are serialised anyway).
        for _ in range(MAX_CHANGE_ATTEMPTS):
            try:
                with transaction.atomic():
                    head = ChangeHead.objects.select_for_update().filter(stream=stream).first()
                    if head is None:
                        ChangeHead.objects.bulk_create([ChangeHead(stream=stream, last_id=0)], ignore_conflicts=True)
                        head = ChangeHead.objects.select_for_update().get(stream=stream)
                    change_id = head.last_id + 1
                    ChangeHead.objects.filter(stream=stream).update(last_id=change_id)
                    ChangeRow.objects.create(stream=stream, change_id=change_id, message_id=message_id, kind=kind)
                return change_id
            except IntegrityError:
                continue
            except DatabaseError as exc:
                raise StoreError(str(exc)) from exc
        raise StoreError(f"the change feed of {stream} stayed contended")

    def changes(self, stream, *, after, limit):
        rows = ChangeRow.objects.filter(stream=stream, change_id__gt=after).order_by("change_id")[:limit]
        return [Change(c, m, k) for c, m, k in rows.values_list("change_id", "message_id", "kind")]

    def last_change_id(self, stream):
        return ChangeRow.objects.filter(stream=stream).aggregate(top=Max("change_id"))["top"] or 0

    # -- lists in one query each ------------------------------------------------

    def read_pointers_of(self, user_id: int, streams: Sequence[str]) -> dict[str, ReadPointer]:
        rows = ReadPointerRow.objects.filter(user_id=user_id, stream__in=list(streams))
        return {r.stream: ReadPointer(r.user_id, r.message_id, r.read_at) for r in rows}

    def counts_after(self, after: Mapping[str, int | None], *, exclude_author: int | None = None, cap: int = 1000) -> dict[str, int]:
        if not after:
            return {}
        cursors = Q()
        for stream, after_id in after.items():
            cursors |= Q(stream=stream, message_id__gt=after_id or 0)
        qs = Message.objects.filter(cursors, hidden=False)
        if exclude_author is not None:
            qs = qs.exclude(author_id=exclude_author)
        counted = dict(qs.values_list("stream").annotate(n=Count("id")).values_list("stream", "n"))
        return {stream: min(counted.get(stream, 0), cap) for stream in after}

    def latest(self, streams: Sequence[str]) -> dict[str, StoredMessage]:
        if not streams:
            return {}
        newest = Message.objects.filter(stream__in=list(streams), hidden=False).values("stream").annotate(top=Max("message_id"))
        keys = Q()
        for row in newest:
            keys |= Q(stream=row["stream"], message_id=row["top"])
        if not keys:
            return {}
        return {row.stream: _record(row) for row in Message.objects.filter(keys)}

    def ping(self) -> None:
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT 1 FROM chatcore_message WHERE 1=0")
        except DatabaseError as exc:
            raise StoreError(str(exc)) from exc
