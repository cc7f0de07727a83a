"""SQL backend of the message store (Django ORM): the embedded default."""

from __future__ import annotations

from django.db import DatabaseError, IntegrityError, connection, transaction
from django.utils import timezone

from chatcore import ids
from chatcore.models import Message, ReadPointer as ReadPointerRow, StreamHead
from chatcore.store.base import MAX_PAGE, MessageStore, NewMessage, ReadPointer, StoredMessage, StoreError


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
        hidden=row.hidden,
    )


class SqlMessageStore(MessageStore):
    name = "sql"

    def _visible(self, stream: str):
        return Message.objects.filter(stream=stream, hidden=False)

    def find_by_client_id(self, stream: str, author_id: int, client_id: str) -> StoredMessage | None:
        row = Message.objects.filter(stream=stream, author_id=author_id, client_id=client_id).first()
        return _record(row) if row else None

    def append(self, new: NewMessage) -> tuple[StoredMessage, bool]:
        try:
            with transaction.atomic():
                if new.client_id:
                    existing = self.find_by_client_id(new.stream, new.author_id, new.client_id)
                    if existing is not None:
                        return existing, False
                head = StreamHead.objects.select_for_update().filter(stream=new.stream).first()
                if head is None:
                    # First message of the stream: two writers may race here, so
                    # insert-or-ignore, then lock the one row that exists.
                    StreamHead.objects.bulk_create([StreamHead(stream=new.stream, last_id=0)], ignore_conflicts=True)
                    head = StreamHead.objects.select_for_update().get(stream=new.stream)
                prev_id = head.last_id  # 0: the stream's first message
                message_id = ids.next_id(prev_id or None)
                StreamHead.objects.filter(stream=new.stream).update(last_id=message_id)
                row = Message.objects.create(
                    message_id=message_id,
                    stream=new.stream,
                    author_id=new.author_id,
                    content=new.content,
                    message_type=new.message_type,
                    file_url=new.file_url,
                    reply_to=new.reply_to,
                    mentions=list(new.mentions),
                    created_at=timezone.now(),
                    is_ai=new.is_ai,
                    client_id=new.client_id or None,
                )
                stored = _record(row)
                stored.prev_id = prev_id
                return stored, True
        except IntegrityError:
            # Lost a race on (stream, author, client_id) or on the first head row.
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
        qs = self._visible(stream)
        if after is not None:
            qs = qs.filter(message_id__gt=after)
            if before is not None:
                qs = qs.filter(message_id__lt=before)
            rows = list(qs.order_by("message_id")[: limit + 1])
            has_more = len(rows) > limit
            return [_record(r) for r in rows[:limit]], has_more
        if before is not None:
            qs = qs.filter(message_id__lt=before)
        rows = list(qs.order_by("-message_id")[: limit + 1])
        has_more = len(rows) > limit
        return [_record(r) for r in reversed(rows[:limit])], has_more

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
        return self._update(stream, message_id, grade=grade, feedback=feedback, graded_by=by)

    def update_content(self, stream, message_id, *, content, edited):
        fields = {"content": content}
        if edited:
            fields["edited_at"] = timezone.now()
        return self._update(stream, message_id, **fields)

    def set_hidden(self, stream, message_id, hidden):
        return bool(Message.objects.filter(stream=stream, message_id=message_id).update(hidden=hidden))

    def delete(self, stream, message_id):
        deleted, _ = Message.objects.filter(stream=stream, message_id=message_id).delete()
        return bool(deleted)

    def ping(self) -> None:
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT 1 FROM chatcore_message WHERE 1=0")
        except DatabaseError as exc:
            raise StoreError(str(exc)) from exc
