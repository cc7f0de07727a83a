"""The distributed engines under test (`make test-cluster`,
scripts/run_cluster_tests.py): a three-node Cassandra cluster from
scripts/services (CASSANDRA_HOSTS, CASSANDRA_REPLICATION), Redis and
PostgreSQL, and real daphne processes on them.

These tests kill services shared by the whole run, so they run only under
scripts/run_cluster_tests.py (CHAT_CLUSTER_TESTS=1); `make test` never
collects them.

Fixtures:
- `cassandra_cluster`: the nodes (kill one with SIGKILL, start the missing
  ones, nodetool, a driver session pinned to chosen nodes); after each test
  every node is up again.
- `cluster_env`: the daphne environment: the Cassandra store on the cluster
  (a keyspace of this run's, made by `migrate` with NetworkTopologyStrategy),
  no fallback, a Redis database and a PostgreSQL database of its own.
- `cluster_pair`: two daphne processes on that environment.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.harness import ROOT, Server
from tests.reliability.faults import server_env

if not os.environ.get("CHAT_CLUSTER_TESTS"):
    # Only `make test-cluster` runs them (module docstring).
    collect_ignore_glob = ["test_*.py"]

SERVICES = str(ROOT / "scripts" / "services")
# The driver announces every host of every short-lived session at INFO.
logging.getLogger("cassandra.cluster").setLevel(logging.WARNING)
STATE_DIR = Path(os.environ.get("CHAT_SERVICES_DIR") or ROOT / ".services")
pytestmark = [pytest.mark.e2e]


def require_env(name: str) -> str:
    from tests.conftest import require_service

    value = os.environ.get(name, "")
    require_service(name, value)
    return value


class CassandraCluster:
    """The three nodes of `scripts/services up cassandra-cluster`, by number
    (1-3, in CASSANDRA_HOSTS order; node 1 is the seed)."""

    def __init__(self, hosts: list[str], replication: int, port: int):
        self.hosts = hosts
        self.replication = replication
        self.port = port
        # scripts/services must find the same nodes: same addresses, same state dir.
        self.env = {**os.environ, "CASSANDRA_CLUSTER_ADDRS": ",".join(hosts)}

    def address(self, node: int) -> str:
        return self.hosts[node - 1]

    def pid(self, node: int) -> int | None:
        try:
            pid = int((STATE_DIR / "cassandra-cluster" / f"node{node}" / "cassandra.pid").read_text().split()[0])
            os.kill(pid, 0)
        except (OSError, ValueError, IndexError):
            return None
        return pid

    def kill(self, node: int) -> None:
        """SIGKILL: no drain, no goodbye to gossip, like a machine that dies."""
        pid = self.pid(node)
        assert pid is not None, f"node {node} is not running"
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except OSError:
                return
            time.sleep(0.05)
        raise AssertionError(f"node {node} (pid {pid}) survived SIGKILL")

    def start(self) -> float:
        """Start every node that is down and wait until all three are UN;
        the seconds it took."""
        t0 = time.monotonic()
        subprocess.run([SERVICES, "up", "cassandra-cluster"], check=True, env=self.env, stdout=subprocess.DEVNULL)
        return time.monotonic() - t0

    def nodetool(self, node: int, *args: str, timeout: float = 300) -> str:
        done = subprocess.run([SERVICES, "nodetool", str(node), *args], env=self.env, capture_output=True, text=True, timeout=timeout)
        assert done.returncode == 0, f"nodetool {' '.join(args)} on node {node}: {done.stderr[-2000:]}"
        return done.stdout

    def session(self, *nodes: int, timeout: float = 10.0) -> Any:
        """A driver session whose requests are coordinated only by `nodes`
        (all when none), dict rows; the caller shuts its cluster down."""
        from cassandra.cluster import EXEC_PROFILE_DEFAULT, Cluster, ExecutionProfile
        from cassandra.policies import WhiteListRoundRobinPolicy
        from cassandra.query import dict_factory

        chosen = [self.address(n) for n in nodes] or self.hosts
        profile = ExecutionProfile(load_balancing_policy=WhiteListRoundRobinPolicy(chosen), request_timeout=timeout, row_factory=dict_factory)
        cluster = Cluster(chosen, port=self.port, execution_profiles={EXEC_PROFILE_DEFAULT: profile}, protocol_version=5, connect_timeout=timeout)
        return cluster.connect()


@pytest.fixture(scope="session")
def cassandra_cluster() -> Iterator[CassandraCluster]:
    hosts = [h.strip() for h in require_env("CASSANDRA_HOSTS").split(",") if h.strip()]
    replication = int(require_env("CASSANDRA_REPLICATION"))
    assert len(hosts) == 3 and replication == 3, f"expected three nodes at replication 3, got {hosts} at {replication}"
    yield CassandraCluster(hosts, replication, int(os.environ.get("CASSANDRA_PORT") or 9042))


@pytest.fixture
def whole_cluster(cassandra_cluster: CassandraCluster) -> Iterator[CassandraCluster]:
    """The cluster, with every node up again after the test (whatever it killed)."""
    cassandra_cluster.start()
    yield cassandra_cluster
    cassandra_cluster.start()


@pytest.fixture(scope="session")
def cluster_env(cassandra_cluster: CassandraCluster) -> Iterator[dict[str, str]]:
    redis_url = require_env("REDIS_URL")
    require_env("DATABASE_URL")
    from urllib.parse import urlparse

    keyspace = f"chat_cluster_{os.getpid()}"
    env = server_env(
        "cluster",
        urlparse(redis_url)._replace(path="/" + os.environ.get("CHAT_CLUSTER_REDIS_DB", "13")).geturl(),
        CHAT_MESSAGE_STORE="cassandra",
        CASSANDRA_HOSTS=",".join(cassandra_cluster.hosts),
        CASSANDRA_REPLICATION=str(cassandra_cluster.replication),
        CASSANDRA_KEYSPACE=keyspace,
        # Several processes: the configured store or nothing (never split a channel).
        CHAT_STORE_FALLBACK="0",
        # A busy 2-core machine with three JVMs: a request may take seconds.
        CHAT_STORE_TIMEOUT="10",
        MONGODB_URI="",
    )
    # server_env's database is copied from one migrated with this
    # environment: `migrate` made the keyspace (NetworkTopologyStrategy, 3).
    import redis

    redis.Redis.from_url(env["REDIS_URL"]).flushdb()
    yield env
    session = cassandra_cluster.session()
    try:
        session.execute(f"DROP KEYSPACE IF EXISTS {keyspace}", timeout=120)
    finally:
        session.cluster.shutdown()


@pytest.fixture
def cluster_pair(cluster_env: dict[str, str]) -> Iterator[tuple[Server, Server]]:
    servers = (Server(cluster_env, log_name="daphne-a").start(), Server(cluster_env, log_name="daphne-b").start())
    yield servers
    for server in servers:
        server.stop()



ARTIFACTS = ROOT / "test-artifacts" / "cluster"


def record(test: str, **figures: Any) -> Path:
    """A test's figures: printed, and written to test-artifacts/cluster/TEST.json
    (scripts/run_cluster_tests.py prints them again at the end)."""
    import datetime
    import json

    print(f"\n[{test}] " + ", ".join(f"{k}={v}" for k, v in figures.items()), flush=True)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=False).stdout.strip()
    entry = {"test": test, "when": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"), "commit": commit, "figures": figures}
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{test}.json"
    path.write_text(json.dumps(entry, indent=2, default=str) + "\n")
    return path
