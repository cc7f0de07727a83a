"""MongoDB backend of the message store: pymongo against MongoDB or a
MongoDB-wire server (FerretDB 1.24 on SQLite in this project's tests).

djongo cannot serve here (it pins Django <= 3.1.12 and pymongo <= 3.11.4) and
django-mongodb-backend needs $lookup/$expr, so the store speaks pymongo.

The layout is the one a real MongoDB serves from its `_id` index, shaped by
what FerretDB 1.24 (SQLite backend) does, measured here:

- it pushes down only a filter that is `_id` alone with a string or ObjectId
  value (internal/backends/sqlite/collection.go); anything else is a scan
  and an in-memory filter, and LIMIT is pushed down only without a filter.
  Even that `_id` filter misses its own index (the query reads
  `sjson->'$._id'`, the index is on `sjson->"_id"`, and SQLite matches
  expressions as written; `explain` says "SCAN"): a lookup scans in
  insertion order until it finds the document, at a cost that grows with
  the bytes it passes (200,000 small documents: ~2 ms for the first, ~780 ms
  for the last; reading one document costs ~1 ms + ~0.07 ms per KB), and an
  update, upsert or delete scans the whole collection. Inserts only probe
  the unique index, so writes insert where they can. The operator tool
  scripts/ferretdb_index.py adds an index on the very expression the
  lookup uses, and `_id` lookups, updates and deletes become index searches;
- `findAndModify` and updates are read-modify-write without isolation
  (4 processes x 300 concurrent `$inc` on one document left 294, not 1200),
  while inserting a duplicate `_id` or unique-index key fails atomically.

Hence:

- every read and write addresses documents by `_id`;
- messages live in buckets of `BUCKET_SIZE` consecutive messages (the n-th
  message of a stream is in bucket n // BUCKET_SIZE), so a 50-message page
  costs one or two lookups and no document grows without bound. A bucket
  keeps its messages as one JSON-lines string (`messages`, one JSON object
  a line, in id order, fields at their default left out): FerretDB turns
  every BSON value into SQLite JSON and back, which cost ~22 ms to read a
  bucket of 64 messages as sub-documents against ~2 ms as one string
  (measured);
- `stream_heads` ("stream": last_id, seq = messages so far, pins, and
  `recent`: the newest two buckets, `b<n>` -> {lo, hi, messages}). The
  newest page is one lookup of this small collection (one document a
  stream) and a send rewrites only this document; on FerretDB both used to
  scan every bucket of every stream;
- `message_buckets` (`_id` "stream|n"): the older buckets, each inserted
  once when it leaves the head (an insert only probes the index), updated
  only when one of its messages is edited, pinned, graded, hidden or deleted;
- `message_locators` ("stream|id" -> bucket) find the bucket of a cursor
  older than the head's buckets;
- `client_ids` ("stream|author|clientId" -> message id), with a unique index
  on (stream, author_id, client_id);
- `read_pointers` ("stream": user id -> message id, time);
- every read-modify-write of a stream (append, pin, grade, edit, hide,
  delete) and of its read pointers runs under a lease lock: a document in
  `locks` whose insertion is the atomic step. That is what makes ids in a
  stream increase in acceptance order across processes, as the row lock of
  the SQL store does.
"""

from __future__ import annotations

import logging
import os
import random
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from functools import wraps
from typing import Any, TypeVar

from pymongo import ASCENDING, MongoClient
from pymongo.collection import Collection
from pymongo.database import Database
from pymongo.errors import DuplicateKeyError, PyMongoError

from messagestore import ids
from messagestore.base import MAX_PAGE, MessageStore, NewMessage, ReadPointer, StoredMessage, StoreError, count_capped
from wire import jsonutil

logger = logging.getLogger(__name__)
# pymongo logs each command with its documents (message bodies) at DEBUG;
# logs never hold message bodies, whatever LOG_LEVEL says.
logging.getLogger("pymongo").setLevel(max(logging.INFO, logging.getLogger("pymongo").level))

BUCKET_SIZE = 64
LOCK_LEASE_MS = 10_000  # a holder that has not released by then has died
LOCK_WAIT_SECONDS = 5.0
DEFAULT_DATABASE = "chat"

