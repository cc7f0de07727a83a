"""A raw WebSocket client that stops reading (tests/reliability/test_faults_slow_consumer.py,
tests/reliability/test_slow_reader.py), and the TCP state of its connection
on both ends."""

from __future__ import annotations

import base64
import os
import socket
import struct
import time

from tests.e2e.harness import Server

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
