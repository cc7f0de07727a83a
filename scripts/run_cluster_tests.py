#!/usr/bin/env python3
"""`make test-cluster`: the project on the distributed engines, and the
faults they survive (issue 19; docs/scaling.md).

Brings up the services of SERVICES through scripts/services (each prints
its NAME=value lines: the Cassandra cluster's CASSANDRA_HOSTS and
CASSANDRA_REPLICATION, ...), then runs `pytest tests/cluster` with them
plus ENV, and prints the result and the figures the tests wrote under
test-artifacts/cluster/; then the end-to-end tests of E2E_TESTS against
servers on the cluster with Redis through Sentinel. Arguments go to pytest.

To add a component: its name to SERVICES (scripts/services must know it),
any variable its tests need to ENV, its tests to tests/cluster/.

The Cassandra nodes go on CASSANDRA_CLUSTER_ADDRS, by default
127.0.0.2-4: the single node of `make test` keeps 127.0.0.1, so the two
never meet and nothing needs stopping between the two runs (CI runs this
after `make test`). The cluster is stopped at the end unless
CHAT_KEEP_CLUSTER=1 (it was left running only if it was running before).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
SERVICES_SCRIPT = str(ROOT / "scripts" / "services")
# Started in this order; stopped at the end only if this run started them
# (the single-machine services are shared with `make test` and left alone).
SERVICES = ["redis", "postgres", "cassandra-cluster"]
STOP_AFTER = {"cassandra-cluster"}
# Beside the services' own lines: what every test of tests/cluster runs with.
ENV = {
    "CASSANDRA_CLUSTER_ADDRS": os.environ.get("CASSANDRA_CLUSTER_ADDRS", "127.0.0.2,127.0.0.3,127.0.0.4"),
    "CHAT_CLUSTER_TESTS": "1",  # tests/cluster/conftest.py: collected only then
    "CI": os.environ.get("CI", "true"),  # a missing service fails, never skips
}
# Set by the caller, these win over the services' lines: e.g. REDIS_URL with
# a database of its own on a Redis that other runs share (the tests empty it).
CALLER_WINS = ("REDIS_URL", "DATABASE_URL")
TESTS = ["tests/cluster"]
# Then the clients' view of the whole: end-to-end tests against servers on the
# three-node cluster (no fallback) and Redis through Sentinel.
E2E_SERVICES = ["redis-sentinel"]
E2E_TESTS = ["tests/e2e/test_chat_e2e.py", "tests/e2e/test_messagepal_e2e.py", "tests/e2e/test_scaleout_e2e.py", "tests/e2e/test_lifecycle_e2e.py"]
E2E_ENV = {"CHAT_MESSAGE_STORE": "cassandra", "CHAT_STORE_FALLBACK": "0", "CHAT_STORE_TIMEOUT": "10", "CASSANDRA_KEYSPACE": f"chat_cluster_e2e_{os.getpid()}"}
ARTIFACTS = ROOT / "test-artifacts" / "cluster"


def services(command: str, *names: str, env: dict[str, str]) -> dict[str, str]:
    out = subprocess.run([SERVICES_SCRIPT, command, *names], check=True, stdout=subprocess.PIPE, text=True, env=env).stdout
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


def running(name: str, env: dict[str, str]) -> bool:
    return subprocess.run([SERVICES_SCRIPT, "env", name], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env).returncode == 0


def print_figures(since: float) -> None:
    for path in sorted(ARTIFACTS.glob("*.json")):
        if path.stat().st_mtime < since:
            continue
        entry = json.loads(path.read_text())
        print(f"\n{path.relative_to(ROOT)}:", flush=True)
        print(json.dumps(entry.get("figures", entry), indent=2), flush=True)


def e2e_on_the_cluster(env: dict[str, str], base: dict[str, str]) -> int:
    """E2E_TESTS against the cluster and Redis Sentinel (E2E_SERVICES, stopped
    afterwards): REDIS_SENTINELS wins over REDIS_URL in the servers."""
    sentinel = {}
    for name in E2E_SERVICES:
        sentinel.update(services("up", name, env=base))
    t0 = time.monotonic()
    print(f"\n===== pytest {' '.join(E2E_TESTS)} on the cluster, Redis through Sentinel =====", flush=True)
    try:
        code = subprocess.call([PY, "-m", "pytest", *E2E_TESTS, *sys.argv[1:]], cwd=ROOT, env={**env, **sentinel, **E2E_ENV})
    finally:
        for name in reversed(E2E_SERVICES):
            subprocess.call([SERVICES_SCRIPT, "down", name], env=base)
    print(f"===== e2e on the cluster: pytest exit {code} ({time.monotonic() - t0:.0f}s) =====", flush=True)
    return code


def main() -> int:
    base = {**os.environ, **ENV}
    started_here = [name for name in SERVICES if name in STOP_AFTER and not running(name, base)]
    started = time.time()
    env = dict(base)
    for name in SERVICES:
        t0 = time.monotonic()
        values = services("up", name, env=base)
        print(f"services: {name} up in {time.monotonic() - t0:.0f}s: " + ", ".join(f"{k}={v}" for k, v in values.items()), flush=True)
        env.update({k: v for k, v in values.items() if not (k in CALLER_WINS and os.environ.get(k))})
    code = 1
    try:
        t0 = time.monotonic()
        print(f"\n===== pytest {' '.join(TESTS)} =====", flush=True)
        code = subprocess.call([PY, "-m", "pytest", *TESTS, *sys.argv[1:]], cwd=ROOT, env=env)
        print(f"===== tests/cluster: pytest exit {code} ({time.monotonic() - t0:.0f}s) =====", flush=True)
        print_figures(started)
        code = e2e_on_the_cluster(env, base) or code
    finally:
        if os.environ.get("CHAT_KEEP_CLUSTER") != "1":
            for name in reversed(started_here):
                subprocess.call([SERVICES_SCRIPT, "down", name], env=base)
    print(f"\nmake test-cluster: {'ok' if code == 0 else f'FAILED (exit {code})'} in {time.time() - started:.0f}s", flush=True)
    return code


if __name__ == "__main__":
    sys.exit(main())
