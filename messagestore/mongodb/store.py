"""The MongoDB message store: buckets of messages, the stream's head, the
lease lock (the message lifecycle: lifecycle.py). The layout and why:
messagestore/mongodb/__init__.py."""

from __future__ import annotations

import logging
import random
import time
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from pymongo import ASCENDING
from pymongo.collection import Collection
from pymongo.database import Database
from pymongo.errors import DuplicateKeyError

from messagestore import ids
from messagestore.base import NewMessage, ReadPointer, ScanningStore, StoredMessage, StoreError
from messagestore.mongodb.layout import (
    BUCKET_SIZE,
    DEFAULT_DATABASE,
    LOCK_LEASE_MS,
    LOCK_WAIT_SECONDS,
    client_for,
    decode,
    document_of,
    driver_errors,
    encode,
    now,
    record_of,
    wall_ms,
)
from messagestore.mongodb.lifecycle import Lifecycle

logger = logging.getLogger(__name__)


class MongoMessageStore(Lifecycle, ScanningStore):
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
        self.reaction_docs = self.db["reactions"]
        self.thread_index = self.db["replies"]
        self.change_feed = self.db["changes"]

    # -- schema ------------------------------------------------------------

    @driver_errors
    def ensure_schema(self) -> None:
        self.client_ids.create_index(
            [("stream", ASCENDING), ("author_id", ASCENDING), ("client_id", ASCENDING)], unique=True, name="client_id_once"
        )
        self.buckets.create_index([("stream", ASCENDING), ("b", ASCENDING)], unique=True, name="bucket_once")
        for collection in (self.heads, self.locators, self.pointers, self.locks):
            if collection.name not in self.db.list_collection_names():
                self.db.create_collection(collection.name)
        self._ensure_lifecycle_schema()

    @driver_errors
    def drop_schema(self) -> None:
        """Drop the database (tests and the benchmark; not part of MessageStore)."""
        self.db.client.drop_database(self.db.name)

    @driver_errors
    def ping(self) -> None:
        self.db.command("ping")

    # -- the lease lock ------------------------------------------------------

    @contextmanager
    def _locked(self, key: str) -> Iterator[None]:
        token = uuid.uuid4().hex
        deadline = time.monotonic() + LOCK_WAIT_SECONDS
        while True:
            try:
                self.locks.insert_one({"_id": key, "owner": token, "at": wall_ms()})
                break
            except DuplicateKeyError:
                held = self.locks.find_one({"_id": key})
                if held is not None and wall_ms() - held.get("at", 0) > LOCK_LEASE_MS:
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
        return [decode(line) for line in bucket["messages"].split("\n")]

    def _write_bucket(self, stream: str, number: int, entries: list[dict[str, Any]], head: dict[str, Any] | None) -> None:
        """Store the messages of an existing bucket (an edit, a pin, a deletion):
        in the head if it holds the bucket, else in the bucket's document. Its
        id range (lo, hi) stays: deletions do not shrink it, so the binary
        search in _locate stays monotonic."""
        messages = "\n".join(encode(e) for e in entries)
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

    def _record(self, stream: str, row: Mapping[str, Any]) -> StoredMessage:
        return record_of(stream, dict(row))

    def _scan(
        self, stream: str, *, after: int | None, before: int | None, ascending: bool, chunk: int = 0, narrow: bool = False, with_hidden: bool = False
    ) -> Iterator[dict[str, Any]]:
        """ScanningStore._scan: bucket by bucket (a bucket is one read, so
        `chunk` and `narrow` change nothing here)."""
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
            for entry in map(decode, lines):  # lazily: a page stops early
                if after is not None and entry["id"] <= after:
                    if ascending:
                        continue
                    return
                if before is not None and entry["id"] >= before:
                    if ascending:
                        return
                    continue
                if with_hidden or not entry.get("hidden"):
                    yield entry

    @driver_errors
    def find_by_client_id(self, stream: str, author_id: int, client_id: str) -> StoredMessage | None:
        claim = self.client_ids.find_one({"_id": f"{stream}|{author_id}|{client_id}"})
        if claim is None:
            return None
        entry = self._entry(stream, claim["message_id"])
        return record_of(stream, entry) if entry is not None else None

    @driver_errors
    def get(self, stream: str, message_id: int) -> StoredMessage | None:
        entry = self._entry(stream, message_id)
        return record_of(stream, entry) if entry is not None and not entry.get("hidden") else None

    @driver_errors
    def read_pointers(self, stream: str) -> dict[int, ReadPointer]:
        doc = self.pointers.find_one({"_id": stream}) or {}
        return {int(user): ReadPointer(int(user), p["m"], p["at"]) for user, p in (doc.get("p") or {}).items()}

    @driver_errors
    def pinned(self, stream: str) -> list[StoredMessage]:
        head = self._head(stream) or {}
        found = []
        for message_id in sorted(head.get("pins") or []):
            entry = self._entry(stream, message_id, head)
            if entry is not None and entry.get("is_pinned") and not entry.get("hidden"):
                found.append(record_of(stream, entry))
        return found

    # -- writes --------------------------------------------------------------

    @driver_errors
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
            stored = new.stored(message_id=message_id, created_at=now(), prev_id=(head or {}).get("last_id") or 0)
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
            lines.append(encode(document_of(stored)))
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
            if new.reply_to is not None:
                self._index_reply(new.stream, document_of(stored), number, head)
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

    @driver_errors
    def set_read_pointer(self, stream: str, user_id: int, message_id: int) -> bool:
        with self._locked(f"read|{stream}"):
            doc = self.pointers.find_one({"_id": stream}, {f"p.{user_id}": 1}) or {}
            current = (doc.get("p") or {}).get(str(user_id))
            if current is not None and current["m"] >= message_id:
                return False
            self.pointers.update_one({"_id": stream}, {"$set": {f"p.{user_id}": {"m": message_id, "at": now()}}}, upsert=True)
            return True

    def _modify(self, stream: str, message_id: int, *, visible_only: bool, fields: dict[str, Any]) -> tuple[int, dict[str, Any]] | None:
        """Set fields of a stored message (under the stream lock): its bucket
        number and the entry as it was, or None when there is no such
        (visible) message. A deleted message is never modified."""
        head = self._head(stream)
        found = self._find(stream, message_id, head)
        if found is None:
            return None
        number, entries, index = found
        entry = entries[index]
        if entry.get("deleted_at") or (visible_only and entry.get("hidden")):
            return None
        entries[index] = {**entry, **fields}
        self._write_bucket(stream, number, entries, head)
        return number, entry

    @driver_errors
    def set_pinned(self, stream, message_id, *, pinned, by):
        with self._locked(f"stream|{stream}"):
            fields = {"is_pinned": pinned, "pinned_by": by if pinned else None}
            if self._modify(stream, message_id, visible_only=True, fields=fields) is None:
                return None
            change = {"$addToSet": {"pins": message_id}} if pinned else {"$pull": {"pins": message_id}}
            self.heads.update_one({"_id": stream}, change)
        return self.get(stream, message_id)

    @driver_errors
    def set_grade(self, stream, message_id, *, grade, feedback, by):
        with self._locked(f"stream|{stream}"):
            fields = {"grade": grade, "feedback": feedback, "graded_by": by, "graded_at": now()}
            if self._modify(stream, message_id, visible_only=True, fields=fields) is None:
                return None
        return self.get(stream, message_id)

    @driver_errors
    def update_content(self, stream, message_id, *, content, edited):
        fields: dict[str, Any] = {"content": content}
        if edited:
            fields["edited_at"] = now()
        with self._locked(f"stream|{stream}"):
            if self._modify(stream, message_id, visible_only=True, fields=fields) is None:
                return None
        return self.get(stream, message_id)

    @driver_errors
    def set_hidden(self, stream, message_id, hidden):
        with self._locked(f"stream|{stream}"):
            modified = self._modify(stream, message_id, visible_only=False, fields={"hidden": hidden})
            if modified is None:
                return False  # no such message, or deleted: it stays hidden
            number, before = modified
            if hidden:
                self._unindex_reply(stream, before)
            elif before.get("reply_to") is not None:
                self._index_reply(stream, before, number)
            return True

    @driver_errors
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
            self._unindex_reply(stream, entry, head)
            if entry.get("client_id"):
                # As in the SQL store, the clientId goes with the message.
                key = f"{stream}|{entry['author_id']}|{entry['client_id']}"
                claim = self.client_ids.find_one({"_id": key})
                if claim is not None and claim.get("message_id") == message_id:
                    self.client_ids.delete_one({"_id": key})
            return True
