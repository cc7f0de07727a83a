"""MongoDB backend of the message store: pymongo against MongoDB or a
MongoDB-wire server (FerretDB 1.24 on SQLite in this project's tests).
layout.py holds the document and line formats, store.py the store,
lifecycle.py its message lifecycle (edits, soft deletes, reactions, threads,
the change feed).

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
  the bytes it passes, and an update, upsert or delete scans the whole
  collection (docs/stores.md has the figures). Inserts only probe
  the unique index, so writes insert where they can. The operator tool
  scripts/ferretdb_index.py adds an index on the very expression the
  lookup uses, and `_id` lookups, updates and deletes become index searches;
- `findAndModify` and updates are read-modify-write without isolation
  (concurrent `$inc` on one document lose increments), while inserting a
  duplicate `_id` or unique-index key fails atomically.

Hence:

- every read and write addresses documents by `_id` alone (a `$in` on
  `_id` or an `_id` range is not pushed down either: a scan);
- messages live in buckets of `BUCKET_SIZE` consecutive messages (the n-th
  message of a stream is in bucket n // BUCKET_SIZE), so a 50-message page
  costs one or two lookups and no document grows without bound. A bucket
  keeps its messages as one JSON-lines string (`messages`, one JSON object
  a line, in id order, fields at their default left out): FerretDB turns
  every BSON value into SQLite JSON and back, which made sub-documents
  about ten times slower to read than one string (docs/stores.md);
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
  the SQL store does. A soft-deleted message is a hidden one with
  `deleted_at`/`deleted_by`; nothing un-hides it;
- the message lifecycle (lifecycle.py) files a message's reactions and
  replies under its bucket number (its locator), so a page's are one or
  two lookups: `reactions` ("stream|n": the reactions of bucket n's
  messages as JSON lines, rewritten under the lease lock
  "reactions|stream|n"), `replies` (the thread index, "stream|n": the
  visible replies of bucket n's roots, kept by append, hide, show and
  delete under the stream lock) and `changes` (the change feed: "stream",
  its head, holds the newest id and the changes of its block of 64; a full
  block is sealed into "stream|k"; writers hold the lease lock
  "changes|stream", and the head advances in one document write, so a
  reader never sees an id before a smaller one). Their cost does not grow
  with the collections (docs/stores.md has the figures).
"""

from messagestore.mongodb.layout import BUCKET_SIZE, document_of, encode
from messagestore.mongodb.store import MongoMessageStore

__all__ = ["BUCKET_SIZE", "MongoMessageStore", "document_of", "encode"]
