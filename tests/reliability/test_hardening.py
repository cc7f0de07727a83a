"""Hardening, round 2 (issue 18): each finding of the outside review, tried
as it was found, against a real daphne process. Each test failed on the code
before its fix."""

from __future__ import annotations

import socket
import time

import pytest

from tests.e2e.harness import Server
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
