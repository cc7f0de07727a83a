"""End-to-end harness: real daphne processes (python -m chatsite.server) on
loopback, driven over HTTP (httpx) and WebSocket (websockets)."""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Collection
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import httpx
import websockets

from tests.schemas import check_chat_event

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "e2e-password-42"
_names = itertools.count(1)
# What every test server runs with beside its services: production mode, a
# rate limit that load tests do not trip, quiet logs, fast password hashing.
SERVER_SETTINGS = {
    "DJANGO_DEBUG": "0",
    "CHAT_RATE_LIMIT_MESSAGES": "1000",
    "CHAT_RATE_LIMIT_WINDOW": "1",
    "LOG_LEVEL": "WARNING",
    "CHAT_TEST_FAST_PASSWORD_HASHER": "1",
    "CHAT_REGISTER_RATE": "100000/hour",
}


def server_base_env(*, drop: tuple[str, ...] = ()) -> dict[str, str]:
    """This process's environment without pytest's variables (and those
    starting with `drop`), with SERVER_SETTINGS."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", *drop))}
    env.update(SERVER_SETTINGS)
    return env


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# PostgreSQL databases this test session created (server URL, name): dropped
# when the session ends (tests/conftest.py pytest_sessionfinish), so runs do
# not leave one database per run behind.
CREATED_DATABASES: list[tuple[str, str]] = []


def create_database(url: str, name: str, template: str | None = None) -> str:
    """A new PostgreSQL database `name` on the server of `url` (replacing one of
    that name), remembered for drop_created_databases; returns its URL."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else ""))
    CREATED_DATABASES.append((url, name))
    return urlparse(url)._replace(path=f"/{name}").geturl()


def drop_created_databases() -> None:
    import psycopg

    while CREATED_DATABASES:
        url, name = CREATED_DATABASES.pop()
        try:
            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        except psycopg.Error as exc:
            print(f"could not drop test database {name}: {exc}", file=sys.stderr)


def prepare_database(base_env: dict[str, str], name: str) -> dict[str, str]:
    """A fresh database for the server processes (not pytest's test DB):
    a new PostgreSQL database when DATABASE_URL is PostgreSQL, else a temp
    SQLite file. Migrated with `manage.py migrate`."""
    env = dict(base_env)
    url = env.get("DATABASE_URL", "")
    if url.startswith(("postgres://", "postgresql://")):
        env["DATABASE_URL"] = create_database(url, name)
    else:
        env["DATABASE_URL"] = "sqlite:///" + os.path.join(tempfile.mkdtemp(prefix="chat-e2e-"), f"{name}.sqlite3")
    migrate(env)
    return env


def migrate(env: dict[str, str]) -> None:
    """`manage.py migrate` under `env`: the relational schema and (its
    post_migrate hook) the configured message store's schema; then, on
    FerretDB with SQLite, the operator's index (scripts/ferretdb_index.py)."""
    subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v0"], cwd=ROOT, env=env, check=True)
    # The MongoDB store is in the configured store's chain (messagestore._chain).
    if env.get("FERRETDB_SQLITE_DIR") and env.get("MONGODB_URI") and env.get("CHAT_MESSAGE_STORE") in ("mongodb", "cassandra"):
        from tests import ferretdb

        ferretdb.index(env["FERRETDB_SQLITE_DIR"], ferretdb.mongodb_database(env["MONGODB_URI"]))


SCHEMA_VIOLATION = "event schema violation"


def nginx_backends() -> int:
    """CHAT_E2E_VIA_NGINX=1 (or N): every Server runs behind nginx
    (scripts/services up nginx, deploy/nginx-chat-proxy.conf's rules), with
    N daphne processes behind it (default 1), and the clients talk to nginx.
    0 or unset: the clients talk to daphne itself."""
    value = os.environ.get("CHAT_E2E_VIA_NGINX", "").strip().lower()
    if value in ("", "0", "no", "false"):
        return 0
    return 1 if value in ("yes", "true") else max(1, int(value))


_static: dict[str, str] = {}


def collected_static() -> str:
    """`manage.py collectstatic` into a folder of this test run's (once):
    what nginx serves at /static/ in front of the servers."""
    if "root" not in _static:
        root = tempfile.mkdtemp(prefix="chat-e2e-static-")
        env = {**os.environ, "CHAT_STATIC_ROOT": root}
        subprocess.run([sys.executable, "manage.py", "collectstatic", "--noinput", "-v0"], cwd=ROOT, env=env, check=True)
        _static["root"] = root
    return _static["root"]


