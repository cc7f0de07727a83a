"""The Cassandra store's tables as django-cassandra-engine models
(cqlengine underneath), and the one driver connection per process. The
layout and why: messagestore/cassandra/__init__.py."""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from cassandra import ConsistencyLevel, DriverException
from cassandra.cluster import EXEC_PROFILE_DEFAULT, Cluster, ExecutionProfile, NoHostAvailable
from cassandra.connection import ConnectionException
from cassandra.cqlengine import CQLEngineException, columns, connection
from cassandra.policies import DCAwareRoundRobinPolicy, TokenAwarePolicy
from django_cassandra_engine.models import DjangoCassandraModel

from messagestore import ids
from messagestore.base import StoreError
from messagestore.cassandra.policies import cluster_policies

logger = logging.getLogger(__name__)
# cqlengine logs each statement with its values (message bodies) at DEBUG;
# logs never hold message bodies, whatever LOG_LEVEL says.
logging.getLogger("cassandra").setLevel(max(logging.INFO, logging.getLogger("cassandra").level))

BUCKET_DAYS = 10
BUCKET_SECONDS = BUCKET_DAYS * 86_400
APP_LABEL = "chat_cassandra"  # not an installed app: Django's migrations never see these models

# What the driver raises when the cluster fails us (NoHostAvailable and
# ConnectionException are not DriverExceptions).
DRIVER_ERRORS = (DriverException, NoHostAvailable, ConnectionException, CQLEngineException, OSError)


def bucket_of(message_id: int) -> int:
    """The 10-day window (counted from the Unix epoch) that the id's time falls in."""
    return int(ids.id_time(max(message_id, 0)).timestamp()) // BUCKET_SECONDS


def _now() -> datetime:
    return datetime.now(UTC)


_clock_lock = threading.Lock()
_last_ms = 0


def _now_ms_monotonic() -> datetime:
    """Now to the millisecond (what Cassandra keeps), later than this
    process's previous call: reactions are ordered by their time, and one
    process's adds must not share a millisecond."""
    global _last_ms
    with _clock_lock:
        _last_ms = max(int(time.time() * 1000), _last_ms + 1)
        ms = _last_ms
    return datetime.fromtimestamp(ms // 1000, tz=UTC).replace(microsecond=ms % 1000 * 1000)


def _aware(value: datetime | None) -> datetime | None:
    # cqlengine hands back naive UTC datetimes; the project uses aware ones only.
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)


class CassandraMessage(DjangoCassandraModel):
    __table_name__ = "messages"

    stream = columns.Text(partition_key=True)
    bucket = columns.Integer(partition_key=True)
    id = columns.BigInt(primary_key=True, clustering_order="DESC")
    author_id = columns.BigInt()
    content = columns.Text()
    message_type = columns.Text()
    file_url = columns.Text()
    reply_to = columns.BigInt()
    mentions = columns.List(columns.BigInt)
    created_at = columns.DateTime()
    edited_at = columns.DateTime()
    is_pinned = columns.Boolean()
    pinned_by = columns.BigInt()
    is_ai = columns.Boolean()
    client_id = columns.Text()
    grade = columns.Text()
    feedback = columns.Text()
    graded_by = columns.BigInt()
    graded_at = columns.DateTime()
    hidden = columns.Boolean()
    deleted_at = columns.DateTime()
    deleted_by = columns.BigInt()

    class Meta:
        app_label = APP_LABEL
        get_pk_field = "id"


class CassandraStreamBucket(DjangoCassandraModel):
    __table_name__ = "stream_buckets"

    stream = columns.Text(partition_key=True)
    bucket = columns.Integer(primary_key=True, clustering_order="DESC")

    class Meta:
        app_label = APP_LABEL
        get_pk_field = "stream"


class CassandraStreamHead(DjangoCassandraModel):
    __table_name__ = "stream_heads"

    stream = columns.Text(partition_key=True)
    last_id = columns.BigInt()

    class Meta:
        app_label = APP_LABEL


class CassandraClientId(DjangoCassandraModel):
    __table_name__ = "client_ids"

    stream = columns.Text(partition_key=True)
    author_id = columns.BigInt(partition_key=True)
    client_id = columns.Text(partition_key=True)
    message_id = columns.BigInt()
    reserved_at = columns.DateTime()

    class Meta:
        app_label = APP_LABEL
        get_pk_field = "client_id"


class CassandraReadPointer(DjangoCassandraModel):
    __table_name__ = "read_pointers"

    stream = columns.Text(partition_key=True)
    user_id = columns.BigInt(primary_key=True)
    message_id = columns.BigInt()
    read_at = columns.DateTime()

    class Meta:
        app_label = APP_LABEL
        get_pk_field = "user_id"


