#!/usr/bin/env python3
"""`make test`: the static checks (ruff and mypy, configured in
pyproject.toml), then start the real services the suite needs through
scripts/services (Redis, PostgreSQL, Cassandra, a MongoDB-wire server, an
S3-compatible object store), then
run the suite in each configuration:

1. production shape: PostgreSQL (DATABASE_URL) + Redis (REDIS_URL), SQL
   message store; the store contract runs here on sql, cassandra and mongodb;
2. embedded default: SQLite + in-memory channel layer (what `make run` uses);
   tests that need Redis, PostgreSQL, Cassandra or MongoDB are deselected
   here, not skipped;
3. the end-to-end tests (tests/e2e) and the order tests of tests/reliability
   (ORDER_TESTS) again with CHAT_MESSAGE_STORE=cassandra, then with
   CHAT_MESSAGE_STORE=mongodb, each on a keyspace/database of its own;
   afterwards the store must hold the run's messages, so a silent fallback
   to another store fails the run. The mongodb pass runs through nginx
   (CHAT_E2E_VIA_NGINX=1: every server the tests start sits behind an nginx
   with deploy/nginx-chat-proxy.conf), so the whole e2e suite also runs once
   through the load balancer without a fifth pass.

Then docs/reliability.md's "Latest run" section is written from the figures
the reliability tests recorded (scripts/reliability_report.py).

Each `make test` works on a PostgreSQL database of its own (chat_run_<pid>),
so two runs on one machine never share pytest's test database.
Prints each run's result; exits non-zero if a check or any run fails or
runs no test. `--checks-only` (make check) stops after the static checks;
any other arguments go to every pytest run.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
SERVICES = ("redis", "postgres", "cassandra", "mongodb", "s3")
# Only the variables a run names reach its pytest: the embedded run must not
# inherit a DATABASE_URL or a MONGODB_URI from the caller's shell.
SERVICE_VARS = (
    "DATABASE_URL",
    "REDIS_URL",
    "CASSANDRA_HOSTS",
    "CASSANDRA_PORT",
    "CASSANDRA_KEYSPACE",
    "MONGODB_URI",
    "FERRETDB_SQLITE_DIR",
    "CHAT_MESSAGE_STORE",
    "CHAT_STORE_TIMEOUT",
    "CHAT_E2E_VIA_NGINX",
    "CHAT_FILE_STORAGE",
    "CHAT_S3_ENDPOINT_URL",
    "CHAT_S3_BUCKET",
    "CHAT_S3_ACCESS_KEY_ID",
    "CHAT_S3_SECRET_ACCESS_KEY",
    "CHAT_S3_REGION",
)
ORDER_TESTS = (
    "tests/reliability/test_order.py",
    "tests/reliability/test_churn.py",
    "tests/reliability/test_faults.py::test_resume_from_newest_seen_id_misses_nothing",
)
NOT_EMBEDDED = "not needs_redis and not needs_postgres and not needs_cassandra and not needs_mongodb and not needs_s3"


def services_up(*names: str) -> dict[str, str]:
    out = subprocess.run([str(ROOT / "scripts" / "services"), "up", *names], check=True, stdout=subprocess.PIPE, text=True).stdout
    env = {}
    for line in out.splitlines():
        if "=" in line:
            key, value = line.split("=", 1)
            env[key.strip()] = value.strip()
    print("services: " + ", ".join(f"{k}={v}" for k, v in env.items()), flush=True)
    return env


PYTEST_ARGS = [arg for arg in sys.argv[1:] if arg != "--checks-only"]


def static_checks() -> int:
    """ruff and mypy under the project's own configuration (pyproject.toml)."""
    code = 0
    for label, command in (("ruff", [PY, "-m", "ruff", "check", "."]), ("mypy", [PY, "-m", "mypy"])):
        print(f"\n===== {label} =====", flush=True)
        result = subprocess.call(command, cwd=ROOT)
        print(f"===== {label}: exit {result} =====", flush=True)
        code = code or result
    return code


def pytest_run(label: str, env: dict[str, str], extra: list[str]) -> int:
    print(f"\n===== {label} =====", flush=True)
    full_env = {k: v for k, v in os.environ.items() if k not in SERVICE_VARS}
    full_env.update(env)
    args = [PY, "-m", "pytest", *extra, *PYTEST_ARGS]
    started = time.monotonic()
    code = subprocess.call(args, cwd=ROOT, env=full_env)
    print(f"===== {label}: pytest exit {code} ({time.monotonic() - started:.0f}s) =====", flush=True)
    return code


def with_database(uri: str, database: str) -> str:
    return urlparse(uri)._replace(path=f"/{database}").geturl()


