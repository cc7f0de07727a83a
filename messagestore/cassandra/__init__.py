"""Cassandra backend of the message store: django-cassandra-engine models
(`DjangoCassandraModel`, cqlengine underneath) on the scylla-driver.

Tables (one keyspace, CASSANDRA_KEYSPACE):

- `messages`      PRIMARY KEY ((stream, bucket), id) CLUSTERING ORDER BY (id DESC).
                  `bucket` is the 10-day window of the id's time (messagestore.ids.id_time),
                  so no partition grows without bound (Discord's layout). Pins, grades
                  and the moderator's `hidden` flag are columns of the row.
- `stream_buckets` PRIMARY KEY (stream, bucket DESC): the buckets that hold
                  messages, so a page walks only non-empty partitions.
- `stream_heads`  PRIMARY KEY (stream): the last id handed out. Written only by
                  lightweight transactions (compare-and-set), which is what makes
                  ids in a stream increase in acceptance order across processes.
- `client_ids`    PRIMARY KEY ((stream, author_id, client_id)) -> message_id:
                  `INSERT ... IF NOT EXISTS`, so two processes cannot both store
                  one clientId.
- `read_pointers` PRIMARY KEY (stream, user_id): moved forward with `IF message_id < ?`.
- `pins`          PRIMARY KEY (stream, message_id): the pinned messages of a stream.
- `reactions`     PRIMARY KEY ((stream, bucket), message_id, emoji, user_id), `at`;
                  `bucket` is the message's. Added with `INSERT ... IF NOT EXISTS`,
                  removed with `DELETE ... IF EXISTS`: no read-modify-write, so
                  concurrent adds never lose one.
- `thread_replies` PRIMARY KEY ((stream, bucket), root_id, reply_id), `created_at`;
                  `bucket` is the root's. One row per visible reply: `append`
                  adds it, hiding or deleting the reply removes it, un-hiding
                  adds it back; thread counts and pages read it.
- `changes`       PRIMARY KEY (stream, change_id DESC) -> message_id, kind: the
                  change feed; `INSERT ... IF NOT EXISTS` at the newest id + 1
                  both numbers and writes a change, so none is skipped.
- Soft delete: `deleted_at`/`deleted_by` columns of `messages`, with `hidden`.

A table is written either only through lightweight transactions (heads,
client ids, read pointers, reactions, changes) or never (messages, buckets,
pins, thread replies): Cassandra
orders LWT writes by Paxos ballots and plain writes by client timestamps, and
mixing the two on one row can reorder them. Plain updates of a message that a
moderator deleted meanwhile leave a row without author ("ghost"); readers treat
such rows as absent.

django-cassandra-engine's app is deliberately not in INSTALLED_APPS: its
AppConfig connects to every Cassandra database at `django.setup()` (a dead
cluster would stop start-up before the fallback can act) and it replaces
`migrate`/`flush`; we only use its model layer, and `migrate` creates the
tables through `ensure_schema()` (messagestore.apps). One Cassandra store is bound
per process: the models carry the connection and keyspace as class attributes.
Writes go through the models (models.py; store.py holds the store and its
writes); reads through prepared statements (reads.py), because building cqlengine model instances cost most of a page's
time (docs/stores.md). On a cluster (CASSANDRA_REPLICATION > 1) the keyspace
is made with NetworkTopologyStrategy and requests follow policies.py
(token- and DC-aware, retried on the next host only when that is safe).
"""

from messagestore.cassandra.models import bucket_of, connect, disconnect
from messagestore.cassandra.store import CassandraMessageStore

__all__ = ["CassandraMessageStore", "bucket_of", "connect", "disconnect"]
