"""Services the Redis Sentinel and PostgreSQL fault tests break: their own,
never the shared ones (Redis 6379, PostgreSQL 5433).

- `SentinelSet`: a primary, a replica and three Sentinels started by
  `scripts/services up redis-sentinel` on free loopback ports in a temp state
  dir (the script's REDIS_SENTINEL_* and CHAT_SERVICES_DIR overrides), so the
  test also proves the script.
- `PostgresInstance`: a throwaway PostgreSQL cluster (initdb from the Debian
  binaries into a temp dir, as scripts/services does, run as user postgres)
  on a free port, that a test may stop and start again.

Both need the Debian packages `scripts/services up redis postgres` installs;
missing, the test fails in CI and skips elsewhere (tests.reliability.faults).
"""

from __future__ import annotations

import glob
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.harness import ROOT, free_port
from tests.reliability.faults import REDIS_SERVER, require_tool, wait_until

SERVICES = ROOT / "scripts" / "services"


def _pid(path: Path) -> int | None:
    try:
        pid = int(path.read_text().split()[0])
        os.kill(pid, 0)
        return pid
    except (OSError, ValueError, IndexError):
        return None


class SentinelSet:
    MASTER = "chat"

    def __init__(self, down_after_ms: int = 1000, failover_timeout_ms: int = 3000) -> None:
        require_tool("redis-server", REDIS_SERVER)
        require_tool("redis-cli", shutil.which("redis-cli") or "")
        self.dir = tempfile.mkdtemp(prefix="chat-sentinel-")
        self.primary_port, self.replica_port = free_port(), free_port()
        self.sentinel_ports = [free_port() for _ in range(3)]
        self.down_after_ms = down_after_ms
        self.failover_timeout_ms = failover_timeout_ms
        self.env: dict[str, str] = {}

    def _script_env(self) -> dict[str, str]:
        return {
            **os.environ,
            "CHAT_SERVICES_DIR": self.dir,
            "REDIS_SENTINEL_MASTER": self.MASTER,
            "REDIS_SENTINEL_PRIMARY_PORT": str(self.primary_port),
            "REDIS_SENTINEL_REPLICA_PORT": str(self.replica_port),
            "REDIS_SENTINEL_PORTS": " ".join(map(str, self.sentinel_ports)),
            "REDIS_SENTINEL_DOWN_AFTER_MS": str(self.down_after_ms),
            "REDIS_SENTINEL_FAILOVER_TIMEOUT_MS": str(self.failover_timeout_ms),
        }

    def start(self) -> SentinelSet:
        started = time.monotonic()
        out = subprocess.run([str(SERVICES), "up", "redis-sentinel"], env=self._script_env(), capture_output=True, text=True, timeout=120)
        if out.returncode != 0:
            raise RuntimeError(f"scripts/services up redis-sentinel failed:\n{out.stderr[-3000:]}")
        self.env = dict(line.split("=", 1) for line in out.stdout.splitlines() if "=" in line)
        assert self.env["REDIS_SENTINELS"] == ",".join(f"127.0.0.1:{p}" for p in self.sentinel_ports), out.stdout
        assert self.env["REDIS_SENTINEL_MASTER"] == self.MASTER
        self.start_seconds = time.monotonic() - started
        return self

    def stop(self) -> None:
        subprocess.run([str(SERVICES), "down", "redis-sentinel"], env=self._script_env(), capture_output=True, timeout=120)
        for pidfile in glob.glob(f"{self.dir}/redis-sentinel/*/*.pid"):  # anything the script left
            pid = _pid(Path(pidfile))
            if pid:
                os.kill(pid, signal.SIGKILL)
        shutil.rmtree(self.dir, ignore_errors=True)

    # -- views -------------------------------------------------------------

    def client(self, port: int) -> Any:
        import redis

        return redis.Redis(host="127.0.0.1", port=port, socket_timeout=1, socket_connect_timeout=1)

    def primary_port_seen_by(self, sentinel_port: int) -> int | None:
        import redis

        try:
            addr = self.client(sentinel_port).execute_command("SENTINEL", "get-master-addr-by-name", self.MASTER)
        except redis.RedisError:
            return None
        return int(addr[1]) if addr else None

    def role(self, port: int) -> str:
        import redis

        try:
            return self.client(port).execute_command("ROLE")[0].decode()
        except redis.RedisError:
            return "down"

    def _pidfile(self, port: int) -> Path:
        node = "primary" if port == self.primary_port else "replica"
        return Path(self.dir) / "redis-sentinel" / node / "redis.pid"

    # -- faults ------------------------------------------------------------

    def kill_primary(self) -> int:
        """SIGKILL the data node the Sentinels call primary; its port."""
        port = self.primary_port_seen_by(self.sentinel_ports[0])
        assert port in (self.primary_port, self.replica_port), port
        pid = _pid(self._pidfile(port))
        assert pid, f"no live pid for the primary on {port}"
        os.kill(pid, signal.SIGKILL)
        # Its port, not its pid: a container's init may leave the zombie unreaped.
        assert wait_until(lambda: self.role(port) == "down", 5), "primary survived SIGKILL"
        self.killed_port = port
        return port

    def wait_promoted(self, old_port: int, timeout: float) -> float | None:
        """Seconds until every Sentinel names the other node and it answers as
        master; None if not within `timeout`."""
        started = time.monotonic()
        other = self.replica_port if old_port == self.primary_port else self.primary_port

        def done() -> bool:
            return all(self.primary_port_seen_by(p) == other for p in self.sentinel_ports) and self.role(other) == "master"

        return time.monotonic() - started if wait_until(done, timeout, step=0.05) else None