class Nginx:
    """nginx in front of daphne processes on loopback, started and stopped
    through the project's script (scripts/services up/down nginx), with its
    state (config, logs, pidfile) in a folder of its own."""

    def __init__(self, upstream_ports: list[int], *, fail_timeout: int = 10, static_root: str | None = None):
        self.port = free_port()
        self.upstream_ports = upstream_ports
        self.state_dir = tempfile.mkdtemp(prefix="chat-e2e-nginx-")
        self.fail_timeout = fail_timeout
        self.static_root = static_root
        self.base = f"http://127.0.0.1:{self.port}"
        self.ws_base = f"ws://127.0.0.1:{self.port}"

    def _script(self, command: str) -> subprocess.CompletedProcess:
        env = {
            **os.environ,
            "CHAT_SERVICES_DIR": self.state_dir,
            "NGINX_PORT": str(self.port),
            "NGINX_UPSTREAMS": ",".join(f"127.0.0.1:{port}" for port in self.upstream_ports),
            "NGINX_FAIL_TIMEOUT": str(self.fail_timeout),
        }
        if self.static_root:
            env["NGINX_STATIC_ROOT"] = self.static_root
        return subprocess.run([str(ROOT / "scripts" / "services"), command, "nginx"], env=env, capture_output=True, text=True)

    def start(self) -> Nginx:
        done = self._script("up")
        if done.returncode != 0:
            raise RuntimeError(f"scripts/services up nginx failed:\n{done.stderr[-3000:]}")
        return self

    def stop(self) -> None:
        self._script("down")

    @property
    def error_log_path(self) -> Path:
        return Path(self.state_dir) / f"nginx-{self.port}" / "error.log"

    def error_log(self) -> str:
        try:
            return self.error_log_path.read_text(errors="replace")
        except OSError:
            return ""


class Server:
    """One chat server as the clients see it: a daphne process, or with
    CHAT_E2E_VIA_NGINX nginx in front of N of them (`base`, `ws_base` and
    `port` are then nginx's; `direct_base` is the first process's own, for
    what only a process answers, like /metrics)."""

    def __init__(self, env: dict[str, str], *, log_name: str = "daphne", backends: int | None = None, args: tuple[str, ...] = ()):
        self.args = args  # more launcher options (chatsite.server --workers 2)
        # Every event the server sends is checked against its schema
        # (wire.schema); stop() fails if one did not match.
        self.env = {"CHAT_CHECK_EVENTS": "1", **env}
        # backends: 0, daphne alone; N, nginx in front of N processes; None, as CHAT_E2E_VIA_NGINX says.
        from_env = backends is None
        backends = nginx_backends() if backends is None else backends
        self.backend_ports = [free_port() for _ in range(max(1, backends))]
        log_dir = Path(tempfile.mkdtemp(prefix="chat-e2e-log-"))
        self.log_path = log_dir / f"{log_name}.log"
        self.log_paths = [self.log_path] + [log_dir / f"{log_name}-{i + 1}.log" for i in range(1, len(self.backend_ports))]
        self.nginx: Nginx | None = None
        if backends:
            # Production shape: the processes believe nginx's X-Forwarded-*.
            self.env.setdefault("CHAT_TRUST_PROXY", "1")
            # The e2e suite through nginx gets static files as production does.
            self.nginx = Nginx(self.backend_ports, static_root=collected_static() if from_env else None)
            self.port = self.nginx.port
        else:
            self.port = self.backend_ports[0]
        self.base = f"http://127.0.0.1:{self.port}"
        self.ws_base = f"ws://127.0.0.1:{self.port}"
        self.direct_base = f"http://127.0.0.1:{self.backend_ports[0]}"
        self.procs: list[subprocess.Popen] = []
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 30.0) -> Server:
        # start() again after stop(): the same ports, new processes.
        self.procs, self.proc = [], None
        for port, log_path in zip(self.backend_ports, self.log_paths, strict=True):
            log = open(log_path, "ab")
            proc = subprocess.Popen(
                [sys.executable, "-m", "chatsite.server", "--bind", "127.0.0.1", "--port", str(port), *self.args],
                cwd=ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
            self.procs.append(proc)
            self.proc = self.proc or proc
        for port, proc in zip(self.backend_ports, self.procs, strict=True):
            self._wait_healthy(f"http://127.0.0.1:{port}", proc, timeout)
        if self.nginx:
            self.nginx.start()
            self._wait_healthy(self.base, self.procs[0], timeout)
        return self

    def _wait_healthy(self, base: str, proc: subprocess.Popen, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"daphne exited with {proc.returncode}:\n{self.log()}")
            try:
                if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"{base} did not answer /healthz in {timeout}s:\n{self.log()}")

    def stop(self) -> None:
        if self.nginx:
            self.nginx.stop()
        for proc in self.procs:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        self.assert_schemas_held()

    def assert_schemas_held(self) -> None:
        bad = []
        for path in self.log_paths:
            try:
                full = path.read_text(errors="replace")
            except OSError:
                continue
            bad += [line for line in full.splitlines() if SCHEMA_VIOLATION in line]
        assert not bad, f"the server sent events that do not match their schema: {bad[:5]}"

    def log(self) -> str:
        out = []
        for path in self.log_paths:
            try:
                out.append(path.read_text(errors="replace")[-4000:])
            except OSError:
                pass
        if self.nginx:
            out.append("nginx error log:\n" + self.nginx.error_log()[-2000:])
        return "\n".join(out)


