"""Fault-injection helpers for tests/reliability (issue 8, "Faults" and "Churn"):
the services a test breaks and the servers it watches.

Everything a test breaks is its own: a private `redis-server` and a private
FerretDB on free loopback ports (never the shared services on 6379/5433,
which other runs use), and a fresh database per test. A test may kill and
restart them; the daphne processes under test (tests.e2e.harness.Server)
are only ever stopped at teardown.

Also here: the servers' health, crashes and RSS, what connections leave in
Redis, and percentile figures. The client with its ledger is
tests/reliability/ledger.py; the reader that stops reading is
tests/reliability/stalled_reader.py.
"""

from __future__ import annotations

import glob
import math
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import httpx
import pytest
import websockets

from tests.conftest import IN_CI
from tests.e2e.harness import Server, create_database, free_port, prepare_database, server_base_env

REDIS_SERVER = shutil.which("redis-server") or ""


def require_tool(name: str, path: str) -> str:
    """Like tests.conftest.require_service, for a binary the test runs itself:
    missing in CI fails, outside CI skips with the reason printed."""
    if path:
        return path
    message = f"{name} is not installed: `scripts/services up` installs it"
    if IN_CI:
        pytest.fail(message)
    print(f"SKIP: {message}", file=sys.stderr)
    pytest.skip(message)


def wait_until(check: Callable[[], bool], timeout: float, step: float = 0.1) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(step)
    return check()


def _kill(proc: subprocess.Popen | None, sig: int = signal.SIGKILL) -> None:
    if proc is not None and proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


# Connecting can fail in all these ways while a service is down or just back.
CONNECT_ERRORS = (OSError, TimeoutError, AssertionError, websockets.WebSocketException)


# ----------------------------------------------------------------- services


class RedisProcess:
    """A private redis-server (no persistence) that a test may kill and restart
    on the same port. A restart therefore comes back empty, as a crashed Redis
    without persistence does: groups, presence and rate-limit buckets are gone."""

    def __init__(self) -> None:
        self.binary = require_tool("redis-server", REDIS_SERVER)
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix="chat-rel-redis-")
        self.proc: subprocess.Popen | None = None
        self.restarts = 0

    def url(self, db: int = 0) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    def ping(self) -> bool:
        import redis

        try:
            return bool(redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=1, socket_connect_timeout=1).ping())
        except redis.RedisError:
            return False

    def start(self, timeout: float = 15.0) -> RedisProcess:
        log = open(Path(self.dir) / "redis.log", "ab")
        self.proc = subprocess.Popen(
            [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", self.dir, "--protected-mode", "yes"],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        if not wait_until(self.ping, timeout):
            raise RuntimeError(f"private redis-server on {self.port} did not answer within {timeout}s")
        return self

    def kill(self) -> None:
        """SIGKILL: a crash, not a clean shutdown."""
        _kill(self.proc)
        assert not self.ping(), "redis still answers after SIGKILL"

    def restart(self) -> None:
        self.kill()
        self.start()
        self.restarts += 1

    def stop(self) -> None:
        _kill(self.proc, signal.SIGTERM)
        shutil.rmtree(self.dir, ignore_errors=True)


def ferretdb_binary() -> str:
    """The FerretDB wrapper that `scripts/services up mongodb` builds and caches."""
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    found = sorted(glob.glob(os.path.join(cache, "chat-services", "ferretdb-*", "ferretdb")))
    return found[-1] if found else ""


class FerretProcess:
    """A private FerretDB (MongoDB wire protocol, SQLite files in its own temp
    dir) that a test may kill and restart on the same port with the same data."""

    def __init__(self) -> None:
        self.binary = require_tool("FerretDB (scripts/services up mongodb)", ferretdb_binary())
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix="chat-rel-ferret-")
        self.proc: subprocess.Popen | None = None

    @property
    def uri(self) -> str:
        return f"mongodb://127.0.0.1:{self.port}/chat"

    @property
    def data_dir(self) -> str:
        """Its -sqlite-url directory: FERRETDB_SQLITE_DIR for a server using it."""
        return f"{self.dir}/data"

    def ping(self) -> bool:
        from pymongo import MongoClient
        from pymongo.errors import PyMongoError

        client = MongoClient(self.uri, serverSelectionTimeoutMS=800, connectTimeoutMS=800)
        try:
            client.admin.command("ping")
            return True
        except PyMongoError:
            return False
        finally:
            client.close()

    def start(self, timeout: float = 30.0) -> FerretProcess:
        log = open(Path(self.dir) / "ferretdb.log", "ab")
        self.proc = subprocess.Popen(
            [self.binary, "-listen-addr", f"127.0.0.1:{self.port}", "-sqlite-url", f"file:{self.data_dir}/", "-log-level", "warn"],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        if not wait_until(self.ping, timeout, step=0.2):
            raise RuntimeError(f"private FerretDB on {self.port} did not answer within {timeout}s")
        return self

    def kill(self) -> None:
        _kill(self.proc)

    def stop(self) -> None:
        _kill(self.proc, signal.SIGTERM)
        shutil.rmtree(self.dir, ignore_errors=True)


def server_env(name: str, redis_url: str, **extra: str) -> dict[str, str]:
    """The e2e server environment (tests/e2e/conftest.py) with REDIS_URL on a
    private Redis and a fresh, migrated database of its own."""
    env = server_base_env()
    env["REDIS_URL"] = redis_url
    env.update(extra)
    env["DATABASE_URL"] = fresh_database(env, f"chat_rel_{name}_{os.getpid()}")
    return env


_template: dict[str, str] = {}


def fresh_database(env: dict[str, str], name: str) -> str:
    """A new database for one test's servers, copied from one migrated per
    session (tests.e2e.harness.prepare_database): `migrate` once, not per test.
    PostgreSQL (DATABASE_URL): CREATE DATABASE ... TEMPLATE; else a SQLite copy."""
    base = os.environ.get("DATABASE_URL", "")
    if "url" not in _template:
        _template["url"] = prepare_database(env, f"chat_rel_template_{os.getpid()}")["DATABASE_URL"]
    template = _template["url"]
    # Every copy starts its ids where the template's end; the Cassandra and
    # MongoDB stores outlive it (one keyspace/database per run), so each copy's
    # users and channels get ids of their own, or their streams (`ch:{id}`,
    # `conv_{a}_{b}`) would meet an earlier test's messages.
    _template["copies"] = _template.get("copies", 0) + 1
    first_id = _template["copies"] * 10_000_000
    if base.startswith(("postgres://", "postgresql://")):
        import psycopg

        url = create_database(base, name, template=urlparse(template).path.lstrip("/"))
        with psycopg.connect(url, autocommit=True) as conn:
            for table in ID_TABLES:
                conn.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), {first_id})")
        return url
    import sqlite3

    source = template.removeprefix("sqlite:///")
    target = os.path.join(tempfile.mkdtemp(prefix="chat-rel-db-"), f"{name}.sqlite3")
    src, dst = sqlite3.connect(source), sqlite3.connect(target)
    try:
        src.backup(dst)
        for table in ID_TABLES:
            if dst.execute("UPDATE sqlite_sequence SET seq = ? WHERE name = ?", (first_id, table)).rowcount == 0:
                dst.execute("INSERT INTO sqlite_sequence (name, seq) VALUES (?, ?)", (table, first_id))
        dst.commit()
    finally:
        src.close()
        dst.close()
    return "sqlite:///" + target


