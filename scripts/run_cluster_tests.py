#!/usr/bin/env python3
"""`make test-cluster`: the project on the distributed engines, and the
faults they survive (issue 19; docs/scaling.md).

Brings up the services of SERVICES through scripts/services (each prints
its NAME=value lines: the Cassandra cluster's CASSANDRA_HOSTS and
CASSANDRA_REPLICATION, ...), then runs `pytest tests/cluster` with them
plus ENV, and prints the result and the figures the tests wrote under
test-artifacts/cluster/. Arguments go to pytest.

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
    finally:
        if os.environ.get("CHAT_KEEP_CLUSTER") != "1":
            for name in reversed(started_here):
                subprocess.call([SERVICES_SCRIPT, "down", name], env=base)
    print(f"\nmake test-cluster: {'ok' if code == 0 else f'FAILED (exit {code})'} in {time.time() - started:.0f}s", flush=True)
    return code


if __name__ == "__main__":
    sys.exit(main())