class Http:
    """A logged-in (or not) HTTP session with CSRF handled."""

    def __init__(self, server: Server):
        self.server = server
        self.client = httpx.Client(base_url=server.base, headers={"Origin": server.base}, timeout=10)
        self.client.get("/api/auth/csrf/")

    def _headers(self) -> dict[str, str]:
        return {"X-CSRFToken": self.client.cookies.get("csrftoken", "")}

    def get(self, path: str, **kw) -> httpx.Response:
        return self.client.get(path, **kw)

    def post(self, path: str, body: Any = None, **kw) -> httpx.Response:
        return self.client.post(path, json=body, headers=self._headers(), **kw)

    def patch(self, path: str, body: Any = None, **kw) -> httpx.Response:
        return self.client.patch(path, json=body, headers=self._headers(), **kw)

    def put(self, path: str, body: Any = None, **kw) -> httpx.Response:
        return self.client.put(path, json=body, headers=self._headers(), **kw)

    def delete(self, path: str, **kw) -> httpx.Response:
        return self.client.delete(path, headers=self._headers(), **kw)

    @property
    def session_id(self) -> str | None:
        return self.client.cookies.get("sessionid")


class WS:
    """A websockets client that checks every event it receives against the
    protocol schema and lets a test wait for a type, keeping the others."""

    def __init__(self, conn: websockets.ClientConnection, check=check_chat_event):
        self.conn = conn
        self.check = check
        self.backlog: list[dict[str, Any]] = []
        # (channelId, message id, whether it was a direct answer) of every
        # message this connection was given, in arrival order: catch-up
        # pages, broadcasts and its own answers.
        self.arrivals: list[tuple[int, int, bool]] = []

    async def send(self, event: dict[str, Any] | str) -> None:
        await self.conn.send(event if isinstance(event, str) else json.dumps(event))

    async def recv(self, timeout: float = 5.0) -> dict[str, Any]:
        if self.backlog:
            return self.backlog.pop(0)
        return await self._read(timeout)

    async def _read(self, timeout: float) -> dict[str, Any]:
        raw = await asyncio.wait_for(self.conn.recv(), timeout)
        event = json.loads(raw)
        self.check(event)
        if event.get("type") == "new_message":
            self.arrivals.append((event["channelId"], event["message"]["id"], "requestId" in event))
        elif event.get("type") == "joined_channel":
            self.arrivals += [(event["channelId"], m["id"], False) for m in event["missed"]]
        return event

    def order_violations(self, acknowledgments: Collection[int] = ()) -> list[tuple[int, int, int]]:
        """(channel, id, the id before it) wherever this connection was given a
        channel's message at or below one it already had: PROTOCOL.md wants
        each channel's messages once and in id order on each connection.
        `acknowledgments`: ids whose direct answer acknowledged a retried
        clientId (the stored message again, by design), left out."""
        newest: dict[int, int] = {}
        bad = []
        for channel, message_id, answer in self.arrivals:
            if answer and message_id in acknowledgments:
                continue
            if message_id <= newest.get(channel, 0):
                bad.append((channel, message_id, newest[channel]))
            newest[channel] = max(newest.get(channel, 0), message_id)
        return bad

    async def expect(self, type_: str, timeout: float = 5.0, **match: Any) -> dict[str, Any]:
        """The first event of that type (and fields), leaving others queued."""
        for i, event in enumerate(self.backlog):
            if event["type"] == type_ and all(event.get(k) == v for k, v in match.items()):
                return self.backlog.pop(i)
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no {type_} {match} within {timeout}s; got {self.backlog}")
            try:
                event = await self._read(left)
            except TimeoutError:
                raise AssertionError(f"no {type_} {match} within {timeout}s; got {self.backlog}") from None
            if event["type"] == type_ and all(event.get(k) == v for k, v in match.items()):
                return event
            self.backlog.append(event)

    async def expect_none(self, type_: str, wait: float = 0.5, **match: Any) -> None:
        deadline = time.monotonic() + wait
        while (left := deadline - time.monotonic()) > 0:
            try:
                self.backlog.append(await self._read(left))
            except TimeoutError:
                break
        found = [e for e in self.backlog if e["type"] == type_ and all(e.get(k) == v for k, v in match.items())]
        assert not found, f"unexpected {found}"

    async def request(self, event: dict[str, Any], answer: str, timeout: float = 5.0) -> dict[str, Any]:
        """Send with a fresh requestId; the direct answer (or error) carries it."""
        request_id = f"r{next(_names)}"
        await self.send({**event, "requestId": request_id})
        for i, e in enumerate(self.backlog):
            if e.get("requestId") == request_id:
                return self.backlog.pop(i)
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            e = await self._read(left)
            if e.get("requestId") == request_id:
                assert e["type"] in (answer, "error"), e
                return e
            self.backlog.append(e)
        raise AssertionError(f"no answer to {event} within {timeout}s")

    async def close(self) -> None:
        await self.conn.close()