T = TypeVar("T")

_clients: dict[tuple[str, float, int], MongoClient] = {}
_clients_lock = threading.Lock()


def client_for(uri: str, *, timeout: float) -> MongoClient:
    """One MongoClient per (uri, process): pymongo pools connections inside
    it, and a client must not cross a fork."""
    key = (uri, timeout, os.getpid())
    with _clients_lock:
        client = _clients.get(key)
        if client is None:
            ms = int(timeout * 1000)
            client = MongoClient(
                uri,
                serverSelectionTimeoutMS=ms,
                connectTimeoutMS=ms,
                socketTimeoutMS=max(ms, 2000),
                # A retried write is replayed, not deduplicated, by a server
                # without retryable-write support (FerretDB): never retry.
                retryWrites=False,
                tz_aware=True,
                appname="chat-message-store",
            )
            _clients[key] = client
        return client


def _now() -> datetime:
    # Milliseconds, as BSON dates (read pointers) and the wire protocol keep.
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


def _wall_ms() -> int:
    return int(time.time() * 1000)


def _driver_errors(method: Callable[..., T]) -> Callable[..., T]:
    """Every driver failure leaves the store as StoreError (services turn it
    into `server_error`)."""

    @wraps(method)
    def wrapper(*args: Any, **kwargs: Any) -> T:
        try:
            return method(*args, **kwargs)
        except StoreError:
            raise
        except PyMongoError as exc:
            raise StoreError(f"MongoDB: {type(exc).__name__}: {exc}") from exc

    return wrapper


def _record(stream: str, entry: dict[str, Any]) -> StoredMessage:
    return StoredMessage(
        id=entry["id"],
        stream=stream,
        author_id=entry["author_id"],
        content=entry["content"],
        created_at=entry["created_at"],
        message_type=entry.get("message_type") or "text",
        file_url=entry.get("file_url"),
        reply_to=entry.get("reply_to"),
        mentions=list(entry.get("mentions") or []),
        edited_at=entry.get("edited_at"),
        is_pinned=bool(entry.get("is_pinned")),
        pinned_by=entry.get("pinned_by"),
        is_ai=bool(entry.get("is_ai")),
        client_id=entry.get("client_id"),
        grade=entry.get("grade"),
        feedback=entry.get("feedback"),
        graded_by=entry.get("graded_by"),
        hidden=bool(entry.get("hidden")),
    )


def _document(message: StoredMessage) -> dict[str, Any]:
    return {
        "id": message.id,
        "author_id": message.author_id,
        "content": message.content,
        "created_at": message.created_at,
        "message_type": message.message_type,
        "file_url": message.file_url,
        "reply_to": message.reply_to,
        "mentions": list(message.mentions),
        "edited_at": message.edited_at,
        "is_pinned": message.is_pinned,
        "pinned_by": message.pinned_by,
        "is_ai": message.is_ai,
        "client_id": message.client_id,
        "grade": message.grade,
        "feedback": message.feedback,
        "graded_by": message.graded_by,
        "hidden": message.hidden,
    }


# Fields left out of a stored line while they hold their default (most
# messages: no file, reply, mentions, edit, pin, grade): a line is about half
# as long, and FerretDB's cost of reading a bucket grows with its bytes.
_DEFAULTS: dict[str, Any] = {
    "message_type": "text", "file_url": None, "reply_to": None, "mentions": [], "edited_at": None, "is_pinned": False,
    "pinned_by": None, "is_ai": False, "client_id": None, "grade": None, "feedback": None, "graded_by": None, "hidden": False,
}  # fmt: skip


def _encode(entry: dict[str, Any]) -> str:
    # Datetimes become ISO 8601 with their offset; `_record` fills in what is left out.
    return jsonutil.dumps(
        {k: v for k, v in entry.items() if not (k in _DEFAULTS and type(v) is type(_DEFAULTS[k]) and v == _DEFAULTS[k])}
    )


