"""Fault-injection helpers for tests/reliability (issue 8, "Faults" and "Churn").

Everything a test breaks is its own: a private `redis-server` and a private
FerretDB on free loopback ports (never the shared services on 6379/5433,
which other runs use), and a fresh database per test. A test may kill and
restart them; the daphne processes under test (tests.e2e.harness.Server)
are only ever stopped at teardown.

Also here: a client that tracks what the server acknowledged and what it
received (the ledger the tests check against), a raw WebSocket that stops
reading, RSS sampling and percentile figures.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import glob
import itertools
import math
import os
import shutil
import signal
import socket
import struct
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
from tests.e2e.harness import WS, Person, Server, create_database, free_port, prepare_database

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
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    env.update(
        {
            "DJANGO_DEBUG": "0",
            "CHAT_RATE_LIMIT_MESSAGES": "1000",
            "CHAT_RATE_LIMIT_WINDOW": "1",
            "LOG_LEVEL": "WARNING",
            "CHAT_TEST_FAST_PASSWORD_HASHER": "1",
            "CHAT_REGISTER_RATE": "100000/hour",
            "REDIS_URL": redis_url,
        }
    )
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


def channel_history(person: Person, channel_id: int, page: int = 100, max_pages: int = 1000) -> list[dict[str, Any]]:
    """Every message of a channel, oldest first, through HTTP paging from after=0."""
    out: list[dict[str, Any]] = []
    after = 0
    for _ in range(max_pages):
        r = person.http.get(f"/api/channels/{channel_id}/messages/", params={"after": after, "limit": page})
        assert r.status_code == 200, (r.status_code, r.text[:300])
        body = r.json()
        out.extend(body["results"])
        if not body["hasMore"] or not body["results"]:
            return out
        after = body["results"][-1]["id"]
    raise AssertionError(f"history of channel {channel_id} longer than {max_pages} pages")


def ledger_check(history: list[dict[str, Any]], acked: dict[tuple[int, str], int]) -> dict[str, Any]:
    """The gap detector. `acked` maps (authorId, clientId) to the id the server
    acknowledged. Returns figures; the caller asserts on them."""
    ids = [m["id"] for m in history]
    by_key: dict[tuple[int, str], list[int]] = {}
    for m in history:
        if m.get("clientId"):
            by_key.setdefault((m["authorId"], m["clientId"]), []).append(m["id"])
    gaps = sorted(k for k in acked if k not in by_key)
    duplicates = sorted(k for k, v in by_key.items() if len(v) > 1)
    moved = sorted(k for k, v in acked.items() if k in by_key and by_key[k][0] != v)
    unordered = sum(1 for a, b in itertools.pairwise(ids) if b <= a)
    repeated_ids = len(ids) - len(set(ids))
    return {
        "messages": len(history),
        "acknowledged": len(acked),
        "gaps": len(gaps),
        "gap_examples": gaps[:5],
        "duplicates": len(duplicates),
        "duplicate_examples": duplicates[:5],
        "id_changed": len(moved),
        "not_increasing": unordered,
        "repeated_ids": repeated_ids,
    }


# ------------------------------------------------------------------ clients


class ChatClient:
    """One person in one channel who reconnects after faults, with a ledger:
    what the server acknowledged (direct `new_message` answers, by clientId),
    every message id received live or by catch-up, and the sends still to
    retry with their original clientId."""

    def __init__(self, person: Person, channel_id: int, name: str, *, resume_from: str = "newest"):
        # resume_from: "newest" rejoins with afterId = the newest id seen,
        # own acknowledged messages included (PROTOCOL.md's "last seen
        # message"); "stream" = the newest id of other people's messages
        # received live or by catch-up, own answers left out.
        assert resume_from in ("newest", "stream")
        self.resume_from = resume_from
        self.person = person
        self.channel_id = channel_id
        self.name = name
        self.ws: WS | None = None
        self.seq = 0
        self.acked: dict[str, dict[str, Any]] = {}  # clientId -> message
        self.pending: dict[str, str] = {}  # clientId -> content, not acknowledged yet
        self.received: list[int] = []  # ids of other people's messages, live or catch-up, in arrival order
        self.connects = 0
        self.sockets: list[WS] = []  # every connection it made, for the per-connection order check
        # Ids answered to a retried clientId: an acknowledgment of a message
        # stored earlier (PROTOCOL.md's safe retry), not a new delivery.
        self.replayed: set[int] = set()
        self.errors: dict[str, int] = {}
        # (kind, detail) in order: ("join", afterId), ("missed", ids),
        # ("recv", id), ("ack", id), ("drop", None): explains a gap.
        self.timeline: list[tuple[str, Any]] = []

    @property
    def last_seen(self) -> int:
        ids = list(self.received)
        if self.resume_from == "newest":
            ids += [m["id"] for m in self.acked.values()]
        return max(ids, default=0)

    def _note(self, what: str) -> None:
        self.errors[what] = self.errors.get(what, 0) + 1

    async def connect(self, after_id: int | None = None) -> dict[str, Any]:
        """A new websocket, joined with afterId (default: the newest id seen);
        every catch-up page is recorded."""
        if self.ws is not None:
            await self.drop()
        self.ws = await self.person.connect()
        self.person.sockets.remove(self.ws)  # closed by drop(), not Person.close_all()
        self.sockets.append(self.ws)
        self.connects += 1
        # afterId must be >= 1 over the WebSocket (HTTP `after` accepts 0);
        # ids are time-ordered and far above 1, so 1 means "everything".
        after = max(1, self.last_seen if after_id is None else after_id)
        pages = 0
        while True:
            answer = await self.ws.request({"type": "join_channel", "channelId": self.channel_id, "afterId": after}, "joined_channel", timeout=15)
            assert answer["type"] == "joined_channel", answer
            missed = answer["missed"]
            assert all(m["id"] > after for m in missed), f"catch-up returned ids at or below afterId {after}"
            others = [m["id"] for m in missed if m["authorId"] != self.person.id]
            self.received.extend(others)
            self.timeline += [("join", after), ("missed", others)]
            # Own messages found in catch-up that were never acknowledged: the
            # server stored them; a retry with the same clientId must return them.
            pages += 1
            if not answer["hasMore"] or not missed or pages > 100:
                return answer
            after = missed[-1]["id"]

    async def drop(self) -> None:
        ws, self.ws = self.ws, None
        if ws is not None:
            self.drain(ws)
            self.timeline.append(("drop", None))
            with contextlib.suppress(TimeoutError, OSError, websockets.WebSocketException):
                await asyncio.wait_for(ws.close(), 5)

    def drain(self, ws: WS | None = None) -> None:
        """Move live `new_message` broadcasts out of the backlog into the ledger."""
        ws = ws or self.ws
        if ws is None:
            return
        keep = []
        for e in ws.backlog:
            if e["type"] == "new_message" and "requestId" not in e and e["channelId"] == self.channel_id:
                self.received.append(e["message"]["id"])
                self.timeline.append(("recv", e["message"]["id"]))
            else:
                keep.append(e)
        ws.backlog[:] = keep

    async def pump(self, seconds: float) -> None:
        """Read live events for a while (no send)."""
        if self.ws is None:
            return
        try:
            await self.ws.expect("__never__", timeout=seconds)
        except (AssertionError, websockets.ConnectionClosed):
            pass
        self.drain()

    def order_violations(self) -> list[tuple[int, int, int]]:
        """Over every connection it made: a message given twice or out of id
        order (answers to retried sends left out: they acknowledge)."""
        return [bad for ws in self.sockets for bad in ws.order_violations(acknowledgments=self.replayed)]

    def new_client_id(self) -> tuple[str, str]:
        self.seq += 1
        client_id = f"{self.name}-{self.seq}"
        return client_id, f"{self.name} message {self.seq}"

    async def send(self, client_id: str, content: str, timeout: float = 10.0) -> str:
        """One attempt. Returns "ack", an error code, "timeout" or "closed".
        Anything but an ack leaves the message pending (to retry)."""
        retry = client_id in self.pending or client_id in self.acked  # sent before, maybe stored already
        if client_id not in self.acked:
            self.pending[client_id] = content
        if self.ws is None:
            return "closed"
        try:
            answer = await self.ws.request(
                {"type": "send_message", "channelId": self.channel_id, "content": content, "clientId": client_id},
                "new_message",
                timeout=timeout,
            )
        except websockets.ConnectionClosed:
            self._note("closed")
            return "closed"
        except (AssertionError, TimeoutError):
            self._note("timeout")
            return "timeout"
        finally:
            if self.ws is not None:
                self.drain()
        if answer["type"] == "new_message":
            message = answer["message"]
            assert message["clientId"] == client_id and message["authorId"] == self.person.id, message
            earlier = self.acked.get(client_id)
            assert earlier is None or earlier["id"] == message["id"], f"{client_id} acknowledged as {earlier['id']} then {message['id']}"
            self.acked[client_id] = message
            self.pending.pop(client_id, None)
            self.timeline.append(("ack", message["id"]))
            if retry:
                self.replayed.add(message["id"])
            return "ack"
        self._note(answer["code"])
        return answer["code"]

    async def retry_pending(self, timeout: float = 10.0) -> None:
        for client_id, content in list(self.pending.items()):
            outcome = await self.send(client_id, content, timeout=timeout)
            assert outcome == "ack", f"retry of {client_id} after recovery: {outcome}"

    def acked_keys(self) -> dict[tuple[int, str], int]:
        return {(self.person.id, cid): m["id"] for cid, m in self.acked.items()}


# ----------------------------------------------------- a reader that stalls

TCP_STATES = {1: "ESTABLISHED", 2: "SYN_SENT", 4: "FIN_WAIT1", 5: "FIN_WAIT2", 6: "TIME_WAIT", 7: "CLOSE", 8: "CLOSE_WAIT", 9: "LAST_ACK", 11: "CLOSING"}


def ws_text_frame(text: str) -> bytes:
    """A masked client text frame (RFC 6455 5.2)."""
    payload = text.encode()
    mask = os.urandom(4)
    n = len(payload)
    if n < 126:
        header = bytes([0x81, 0x80 | n])
    elif n < 65536:
        header = bytes([0x81, 0x80 | 126]) + n.to_bytes(2, "big")
    else:
        header = bytes([0x81, 0x80 | 127]) + n.to_bytes(8, "big")
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return header + mask + masked


class StalledReader:
    """A raw TCP WebSocket client with a small receive buffer: it does the
    handshake, joins a channel, then never reads again."""

    def __init__(self, server: Server, session_id: str, rcvbuf: int = 4096):
        self.server = server
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.settimeout(10)
        self.sock.connect(("127.0.0.1", server.port))
        self.local_port = self.sock.getsockname()[1]
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall(
            (
                f"GET /ws/chat/ HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\nUpgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
                f"Origin: {server.base}\r\nCookie: sessionid={session_id}\r\n\r\n"
            ).encode()
        )
        self.buffer = b""
        self.read_until(b"101 Switching Protocols")
        self.read_until(b'"connected"')

    def read_until(self, needle: bytes, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while needle not in self.buffer:
            if time.monotonic() > deadline:
                raise AssertionError(f"no {needle!r} within {timeout}s: {self.buffer[-300:]!r}")
            chunk = self.sock.recv(4096)
            if not chunk:
                raise AssertionError(f"closed before {needle!r}: {self.buffer[-300:]!r}")
            self.buffer += chunk

    def join(self, channel_id: int) -> None:
        self.sock.sendall(ws_text_frame(f'{{"type": "join_channel", "channelId": {channel_id}, "requestId": "stall"}}'))
        self.read_until(b'"joined_channel"')
        # From here on: never read.

    def client_state(self) -> str:
        info = self.sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 8)
        return TCP_STATES.get(info[0], str(info[0]))

    def server_side_state(self) -> str:
        """The state of the server's end of this connection in /proc/net/tcp,
        "gone" when the server has dropped it."""
        want_local = f"0100007F:{self.server.port:04X}"
        want_remote = f"0100007F:{self.local_port:04X}"
        with open("/proc/net/tcp") as f:
            next(f)
            for line in f:
                parts = line.split()
                if parts[1] == want_local and parts[2] == want_remote:
                    return TCP_STATES.get(int(parts[3], 16), parts[3])
        return "gone"

    def server_dropped(self) -> bool:
        return self.server_side_state() != "ESTABLISHED" or self.client_state() != "ESTABLISHED"

    def close(self) -> None:
        try:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.sock.close()
        except OSError:
            pass


def explain_gap(client: ChatClient, message_id: int, around: int = 6) -> str:
    """The client's timeline around the moment a message went missing: the
    join whose afterId jumped over it, and what raised its newest seen id."""
    lines = []
    for i, (kind, detail) in enumerate(client.timeline):
        if kind == "join" and detail >= message_id:
            window = client.timeline[max(0, i - around): i + 2]
            lines.append(f"join afterId={detail} > {message_id}; before it: {window}")
            break
    return "; ".join(lines) or f"no join jumped over {message_id}"


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