class CassandraPin(DjangoCassandraModel):
    __table_name__ = "pins"

    stream = columns.Text(partition_key=True)
    message_id = columns.BigInt(primary_key=True)

    class Meta:
        app_label = APP_LABEL
        get_pk_field = "message_id"


class CassandraReaction(DjangoCassandraModel):
    """One user's one emoji on one message; `bucket` is the message's."""

    __table_name__ = "reactions"

    stream = columns.Text(partition_key=True)
    bucket = columns.Integer(partition_key=True)
    message_id = columns.BigInt(primary_key=True)
    emoji = columns.Text(primary_key=True)
    user_id = columns.BigInt(primary_key=True)
    at = columns.DateTime()

    class Meta:
        app_label = APP_LABEL
        get_pk_field = "message_id"


class CassandraThreadReply(DjangoCassandraModel):
    """A visible reply of a thread; `bucket` is the root's."""

    __table_name__ = "thread_replies"

    stream = columns.Text(partition_key=True)
    bucket = columns.Integer(partition_key=True)
    root_id = columns.BigInt(primary_key=True)
    reply_id = columns.BigInt(primary_key=True)
    created_at = columns.DateTime()

    class Meta:
        app_label = APP_LABEL
        get_pk_field = "root_id"


class CassandraChange(DjangoCassandraModel):
    """The change feed of a stream. One partition per stream: a row is ~40
    bytes, so even a million changes stay a partition of tens of megabytes."""

    __table_name__ = "changes"

    stream = columns.Text(partition_key=True)
    change_id = columns.BigInt(primary_key=True, clustering_order="DESC")
    message_id = columns.BigInt()
    kind = columns.Text()

    class Meta:
        app_label = APP_LABEL
        get_pk_field = "change_id"


MODELS: tuple[type[DjangoCassandraModel], ...] = (
    CassandraMessage,
    CassandraStreamBucket,
    CassandraStreamHead,
    CassandraClientId,
    CassandraReadPointer,
    CassandraPin,
    CassandraReaction,
    CassandraThreadReply,
    CassandraChange,
)

# One driver Cluster per (hosts, port, process, policies): the driver wants one per
# application, and its sockets must not be shared with a forked child.
_connections: dict[tuple[tuple[str, ...], int, int, bool], str] = {}
_connections_lock = threading.Lock()


def connect(*, hosts: Sequence[str], port: int, timeout: float, replication: int = 1, datacenter: str = "") -> str:
    """The name of a registered cqlengine connection to the cluster; raises
    StoreError when no host answers within `timeout` seconds. With
    `replication` > 1, the cluster's policies (messagestore/cassandra/policies.py)."""
    key = (tuple(hosts), port, os.getpid(), replication > 1)
    with _connections_lock:
        name = _connections.get(key)
        if name is not None:
            return name
        policies: dict[str, Any] = {"load_balancing_policy": TokenAwarePolicy(DCAwareRoundRobinPolicy())}
        if replication > 1:
            policies = cluster_policies(datacenter)
        profile = ExecutionProfile(
            **policies,
            # Explicit, not the driver's default: a write acknowledged by a
            # majority of the local replicas, and reads that see it; the
            # compare-and-sets of ids, clientIds and read pointers at LOCAL_SERIAL.
            consistency_level=ConsistencyLevel.LOCAL_QUORUM,
            serial_consistency_level=ConsistencyLevel.LOCAL_SERIAL,
            # Every request gives up after this long, so a dead cluster answers
            # the consumer with an error instead of hanging it.
            request_timeout=max(timeout, 2.0),
        )
        cluster = Cluster(
            contact_points=list(hosts),
            port=port,
            connect_timeout=timeout,
            control_connection_timeout=timeout,
            execution_profiles={EXEC_PROFILE_DEFAULT: profile},
            protocol_version=5,
        )
        try:
            session = cluster.connect()
        except DRIVER_ERRORS as exc:
            cluster.shutdown()
            raise StoreError(f"Cassandra at {','.join(hosts)}:{port} is unreachable: {exc}") from exc
        name = f"chat-messages-{os.getpid()}-{len(_connections)}"
        connection.register_connection(name, session=session)
        _connections[key] = name
        atexit.register(_shutdown_at_exit, cluster)
        return name


def _shutdown_at_exit(cluster: Cluster) -> None:
    cluster.shutdown()
    # The driver's own exit hook (which runs after this one) joins its event
    # loop thread with a short limit and warns when that thread is still busy;
    # at exit that is harmless, and by then pytest has closed the log stream.
    logging.getLogger("cassandra.io.libevreactor").setLevel(logging.ERROR)


def disconnect(name: str) -> None:
    """Close a connection made by connect() (tests that cut a store off)."""
    with _connections_lock:
        for key, value in list(_connections.items()):
            if value == name:
                del _connections[key]
        connection.unregister_connection(name)  # shuts its Cluster down