# ------------------------------------------------------------------ PostgreSQL


def pg_bindir() -> str:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]) if p.split("/")[4].isdigit() else 0)
    return os.path.dirname(found[-1]) if found else ""


class PostgresInstance:
    """A private PostgreSQL cluster owned by user postgres, with role and
    database `chat` (password `chat`); `url` is its DATABASE_URL."""

    def __init__(self) -> None:
        self.bin = require_tool("PostgreSQL (scripts/services up postgres)", pg_bindir())
        if os.geteuid() == 0:
            self.runas = ["runuser", "-u", "postgres", "--"]
        else:
            self.runas = []
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix="chat-pg-", dir="/var/tmp" if os.geteuid() == 0 else None)
        self.data = f"{self.dir}/data"
        self.log = f"{self.dir}/postgres.log"
        self.url = f"postgres://chat:chat@127.0.0.1:{self.port}/chat"
        if self.runas:
            shutil.chown(self.dir, "postgres", "postgres")

    def _run(self, *args: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess:
        return subprocess.run([*self.runas, *args], capture_output=True, text=True, timeout=timeout, check=check)

    def create(self) -> PostgresInstance:
        pwfile = f"{self.dir}/pw"
        Path(pwfile).write_text("postgres\n")
        if self.runas:
            shutil.chown(pwfile, "postgres")
        self._run(f"{self.bin}/initdb", "-D", self.data, "-U", "postgres", f"--pwfile={pwfile}", "--no-sync",
                  "--encoding=UTF8", "--locale=C.UTF-8", "--auth-local=trust", "--auth-host=scram-sha-256")
        with open(f"{self.data}/postgresql.conf", "a") as conf:
            conf.write(f"\nlisten_addresses = '127.0.0.1'\nport = {self.port}\nunix_socket_directories = '{self.dir}'\n"
                       "fsync = off\nsynchronous_commit = off\nfull_page_writes = off\nmax_connections = 100\n")
        self.start()
        self._run(f"{self.bin}/psql", "-XAtq", "-v", "ON_ERROR_STOP=1", "-h", self.dir, "-p", str(self.port), "-d", "postgres",
                  "-c", "CREATE ROLE chat LOGIN CREATEDB PASSWORD 'chat'", "-c", "CREATE DATABASE chat OWNER chat")
        return self

    def start(self) -> None:
        out = self._run(f"{self.bin}/pg_ctl", "-D", self.data, "-l", self.log, "-w", "-t", "60", "start", check=False)
        if out.returncode != 0:
            raise RuntimeError(f"pg_ctl start failed: {out.stderr}\n{Path(self.log).read_text()[-2000:]}")

    def stop(self, mode: str = "fast") -> None:
        """`fast`: a clean shutdown that disconnects every session (an
        operator's restart); `immediate`: like a crash (recovery on start)."""
        self._run(f"{self.bin}/pg_ctl", "-D", self.data, "-m", mode, "-w", "-t", "60", "stop", check=False)

    def ready(self) -> bool:
        return self._run(f"{self.bin}/pg_isready", "-q", "-h", "127.0.0.1", "-p", str(self.port), check=False).returncode == 0

    def destroy(self) -> None:
        self.stop("immediate")
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def sentinel_set():
    s = SentinelSet().start()
    yield s
    s.stop()


@pytest.fixture
def private_postgres():
    pg = PostgresInstance().create()
    yield pg
    pg.destroy()


# ------------------------------------------------------------------ figures

ARTIFACTS = ROOT / "test-artifacts" / "cluster"


def write_figures(name: str, figures: dict[str, Any]) -> Path:
    """Print a fault test's figures and keep them in test-artifacts/cluster/
    (docs/scaling.md quotes them)."""
    import datetime
    import json

    print(f"\n[{name}] " + ", ".join(f"{k}={v}" for k, v in figures.items()), flush=True)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=False).stdout.strip()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.json"
    entry = {"test": name, "when": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"), "commit": commit, "figures": figures}
    path.write_text(json.dumps(entry, indent=2, default=str) + "\n")
    return path
