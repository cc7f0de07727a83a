"""The message lifecycle of the MongoDB store (PROTOCOL.md part 2): edits,
soft deletes, reactions, the thread index and the change feed, as a mixin of
MongoMessageStore (store.py). The layout and why:
messagestore/mongodb/__init__.py.

Every read and write here is by `_id` alone, the one filter FerretDB 1.24
pushes down to SQLite (a `$in` on `_id`, a range or any other field is a
scan of the whole collection, every stream's documents). A message's
lifecycle data therefore lives with its bucket number (its locator): a
page's reactions or thread counts are one or two documents, and their cost
does not grow with the collection.

- `reactions`: `_id` "stream|n", the reactions of the messages of bucket n
  (`lines`: JSON lines {m, e, u, at}, in the order they were added). A
  change reads and rewrites the document under the lease lock
  "reactions|stream|n": FerretDB's updates are read-modify-write without
  isolation, so concurrent `$addToSet`s would lose adds.
- `replies` (the thread index): `_id` "stream|n", the visible replies of the
  roots stored in bucket n (`lines`: {r: root, id, b: the reply's bucket,
  created_at}), kept by append, hide, show and delete under the stream lock
  they hold already.
- `changes` (the change feed): the stream's head `_id` "stream" (`n`: the
  newest id, `k`: its block, `lines`: the changes of that block) and one
  sealed document a full block, `_id` "stream|k" (change ids 64k+1..64k+64).
  A writer holds the lease lock "changes|stream", seals a full block, then
  advances the head in one document write: a reader sees change n+1 only
  together with every change before it.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from typing import Any, Protocol

from pymongo.collection import Collection
from pymongo.database import Database

from messagestore.base import MAX_PAGE, Change, Reaction, StoredMessage, ThreadStats
from messagestore.mongodb.layout import BUCKET_SIZE, driver_errors, now, record_of, wall_ms
from wire import jsonutil

CHANGE_BLOCK = 64  # changes a sealed document of the feed holds
# A marker document in `replies` (no "|", so no bucket's key): the replies
# stored before this thread index existed have been indexed (a database the
# earlier one-document-a-reply index was built in is indexed again).
BACKFILLED = "!threads-by-bucket"


def _at(ms: int) -> datetime:
    return datetime.fromtimestamp(ms // 1000, UTC).replace(microsecond=ms % 1000 * 1000)


def _lines(document: dict[str, Any] | None) -> list[dict[str, Any]]:
    if document is None or not document.get("lines"):
        return []
    return [jsonutil.loads(line) for line in document["lines"].split("\n")]


def _joined(lines: list[dict[str, Any]]) -> str:
    return "\n".join(jsonutil.dumps(line) for line in lines)


class _Store(Protocol):
    """What the lifecycle uses of MongoMessageStore (store.py)."""

    db: Database
    heads: Collection
    locators: Collection
    reaction_docs: Collection
    thread_index: Collection
    change_feed: Collection

    def _locked(self, key: str) -> AbstractContextManager[None]: ...
    def _head(self, stream: str) -> dict[str, Any] | None: ...
    def _locate(self, stream: str, message_id: int, head: dict[str, Any]) -> int: ...
    def _bucket(self, stream: str, number: int, head: dict[str, Any] | None) -> dict[str, Any] | None: ...
    def _entries(self, bucket: dict[str, Any] | None) -> list[dict[str, Any]]: ...
    def _modify(self, stream: str, message_id: int, *, visible_only: bool, fields: dict[str, Any]) -> tuple[int, dict[str, Any]] | None: ...
    def _insert_or_replace(self, collection: Collection, key: str, document: dict[str, Any]) -> None: ...
    def _home(self, stream: str, message_id: int, head: dict[str, Any] | None = None) -> int: ...
    def _homes(self, stream: str, message_ids: Sequence[int]) -> list[int]: ...
    def _rewrite(self, collection: Collection, key: str, existed: bool, lines: list[dict[str, Any]]) -> None: ...
    def _index_reply(self, stream: str, entry: dict[str, Any], number: int, head: dict[str, Any] | None = None) -> None: ...
    def _unindex_reply(self, stream: str, entry: dict[str, Any], head: dict[str, Any] | None = None) -> None: ...
    def get(self, stream: str, message_id: int) -> StoredMessage | None: ...


class Lifecycle:
    """MessageStore's lifecycle methods on the MongoDB layout."""

    # -- schema ------------------------------------------------------------

    def _ensure_lifecycle_schema(self: _Store) -> None:
        # Created here, empty, so the operator's index (scripts/ferretdb_index.py,
        # run after migrate) covers them too.
        existing = set(self.db.list_collection_names())
        for collection in (self.reaction_docs, self.thread_index, self.change_feed):
            if collection.name not in existing:
                self.db.create_collection(collection.name)
        if self.thread_index.find_one({"_id": BACKFILLED}) is None:
            # Replies stored before the thread index: read every bucket once
            # (the head's copy of a bucket wins), stream by stream under its
            # lock (a running server may append meanwhile), then mark it done.
            for stream in [head["_id"] for head in self.heads.find({}, {"_id": 1})]:
                with self._locked(f"stream|{stream}"):
                    head = self._head(stream)
                    for number in range(max(0, ((head or {}).get("seq", 0) - 1) // BUCKET_SIZE) + 1):
                        for entry in self._entries(self._bucket(stream, number, head)):
                            if entry.get("reply_to") is not None and not entry.get("hidden"):
                                self._index_reply(stream, entry, number, head)
            self._insert_or_replace(self.thread_index, BACKFILLED, {})

    # -- where a message's lifecycle data lives ------------------------------

    def _home(self: _Store, stream: str, message_id: int, head: dict[str, Any] | None = None) -> int:
        """The number of the bucket holding `message_id` (its locator; with
        the head at hand, the head's own buckets need no lookup), or, for an
        id that is no message of the stream, where it would be."""
        if head is None:
            locator = self.locators.find_one({"_id": f"{stream}|{message_id}"})
            if locator is not None:
                return int(locator["b"])
            head = self._head(stream)
            if head is None:
                return 0
        return self._locate(stream, message_id, head)

    def _homes(self: _Store, stream: str, message_ids: Sequence[int]) -> list[int]:
        """The buckets holding `message_ids`: for a page (ids close together)
        every bucket between the first id's and the last one's, from two
        lookups; for ids far apart each id's own."""
        ids = sorted(set(message_ids))
        low, high = self._home(stream, ids[0]), self._home(stream, ids[-1])
        if high - low < max(2, len(ids)):
            return list(range(low, high + 1))
        return sorted({low, high, *(self._home(stream, m) for m in ids[1:-1])})

    def _rewrite(self: _Store, collection: Collection, key: str, existed: bool, lines: list[dict[str, Any]]) -> None:
        """Store the lines of a document read (or found missing) under its lock."""
        if not lines:
            if existed:
                collection.delete_one({"_id": key})
        elif existed:
            collection.update_one({"_id": key}, {"$set": {"lines": _joined(lines)}})
        else:
            self._insert_or_replace(collection, key, {"lines": _joined(lines)})

    # -- the thread index (under the stream lock) ----------------------------

    def _index_reply(self: _Store, stream: str, entry: dict[str, Any], number: int, head: dict[str, Any] | None = None) -> None:
        """Count a visible reply (stored in bucket `number`) in its thread."""
        root, reply = int(entry["reply_to"]), int(entry["id"])
        key = f"{stream}|{self._home(stream, root, head)}"
        document = self.thread_index.find_one({"_id": key})
        lines = [line for line in _lines(document) if line["id"] != reply]
        lines.append({"r": root, "id": reply, "b": number, "created_at": entry["created_at"].isoformat()})
        lines.sort(key=lambda line: line["id"])
        self._rewrite(self.thread_index, key, document is not None, lines)

    def _unindex_reply(self: _Store, stream: str, entry: dict[str, Any], head: dict[str, Any] | None = None) -> None:
        if entry.get("reply_to") is None:
            return
        key = f"{stream}|{self._home(stream, int(entry['reply_to']), head)}"
        document = self.thread_index.find_one({"_id": key})
        lines = _lines(document)
        kept = [line for line in lines if line["id"] != int(entry["id"])]
        if len(kept) != len(lines):
            self._rewrite(self.thread_index, key, True, kept)

    @driver_errors
    def thread_stats(self: _Store, stream: str, root_ids: Sequence[int]) -> dict[int, ThreadStats]:
        if not root_ids:
            return {}
        wanted = set(root_ids)
        counts: dict[int, int] = {}
        newest: dict[int, datetime] = {}
        for number in self._homes(stream, root_ids):
            for line in _lines(self.thread_index.find_one({"_id": f"{stream}|{number}"})):
                root = line["r"]
                if root in wanted:
                    counts[root] = counts.get(root, 0) + 1
                    at = datetime.fromisoformat(line["created_at"])
                    if root not in newest or at > newest[root]:
                        newest[root] = at
        return {root: ThreadStats(count, newest[root]) for root, count in counts.items()}

    @driver_errors
    def thread_page(
        self: _Store, stream: str, root_id: int, *, after: int | None = None, limit: int = 50
    ) -> tuple[list[StoredMessage], bool]:
        limit = max(1, min(int(limit), MAX_PAGE))
        document = self.thread_index.find_one({"_id": f"{stream}|{self._home(stream, root_id)}"})
        lines = [line for line in _lines(document) if line["r"] == root_id and line["id"] > (after or 0)]
        has_more = len(lines) > limit
        head = self._head(stream) if lines else None
        buckets: dict[int, dict[int, dict[str, Any]]] = {}  # each bucket read once
        found = []
        for line in lines[:limit]:
            number = int(line["b"])
            if number not in buckets:
                buckets[number] = {entry["id"]: entry for entry in self._entries(self._bucket(stream, number, head))}
            entry = buckets[number].get(line["id"])
            if entry is not None and not entry.get("hidden"):
                found.append(record_of(stream, entry))
        return found, has_more

    # -- edits and soft deletes ------------------------------------------------

    @driver_errors
    def edit(self: _Store, stream: str, message_id: int, *, content: str, mentions: Sequence[int]) -> StoredMessage | None:
        fields = {"content": content, "mentions": [int(m) for m in mentions], "edited_at": now()}
        with self._locked(f"stream|{stream}"):
            if self._modify(stream, message_id, visible_only=True, fields=fields) is None:
                return None
        return self.get(stream, message_id)

    @driver_errors
    def soft_delete(self: _Store, stream: str, message_id: int, *, by: int | None) -> StoredMessage | None:
        fields = {"hidden": True, "is_pinned": False, "deleted_at": now(), "deleted_by": by}
        with self._locked(f"stream|{stream}"):
            modified = self._modify(stream, message_id, visible_only=True, fields=fields)
            if modified is None:
                return None
            _, before = modified
            if before.get("is_pinned"):
                self.heads.update_one({"_id": stream}, {"$pull": {"pins": message_id}})
            self._unindex_reply(stream, before)
        return record_of(stream, before)

    # -- reactions ---------------------------------------------------------------

    @driver_errors
    def add_reaction(self: _Store, stream: str, message_id: int, *, emoji: str, user_id: int) -> bool:
        key = f"{stream}|{self._home(stream, message_id)}"
        with self._locked(f"reactions|{key}"):
            document = self.reaction_docs.find_one({"_id": key})
            lines = _lines(document)
            if any(line["m"] == message_id and line["u"] == user_id and line["e"] == emoji for line in lines):
                return False
            lines.append({"m": message_id, "e": emoji, "u": user_id, "at": wall_ms()})
            self._rewrite(self.reaction_docs, key, document is not None, lines)
        return True

    @driver_errors
    def remove_reaction(self: _Store, stream: str, message_id: int, *, emoji: str, user_id: int) -> bool:
        key = f"{stream}|{self._home(stream, message_id)}"
        with self._locked(f"reactions|{key}"):
            document = self.reaction_docs.find_one({"_id": key})
            lines = _lines(document)
            kept = [line for line in lines if not (line["m"] == message_id and line["u"] == user_id and line["e"] == emoji)]
            if len(kept) == len(lines):
                return False
            self._rewrite(self.reaction_docs, key, True, kept)
        return True

    @driver_errors
    def reactions(self: _Store, stream: str, message_ids: Sequence[int]) -> dict[int, list[Reaction]]:
        found: dict[int, list[Reaction]] = {}
        if not message_ids:
            return found
        wanted = set(message_ids)
        for number in self._homes(stream, message_ids):
            for line in _lines(self.reaction_docs.find_one({"_id": f"{stream}|{number}"})):
                if line["m"] in wanted:  # in the order added: oldest first
                    found.setdefault(line["m"], []).append(Reaction(line["e"], int(line["u"]), _at(line["at"])))
        return found

    # -- the change feed -----------------------------------------------------------

    @driver_errors
    def record_change(self: _Store, stream: str, message_id: int, kind: str) -> int:
        with self._locked(f"changes|{stream}"):
            head = self.change_feed.find_one({"_id": stream})
            change_id = int(head["n"]) + 1 if head is not None else 1
            block = (change_id - 1) // CHANGE_BLOCK
            line = {"id": change_id, "m": message_id, "k": kind}
            if head is None:
                self._insert_or_replace(self.change_feed, stream, {"n": change_id, "k": block, "lines": _joined([line])})
            elif int(head["k"]) == block:
                self.change_feed.update_one({"_id": stream}, {"$set": {"n": change_id, "lines": _joined([*_lines(head), line])}})
            else:
                # The head's block is full: seal it first, so a crash in
                # between leaves it sealed and the head as it was (the next
                # writer seals it again).
                self._insert_or_replace(self.change_feed, f"{stream}|{head['k']}", {"lines": head.get("lines", "")})
                self.change_feed.update_one({"_id": stream}, {"$set": {"n": change_id, "k": block, "lines": _joined([line])}})
        return change_id

    @driver_errors
    def changes(self: _Store, stream: str, *, after: int, limit: int) -> list[Change]:
        found: list[Change] = []
        head = self.change_feed.find_one({"_id": stream}) if limit > 0 else None
        if head is None or int(head["n"]) <= after:
            return found
        after = max(0, int(after))
        for block in range(after // CHANGE_BLOCK, int(head["k"]) + 1):
            document = head if block == int(head["k"]) else self.change_feed.find_one({"_id": f"{stream}|{block}"})
            for line in _lines(document):
                if line["id"] > after:
                    found.append(Change(int(line["id"]), int(line["m"]), line["k"]))
                    if len(found) >= limit:
                        return found
        return found

    @driver_errors
    def last_change_id(self: _Store, stream: str) -> int:
        head = self.change_feed.find_one({"_id": stream}, {"n": 1})
        return int(head["n"]) if head is not None else 0
