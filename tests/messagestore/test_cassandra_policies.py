"""The Cassandra store's retry decisions on a cluster
(messagestore/cassandra/policies.py): pure, no server."""

from __future__ import annotations

from cassandra import ConsistencyLevel
from cassandra.connection import ConnectionException
from cassandra.policies import WriteType
from cassandra.protocol import OverloadedErrorMessage
from cassandra.query import SimpleStatement

from messagestore.cassandra.policies import NextHostRetryPolicy, cluster_policies, retry_safe

NEXT, RETHROW = NextHostRetryPolicy.RETRY_NEXT_HOST, NextHostRetryPolicy.RETHROW
LQ = ConsistencyLevel.LOCAL_QUORUM
PLAIN = SimpleStatement('INSERT INTO "ks"."messages" ("stream", "bucket", "id", "content") VALUES (%(0)s, %(1)s, %(2)s, %(3)s)')
CAS = SimpleStatement('UPDATE "ks"."stream_heads" SET "last_id" = %(0)s WHERE "stream" = %(1)s IF "last_id" = %(2)s')
CREATE_IF = SimpleStatement('INSERT INTO "ks"."client_ids" ("stream") VALUES (%(0)s) IF NOT EXISTS')


def test_plain_writes_and_marked_reads_are_safe_to_repeat_conditional_writes_are_not():
    assert retry_safe(PLAIN)
    assert not retry_safe(CAS) and not retry_safe(CREATE_IF)
    read = SimpleStatement("SELECT id FROM ks.messages WHERE stream = %s", is_idempotent=True)
    assert retry_safe(read)
    assert not retry_safe(object())


def test_timeouts_go_to_the_next_host_once_and_never_repeat_a_compare_and_set():
    policy = NextHostRetryPolicy()
    assert policy.on_read_timeout(PLAIN, LQ, 2, 1, False, 0) == (NEXT, None)
    assert policy.on_read_timeout(PLAIN, LQ, 2, 1, False, 1) == (RETHROW, None)
    assert policy.on_write_timeout(PLAIN, LQ, WriteType.SIMPLE, 2, 1, 0) == (NEXT, None)
    assert policy.on_write_timeout(PLAIN, LQ, WriteType.SIMPLE, 2, 1, 1) == (RETHROW, None)
    assert policy.on_write_timeout(CAS, ConsistencyLevel.LOCAL_SERIAL, WriteType.CAS, 2, 1, 0) == (RETHROW, None)
    assert policy.on_write_timeout(CAS, LQ, WriteType.SIMPLE, 2, 1, 0) == (RETHROW, None)  # the commit of a Paxos round


def test_unavailable_and_not_executed_errors_go_on_a_broken_connection_only_when_safe():
    policy = NextHostRetryPolicy()
    assert policy.on_unavailable(CAS, LQ, 2, 1, 0) == (NEXT, None)
    assert policy.on_unavailable(CAS, LQ, 2, 1, 1) == (RETHROW, None)
    broken = ConnectionException("connection reset")
    assert policy.on_request_error(PLAIN, LQ, broken, 0) == (NEXT, None)
    assert policy.on_request_error(CAS, LQ, broken, 0) == (RETHROW, None)
    assert policy.on_request_error(CAS, LQ, OverloadedErrorMessage(0x1001, "overloaded", {}), 0) == (NEXT, None)
    assert policy.on_request_error(PLAIN, LQ, broken, 2) == (RETHROW, None)


def test_the_cluster_profile_names_the_local_datacenter_when_given():
    policies = cluster_policies("dc7")
    assert policies["load_balancing_policy"]._child_policy.local_dc == "dc7"
    assert isinstance(policies["retry_policy"], NextHostRetryPolicy)