def cassandra_streams(env: dict[str, str], *, drop: bool) -> int:
    """Streams the e2e run wrote to its keyspace (then drop the keyspace)."""
    from cassandra.cluster import Cluster

    cluster = Cluster(env["CASSANDRA_HOSTS"].split(","), port=int(env.get("CASSANDRA_PORT") or 9042), connect_timeout=10)
    try:
        session = cluster.connect()
        keyspace = env["CASSANDRA_KEYSPACE"]
        try:
            count = session.execute(f"SELECT count(*) FROM {keyspace}.stream_heads").one()[0]
        except Exception as exc:
            print(f"cassandra keyspace {keyspace}: {exc}", flush=True)
            count = 0
        if drop:
            session.execute(f"DROP KEYSPACE IF EXISTS {keyspace}", timeout=120)
        return count
    finally:
        cluster.shutdown()


def mongodb_streams(env: dict[str, str], *, drop: bool) -> int:
    """Streams the e2e run wrote to its database (then drop the database)."""
    from pymongo import MongoClient

    client = MongoClient(env["MONGODB_URI"], serverSelectionTimeoutMS=10_000)
    try:
        database = client.get_default_database()
        count = database["stream_heads"].count_documents({})
        if drop:
            client.drop_database(database.name)
        return count
    finally:
        client.close()


def e2e_on_store(store: str, env: dict[str, str]) -> int:
    tag = f"chat_e2e_{os.getpid()}_{store}"
    store_env = {
        **env,
        "CHAT_MESSAGE_STORE": store,
        "CASSANDRA_KEYSPACE": tag,
        "MONGODB_URI": with_database(env["MONGODB_URI"], tag),
        # Refused connections still fail at once; this only spares a busy
        # 2-core machine a fallback because the JVM paused for 3 s.
        "CHAT_STORE_TIMEOUT": "10",
    }
    if store == "mongodb":
        store_env["CHAT_E2E_VIA_NGINX"] = "1"
    # The end-to-end tests, and the reliability tests of order and exactly-once
    # delivery (two processes, churn, resuming with afterId) on this store.
    label = f"end to end on the {store} store" + (" through nginx" if store_env.get("CHAT_E2E_VIA_NGINX") else "")
    code = pytest_run(label, store_env, ["tests/e2e", *ORDER_TESTS])
    count_streams = cassandra_streams if store == "cassandra" else mongodb_streams
    try:
        streams = count_streams(store_env, drop=True)
        if store == "cassandra":
            mongodb_streams(store_env, drop=True)  # migrate made the fallback's indexes there too
    except Exception as exc:
        print(f"could not inspect the {store} store after the run: {exc}", flush=True)
        streams = 0
    print(f"{store} store: the end-to-end run wrote {streams} stream(s) to {tag}", flush=True)
    if code == 0 and streams == 0:
        print(f"FAIL: the servers did not write to the {store} store (did start-up fall back?)", flush=True)
        return 1
    return code


def own_database(env: dict[str, str], name: str, *, drop: bool = False) -> None:
    """A PostgreSQL database for this run (pytest-django then makes
    test_<name>), so two `make test` on one machine never share one."""
    import psycopg

    with psycopg.connect(env["DATABASE_URL"], autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'DROP DATABASE IF EXISTS "test_{name}" WITH (FORCE)')
        if not drop:
            conn.execute(f'CREATE DATABASE "{name}"')


def main() -> int:
    checks = static_checks()
    if "--checks-only" in sys.argv[1:]:
        return checks
    # Debian's Chromium for the browser tests (never a downloaded browser).
    subprocess.run([str(ROOT / "scripts" / "ensure_chromium")], check=True)
    # nginx, systemd-analyze and openssl for tests/deploy (nothing started).
    subprocess.run([str(ROOT / "scripts" / "services"), "install", "nginx"], check=True)
    services = services_up(*SERVICES)
    # The runs keep the file system storage; tests/files/test_s3_storage.py
    # uses the object store the CHAT_S3_* variables name.
    services.pop("CHAT_FILE_STORAGE", None)
    run_database = f"chat_run_{os.getpid()}"
    own_database(services, run_database)
    env = {**services, "DATABASE_URL": with_database(services["DATABASE_URL"], run_database)}
    started = time.monotonic()
    results = {"ruff+mypy": checks}
    results["postgres+redis"] = pytest_run("PostgreSQL + Redis (SQL store; store contract on sql, cassandra, mongodb)", env, [])
    results["sqlite+in-memory"] = pytest_run("SQLite + in-memory layer (embedded default)", {}, ["-m", NOT_EMBEDDED])
    for store in ("cassandra", "mongodb"):
        results[f"e2e-{store}"] = e2e_on_store(store, env)
    own_database(services, run_database, drop=True)
    # docs/reliability.md's "Latest run" from the figures this run recorded.
    subprocess.call([PY, str(ROOT / "scripts" / "reliability_report.py")], cwd=ROOT)
    failed = [label for label, code in results.items() if code != 0]
    summary = ", ".join(f"{label}={'ok' if code == 0 else f'exit {code}'}" for label, code in results.items())
    print(f"\nsuite runs ({time.monotonic() - started:.0f}s): {summary}", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