def _decode(line: str) -> dict[str, Any]:
    entry = jsonutil.loads(line)
    for name in ("created_at", "edited_at"):
        if entry.get(name):
            entry[name] = datetime.fromisoformat(entry[name])
    return entry


class MongoMessageStore(MessageStore):
    name = "mongodb"

    def __init__(self, *, uri: str, database: str | None = None, timeout: float = 3.0):
        self.uri = uri
        client = client_for(uri, timeout=timeout)
        default = client.get_default_database(default=DEFAULT_DATABASE)
        self.db: Database = client.get_database(database) if database else default
        self.heads = self.db["stream_heads"]
        self.buckets = self.db["message_buckets"]
        self.locators = self.db["message_locators"]
        self.client_ids = self.db["client_ids"]
        self.pointers = self.db["read_pointers"]
        self.locks = self.db["locks"]

    # -- schema ------------------------------------------------------------

    @_driver_errors
    def ensure_schema(self) -> None:
        self.client_ids.create_index(
            [("stream", ASCENDING), ("author_id", ASCENDING), ("client_id", ASCENDING)], unique=True, name="client_id_once"
        )
        self.buckets.create_index([("stream", ASCENDING), ("b", ASCENDING)], unique=True, name="bucket_once")
        for collection in (self.heads, self.locators, self.pointers, self.locks):
            if collection.name not in self.db.list_collection_names():
                self.db.create_collection(collection.name)

    @_driver_errors
    def drop_schema(self) -> None:
        """Drop the database (tests and the benchmark; not part of MessageStore)."""
        self.db.client.drop_database(self.db.name)

    @_driver_errors
    def ping(self) -> None:
        self.db.command("ping")

    # -- the lease lock ------------------------------------------------------

    @contextmanager
    def _locked(self, key: str) -> Iterator[None]:
        token = uuid.uuid4().hex
        deadline = time.monotonic() + LOCK_WAIT_SECONDS
        while True:
            try:
                self.locks.insert_one({"_id": key, "owner": token, "at": _wall_ms()})
                break
            except DuplicateKeyError:
                held = self.locks.find_one({"_id": key})
                if held is not None and _wall_ms() - held.get("at", 0) > LOCK_LEASE_MS:
                    logger.warning("breaking the lock %s of a holder that did not release it for %d ms", key, LOCK_LEASE_MS)
                    self.locks.delete_one({"_id": key, "owner": held.get("owner")})
                    continue
                if time.monotonic() > deadline:
                    raise StoreError(f"{key} stayed locked for {LOCK_WAIT_SECONDS}s") from None
                time.sleep(random.uniform(0.002, 0.01))
        try:
            yield
        finally:
            self.locks.delete_one({"_id": key, "owner": token})

    # -- reads -------------------------------------------------------------

    def _head(self, stream: str) -> dict[str, Any] | None:
        return self.heads.find_one({"_id": stream})

    @staticmethod
    def _recent(head: dict[str, Any] | None) -> dict[str, Any]:
        """The buckets the head document holds: key `b<number>` -> {lo, hi, messages}."""
        return (head or {}).get("recent") or {}

    def _bucket(self, stream: str, number: int, head: dict[str, Any] | None) -> dict[str, Any] | None:
        """Bucket `number`: from the head when it holds it (the newest two),
        else its own document in `message_buckets`."""
        recent = self._recent(head).get(f"b{number}")
        if recent is not None:
            return recent
        return self.buckets.find_one({"_id": f"{stream}|{number}"})

    @staticmethod
    def _entries(bucket: dict[str, Any] | None) -> list[dict[str, Any]]:
        """The messages of a bucket document, in id order."""
        if bucket is None or not bucket.get("messages"):
            return []
        return [_decode(line) for line in bucket["messages"].split("\n")]

    def _write_bucket(self, stream: str, number: int, entries: list[dict[str, Any]], head: dict[str, Any] | None) -> None:
        """Store the messages of an existing bucket (an edit, a pin, a deletion):
        in the head if it holds the bucket, else in the bucket's document. Its
        id range (lo, hi) stays: deletions do not shrink it, so the binary
        search in _locate stays monotonic."""
        messages = "\n".join(_encode(e) for e in entries)
        if f"b{number}" in self._recent(head):
            self.heads.update_one({"_id": stream}, {"$set": {f"recent.b{number}.messages": messages}})
        else:
            self.buckets.update_one({"_id": f"{stream}|{number}"}, {"$set": {"messages": messages}})

    def _locate(self, stream: str, message_id: int, head: dict[str, Any]) -> int:
        """The bucket holding `message_id`, or where it would be."""
        top = max(0, (head.get("seq", 0) - 1) // BUCKET_SIZE)
        if message_id > head.get("last_id", 0):
            return top
        # Within the buckets the head holds, the head tells (no lookup).
        for number in sorted((int(key[1:]) for key in self._recent(head)), reverse=True):
            if self._recent(head)[f"b{number}"].get("lo", 0) <= message_id:
                return number
        locator = self.locators.find_one({"_id": f"{stream}|{message_id}"})
        if locator is not None:
            return int(locator["b"])
        # Not an id of this stream (a client's arbitrary cursor): binary search
        # on the buckets' lowest ids, which grow with the bucket number.
        low, high = 0, top
        while low < high:
            middle = (low + high + 1) // 2
            probe = self._recent(head).get(f"b{middle}") or self.buckets.find_one({"_id": f"{stream}|{middle}"}, {"lo": 1})
            if probe is None or probe.get("lo", 0) <= message_id:
                low = middle
            else:
                high = middle - 1
        return low

    def _find(self, stream: str, message_id: int, head: dict[str, Any] | None) -> tuple[int, list[dict[str, Any]], int] | None:
        """(bucket number, its messages, index of the message) or None."""
        locator = self.locators.find_one({"_id": f"{stream}|{message_id}"})
        if locator is None:
            return None
        number = int(locator["b"])
        entries = self._entries(self._bucket(stream, number, head))
        for index, entry in enumerate(entries):
            if entry["id"] == message_id:
                return number, entries, index
        return None

    def _entry(self, stream: str, message_id: int, head: dict[str, Any] | None = None) -> dict[str, Any] | None:
        """The stored message, hidden or not."""
        found = self._find(stream, message_id, head if head is not None else self._head(stream))
        return found[1][found[2]] if found is not None else None

    def _scan(self, stream: str, *, after: int | None, before: int | None, ascending: bool) -> Iterator[dict[str, Any]]:
        """Visible messages strictly between `after` and `before`, oldest first
        if `ascending`, bucket by bucket."""
        head = self._head(stream)
        if head is None:
            return
        top = max(0, (head.get("seq", 0) - 1) // BUCKET_SIZE)
        if ascending:
            numbers: Iterator[int] = iter(range(self._locate(stream, after, head) if after is not None else 0, top + 1))
        else:
            numbers = iter(range(self._locate(stream, before, head) if before is not None else top, -1, -1))
        for number in numbers:
            bucket = self._bucket(stream, number, head)
            lines = bucket["messages"].split("\n") if bucket is not None and bucket.get("messages") else []
            if not ascending:
                lines.reverse()
            for entry in map(_decode, lines):  # lazily: a page stops early
                if after is not None and entry["id"] <= after:
                    if ascending:
                        continue
                    return
                if before is not None and entry["id"] >= before:
                    if ascending:
                        return
                    continue
                if not entry.get("hidden"):
                    yield entry

    @_driver_errors
    def find_by_client_id(self, stream: str, author_id: int, client_id: str) -> StoredMessage | None:
        claim = self.client_ids.find_one({"_id": f"{stream}|{author_id}|{client_id}"})
        if claim is None:
            return None
        entry = self._entry(stream, claim["message_id"])
        return _record(stream, entry) if entry is not None else None

    @_driver_errors
    def get(self, stream: str, message_id: int) -> StoredMessage | None:
        entry = self._entry(stream, message_id)
        return _record(stream, entry) if entry is not None and not entry.get("hidden") else None

    @_driver_errors
    def page(self, stream, *, before=None, after=None, limit=50):
        limit = max(1, min(int(limit), MAX_PAGE))
        entries: list[dict[str, Any]] = []
        for entry in self._scan(stream, after=after, before=before, ascending=after is not None):
            entries.append(entry)
            if len(entries) > limit:
                break
        has_more = len(entries) > limit
        entries = entries[:limit]
        if after is None:
            entries.reverse()
        return [_record(stream, e) for e in entries], has_more

    @_driver_errors
    def last_id(self, stream: str) -> int | None:
        for entry in self._scan(stream, after=None, before=None, ascending=False):
            return entry["id"]
        return None

    @_driver_errors
    def count_after(self, stream, after_id, *, exclude_author=None, cap=1000):
        return count_capped(self._scan(stream, after=after_id, before=None, ascending=True), exclude_author=exclude_author, cap=cap)

    @_driver_errors
    def read_pointers(self, stream: str) -> dict[int, ReadPointer]:
        doc = self.pointers.find_one({"_id": stream}) or {}
        return {int(user): ReadPointer(int(user), p["m"], p["at"]) for user, p in (doc.get("p") or {}).items()}

    @_driver_errors
    def pinned(self, stream: str) -> list[StoredMessage]:
        head = self._head(stream) or {}
        found = []
        for message_id in sorted(head.get("pins") or []):
            entry = self._entry(stream, message_id, head)
            if entry is not None and entry.get("is_pinned") and not entry.get("hidden"):
                found.append(_record(stream, entry))
        return found

    # -- writes --------------------------------------------------------------

    @_driver_errors
    def append(self, new: NewMessage) -> tuple[StoredMessage, bool]:
        client_key = f"{new.stream}|{new.author_id}|{new.client_id}" if new.client_id else None
        if new.client_id:
            existing = self.find_by_client_id(new.stream, new.author_id, new.client_id)
            if existing is not None:
                return existing, False
        with self._locked(f"stream|{new.stream}"):
            if new.client_id:
                # Again under the lock: another process may have stored it meanwhile.
                existing = self.find_by_client_id(new.stream, new.author_id, new.client_id)
                if existing is not None:
                    return existing, False
            head = self._head(new.stream)
            seq = int((head or {}).get("seq", 0))
            message_id = ids.next_id((head or {}).get("last_id"))
            number = seq // BUCKET_SIZE
            # Under the lock the previous id's message, if it was stored at
            # all, is stored before this one can be seen. 0: the first.
            stored = new.stored(message_id=message_id, created_at=_now(), prev_id=(head or {}).get("last_id") or 0)
            # The message itself is written last: if this process dies half-way,
            # what is left (a clientId pointing nowhere, a skipped id) is
            # harmless and the retry stores the message.
            if client_key is not None:
                claim = {"stream": new.stream, "author_id": new.author_id, "client_id": new.client_id, "message_id": message_id}
                self._insert_or_replace(self.client_ids, client_key, claim)
            self._insert_or_replace(self.locators, f"{new.stream}|{message_id}", {"b": number})
            recent = dict(self._recent(head))
            bucket = recent.get(f"b{number}")
            if bucket is None and seq % BUCKET_SIZE:
                # A bucket begun before the head held buckets (older layout).
                bucket = self.buckets.find_one({"_id": f"{new.stream}|{number}"})
            lines = [bucket["messages"]] if bucket is not None and bucket.get("messages") else []
            lines.append(_encode(_document(stored)))
            opened = {"lo": bucket.get("lo", message_id) if bucket is not None else message_id, "hi": message_id, "messages": "\n".join(lines)}
            change: dict[str, Any] = {"$set": {"last_id": message_id, "seq": seq + 1, f"recent.b{number}": opened}}
            # The head keeps the newest two buckets; an older one moves to
            # its own document first, so a crash in between leaves it in both
            # places (readers take the head's copy; the next append rewrites it).
            sealed = [key for key in recent if key != f"b{number}" and int(key[1:]) < number - 1]
            for key in sealed:
                old = recent[key]
                document = {"stream": new.stream, "b": int(key[1:]), "lo": old.get("lo"), "hi": old.get("hi"), "messages": old.get("messages", "")}
                self._insert_or_replace(self.buckets, f"{new.stream}|{key[1:]}", document)
            if sealed:
                change["$unset"] = {f"recent.{key}": "" for key in sealed}
            if head:
                self.heads.update_one({"_id": new.stream}, change)
            else:
                self._insert_or_replace(self.heads, new.stream, {"last_id": message_id, "seq": seq + 1, "pins": [], "recent": {f"b{number}": opened}})
        return stored, True

    @staticmethod
    def _insert_or_replace(collection: Collection, key: str, document: dict[str, Any]) -> None:
        # An insert, not an upsert: FerretDB 1.24 answers an upsert by scanning
        # the whole collection (its `_id` filter misses its own index, measured),
        # while an insert only probes the unique index. The key is new unless an
        # append died half-way; then the leftover is replaced.
        try:
            collection.insert_one({"_id": key, **document})
        except DuplicateKeyError:
            collection.replace_one({"_id": key}, document)

    @_driver_errors
    def set_read_pointer(self, stream: str, user_id: int, message_id: int) -> bool:
        with self._locked(f"read|{stream}"):
            doc = self.pointers.find_one({"_id": stream}, {f"p.{user_id}": 1}) or {}
            current = (doc.get("p") or {}).get(str(user_id))
            if current is not None and current["m"] >= message_id:
                return False
            self.pointers.update_one({"_id": stream}, {"$set": {f"p.{user_id}": {"m": message_id, "at": _now()}}}, upsert=True)
            return True

    def _modify(self, stream: str, message_id: int, *, visible_only: bool, fields: dict[str, Any]) -> dict[str, Any] | None:
        """Set fields of a stored message (under the stream lock); the entry
        as it was, or None when there is no such (visible) message."""
        head = self._head(stream)
        found = self._find(stream, message_id, head)
        if found is None:
            return None
        number, entries, index = found
        entry = entries[index]
        if visible_only and entry.get("hidden"):
            return None
        entries[index] = {**entry, **fields}
        self._write_bucket(stream, number, entries, head)
        return entry

    @_driver_errors
    def set_pinned(self, stream, message_id, *, pinned, by):
        with self._locked(f"stream|{stream}"):
            fields = {"is_pinned": pinned, "pinned_by": by if pinned else None}
            if self._modify(stream, message_id, visible_only=True, fields=fields) is None:
                return None
            change = {"$addToSet": {"pins": message_id}} if pinned else {"$pull": {"pins": message_id}}
            self.heads.update_one({"_id": stream}, change)
        return self.get(stream, message_id)

    @_driver_errors
    def set_grade(self, stream, message_id, *, grade, feedback, by):
        with self._locked(f"stream|{stream}"):
            if self._modify(stream, message_id, visible_only=True, fields={"grade": grade, "feedback": feedback, "graded_by": by}) is None:
                return None
        return self.get(stream, message_id)

    @_driver_errors
    def update_content(self, stream, message_id, *, content, edited):
        fields: dict[str, Any] = {"content": content}
        if edited:
            fields["edited_at"] = _now()
        with self._locked(f"stream|{stream}"):
            if self._modify(stream, message_id, visible_only=True, fields=fields) is None:
                return None
        return self.get(stream, message_id)

    @_driver_errors
    def set_hidden(self, stream, message_id, hidden):
        with self._locked(f"stream|{stream}"):
            return self._modify(stream, message_id, visible_only=False, fields={"hidden": hidden}) is not None

    @_driver_errors
    def delete(self, stream, message_id):
        with self._locked(f"stream|{stream}"):
            head = self._head(stream)
            found = self._find(stream, message_id, head)
            if found is None:
                return False
            number, entries, index = found
            entry = entries.pop(index)
            # The locator stays: a client may still page from this id.
            self._write_bucket(stream, number, entries, head)
            self.heads.update_one({"_id": stream}, {"$pull": {"pins": message_id}})
            if entry.get("client_id"):
                # As in the SQL store, the clientId goes with the message.
                key = f"{stream}|{entry['author_id']}|{entry['client_id']}"
                claim = self.client_ids.find_one({"_id": key})
                if claim is not None and claim.get("message_id") == message_id:
                    self.client_ids.delete_one({"_id": key})
            return True