# The tables whose ids name message-store streams (users: conversations; channels).
ID_TABLES = ("accounts_user", "workspace_chat_channel", "workspace_chat_workspace")


def health(server: Server, timeout: float = 15.0) -> tuple[int, dict[str, Any]]:
    try:
        r = httpx.get(server.base + "/healthz", timeout=timeout)
    except httpx.HTTPError as exc:
        return 0, {"error": repr(exc)}
    try:
        return r.status_code, r.json()
    except ValueError:
        return r.status_code, {"body": r.text[:200]}


def wait_health(server: Server, status: int, timeout: float) -> tuple[int, dict[str, Any]]:
    """Poll /healthz until it answers `status`; the last answer either way."""
    deadline = time.monotonic() + timeout
    last = health(server)
    while last[0] != status and time.monotonic() < deadline:
        time.sleep(0.25)
        last = health(server)
    return last


def assert_alive(server: Server) -> None:
    assert server.proc is not None and server.proc.poll() is None, f"the server died:\n{server.log()}"


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def percentile(values: Iterable[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q / 100 * len(ordered)) - 1))]


def layer_leftovers(redis_port: int) -> dict[str, int]:
    """What connections leave behind in Redis once every client has closed:
    live presence entries (presence.services, scored by expiry) and members of
    channels_redis groups (chat.channel.*, chat.user.*, chat.session.*). Both
    must drain to 0: a consumer that never ran its disconnect leaves them."""
    import redis

    client = redis.Redis(host="127.0.0.1", port=redis_port, socket_timeout=5)
    now = time.time()
    presence = sum(client.zcount(key, f"({now}", "+inf") for key in client.scan_iter("presence:*", count=500))
    groups = sum(client.zcard(key) for key in client.scan_iter("asgi:group:*", count=500))
    return {"presence": presence, "group_members": groups}


def app_crashes(*servers: Server) -> int:
    """"Exception inside application" lines in the servers' logs: a consumer
    that died instead of answering or closing cleanly."""
    return sum(s.log_path.read_text(errors="replace").count("Exception inside application") for s in servers)