class Person:
    """A registered user with an HTTP session and any number of sockets."""

    def __init__(self, server: Server, username: str | None = None, display_name: str | None = None):
        self.server = server
        self.username = username or f"u{next(_names)}_{os.getpid()}"
        self.http = Http(server)
        r = self.http.post(
            "/api/auth/register/", {"username": self.username, "password": PASSWORD, "displayName": display_name or self.username.title()}
        )
        assert r.status_code == 201, r.text
        self.id: int = r.json()["id"]
        self.sockets: list[WS] = []

    def relogin(self, server: Server) -> Person:
        """The same user's session, used against another server process."""
        other = object.__new__(Person)
        other.server, other.username, other.id, other.sockets = server, self.username, self.id, []
        other.http = Http(server)
        assert other.http.post("/api/auth/login/", {"username": self.username, "password": PASSWORD}).status_code == 200
        return other

    async def connect(self, path: str = "/ws/chat/", *, expect_connected: bool = True) -> WS:
        conn = await websockets.connect(
            self.server.ws_base + path,
            additional_headers={"Cookie": f"sessionid={self.http.session_id}", "Origin": self.server.base},
            open_timeout=10,
        )
        if "messagepal" in path:
            from tests.pal_schemas import check_pal_event

            ws = WS(conn, check_pal_event)
        else:
            ws = WS(conn)
        self.sockets.append(ws)
        if expect_connected:
            hello = await ws.expect("connected")
            assert hello["userId"] == self.id and hello["username"] == self.username
        return ws

    async def close_all(self) -> None:
        for ws in self.sockets:
            await ws.close()
        self.sockets.clear()


def share_workspace(admin: Person, *people: Person) -> int:
    """A workspace of `admin` with `people` as students, through the HTTP
    API: MessagePal connects only people who share a workspace (PROTOCOL.md
    part 2, "Who can reach whom"). Its id."""
    r = admin.http.post("/api/workspaces/", {"name": f"{admin.username}'s class"})
    assert r.status_code == 201, r.text
    workspace_id: int = r.json()["id"]
    for person in people:
        r = admin.http.post(f"/api/workspaces/{workspace_id}/members/", {"username": person.username, "role": "student"})
        assert r.status_code == 201, r.text
    return workspace_id
