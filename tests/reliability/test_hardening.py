"""Hardening, round 2 (issue 18): each finding of the outside review, tried
as it was found, against a real daphne process. Each test failed on the code
before its fix."""

from __future__ import annotations

import os
import socket
import time
from urllib.parse import urlparse

import httpx
import pytest

from tests.conftest import require_service
from tests.e2e.conftest import Classroom
from tests.e2e.harness import Server, free_port
from tests.reliability.record import record

pytestmark = pytest.mark.e2e


def raw_http(server: Server, request: bytes, *, send_after: bytes = b"", timeout: float = 10.0) -> tuple[bytes, float]:
    """Send `request` on a plain socket, then `send_after` if the server has
    not answered yet; (the answer's first bytes, seconds until they came)."""
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", server.port), timeout=timeout) as sock:
        sock.sendall(request)
        sock.settimeout(timeout)
        try:
            answer = sock.recv(4096)
        except TimeoutError:
            answer = b""
        if not answer and send_after:
            sock.sendall(send_after)
            answer = sock.recv(4096)
    return answer, time.monotonic() - started


def test_a_body_over_the_limit_is_413_before_it_is_read(server):
    """Finding 1: a 40 MiB POST to /api/auth/login/ was read and parsed in
    full. Now the declared length alone gets 413, at once; the body never
    arrives (the test sends none of it)."""
    declared = 40 * 1024 * 1024
    head = (
        f"POST /api/auth/login/ HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {declared}\r\n\r\n"
    ).encode()
    answer, seconds = raw_http(server, head + b'{"username": "x", ', timeout=5)
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert b"over the limit" in answer or b"\r\n\r\n" in answer
    # Chunked, no length: counted as it arrives, refused once past 1 MiB.
    chunk = b"x" * 65536
    chunked_head = (
        f"POST /api/workspaces/ HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\nContent-Type: application/json\r\n"
        "Transfer-Encoding: chunked\r\n\r\n"
    ).encode()
    body = (f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n") * 20
    chunked_answer, _ = raw_http(server, chunked_head + body, timeout=5)
    assert chunked_answer.startswith(b"HTTP/1.1 413"), chunked_answer[:200]
    record("request-body-limit", declared_bytes=declared, seconds_to_413=round(seconds, 2), chunked_refused=True)


def test_a_fallback_store_is_visible_and_can_be_forbidden(e2e_env):
    """Finding 3: a store that failed at start-up was silently replaced for
    the life of the process while /healthz said ok, so with several
    processes one channel's messages split between two stores."""
    dead = f"mongodb://127.0.0.1:{free_port()}/chat"
    env = {**e2e_env, "CHAT_MESSAGE_STORE": "mongodb", "MONGODB_URI": dead, "CHAT_STORE_TIMEOUT": "1"}
    server = Server(env, log_name="fallback-on").start()
    try:
        body = httpx.get(server.base + "/healthz", timeout=10).json()
    finally:
        server.stop()
    assert body["status"] == "degraded", body
    assert body["checks"]["messageStore"] == "sql" and body["checks"]["configuredStore"] == "mongodb", body
    # CHAT_STORE_FALLBACK=0: a process that cannot reach its store does not
    # start (so it cannot write anywhere else), and says why.
    with pytest.raises(RuntimeError, match="CHAT_STORE_FALLBACK=0"):
        Server({**env, "CHAT_STORE_FALLBACK": "0"}, log_name="fallback-off").start()
    record("store-fallback", degraded_healthz=body["status"], refused_without_fallback=True)


@pytest.mark.needs_mongodb
async def test_without_fallback_two_processes_write_one_store(e2e_env):
    """Finding 3, the rest: with CHAT_STORE_FALLBACK=0 one process whose store
    is down refuses to start while another serves from that store: a
    channel's messages never split between two stores."""
    require_service("MONGODB_URI", os.environ.get("MONGODB_URI", ""))
    database = f"chat_hardening_{os.getpid()}"
    live = urlparse(os.environ["MONGODB_URI"])._replace(path=f"/{database}").geturl()
    env = {**e2e_env, "CHAT_MESSAGE_STORE": "mongodb", "CHAT_STORE_FALLBACK": "0", "CHAT_STORE_TIMEOUT": "2"}
    with pytest.raises(RuntimeError, match="refusing to start"):
        Server({**env, "MONGODB_URI": f"mongodb://127.0.0.1:{free_port()}/chat"}, log_name="no-fallback-down").start()
    serving = Server({**env, "MONGODB_URI": live}, log_name="no-fallback-up").start()
    try:
        body = httpx.get(serving.base + "/healthz", timeout=10).json()
        assert body == {"status": "ok", "checks": {"database": "ok", "channelLayer": "ok", "messageStore": "mongodb"}}, body
        room = Classroom(serving)
        ws = await room.alice.connect()
        await ws.request({"type": "join_channel", "channelId": room.general}, "joined_channel")
        sent = await ws.request({"type": "send_message", "channelId": room.general, "content": "one store"}, "new_message")
        assert sent["type"] == "new_message"
        await room.close()
    finally:
        serving.stop()
        from pymongo import MongoClient

        with MongoClient(live, serverSelectionTimeoutMS=5000) as client:
            client.drop_database(database)
