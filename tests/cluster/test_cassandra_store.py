"""The Cassandra store configured for a cluster (CASSANDRA_REPLICATION=3),
on the real three nodes: the keyspace, the consistency levels and policies
the driver uses, and the store's writes and reads through them."""

from __future__ import annotations

import uuid

import pytest
from cassandra import ConsistencyLevel
from cassandra.cqlengine import connection
from cassandra.policies import DCAwareRoundRobinPolicy, TokenAwarePolicy

from messagestore import NewMessage
from messagestore.cassandra import CassandraMessageStore
from messagestore.cassandra.policies import NextHostRetryPolicy
from tests.cluster.conftest import CassandraCluster

pytestmark = [pytest.mark.needs_cassandra]


@pytest.fixture(scope="module")
def store(cassandra_cluster: CassandraCluster):
    store = CassandraMessageStore(
        hosts=cassandra_cluster.hosts,
        port=cassandra_cluster.port,
        keyspace=f"chat_cluster_store_{uuid.uuid4().hex[:8]}",
        timeout=10,
        replication=cassandra_cluster.replication,
    )
    store.ensure_schema()
    yield store
    store.drop_schema()


def test_the_keyspace_has_three_replicas_in_the_local_datacenter(store, cassandra_cluster):
    session = cassandra_cluster.session()
    try:
        row = session.execute("SELECT replication FROM system_schema.keyspaces WHERE keyspace_name = %s", (store.keyspace,)).one()
        datacenter = session.execute("SELECT data_center FROM system.local").one()["data_center"]
    finally:
        session.cluster.shutdown()
    replication = dict(row["replication"])
    assert replication["class"] == "org.apache.cassandra.locator.NetworkTopologyStrategy"
    assert replication == {"class": replication["class"], datacenter: "3"}
    assert store.local_datacenter() == datacenter == "dc1"


def test_requests_use_local_quorum_token_aware_dc_aware_and_retry_on_the_next_host(store):
    cluster = connection.get_cluster(store.connection_name)
    profile = cluster.profile_manager.default
    assert profile.consistency_level == ConsistencyLevel.LOCAL_QUORUM
    assert profile.serial_consistency_level == ConsistencyLevel.LOCAL_SERIAL
    assert isinstance(profile.load_balancing_policy, TokenAwarePolicy)
    assert isinstance(profile.load_balancing_policy._child_policy, DCAwareRoundRobinPolicy)
    assert profile.load_balancing_policy._child_policy.local_dc == "dc1"
    assert isinstance(profile.retry_policy, NextHostRetryPolicy)
    assert {str(h.endpoint.address) for h in cluster.metadata.all_hosts() if h.is_up} == set(store.hosts)


def test_appends_and_pages_through_the_cluster(store):
    stream = f"ch:{uuid.uuid4().int % 10**9}"
    stored = [store.append(NewMessage(stream=stream, author_id=7, content=f"m{i}", client_id=f"c{i}"))[0] for i in range(30)]
    again, created = store.append(NewMessage(stream=stream, author_id=7, content="m3", client_id="c3"))
    assert not created and again.id == stored[3].id
    ids = [m.id for m in stored]
    assert ids == sorted(ids) and len(set(ids)) == 30
    oldest_first, more = store.page(stream, after=0, limit=50)
    assert [m.id for m in oldest_first] == ids and not more
