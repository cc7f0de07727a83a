"""Run daphne with the project's WebSocket settings (ping interval/timeout,
frame size limit), so `make run`, the tests and production start it alike:

    python -m chatsite.server --bind 127.0.0.1 --port 8000
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from functools import partial

logger = logging.getLogger("chatsite.server")


def daphne_args(argv: list[str]) -> list[str]:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chatsite.settings")
    import django
    from django.conf import settings

    django.setup()
    return [
        "daphne",
        "--ping-interval", str(settings.CHAT_PING_INTERVAL),
        "--ping-timeout", str(settings.CHAT_PING_TIMEOUT),
        "--websocket-max-message-size", str(settings.CHAT_MAX_FRAME_BYTES),
        "--websocket-max-frame-size", str(settings.CHAT_MAX_FRAME_BYTES),
        "--proxy-headers",
        *argv,
        "chatsite.asgi:application",
    ]


def close_cleanly_on_protocol_errors() -> None:
    """Autobahn drops the TCP connection on a protocol error such as an
    over-size message (failByDrop). Do the closing handshake instead, so the
    client learns why: 1009 for a message over the limit (PROTOCOL.md)."""
    from daphne.ws_protocol import WebSocketFactory

    original_init = WebSocketFactory.__init__

    def init(self, *args, **kwargs):
        original_init(self, *args, **kwargs)
        self.setProtocolOptions(failByDrop=False)

    WebSocketFactory.__init__ = init


# Close codes RFC 6455 gives a server for its own failures: 1011 (unexpected
# condition: chatcore.hub closes every connection with it when the channel
# layer fails, so clients resume with afterId), 1012 (restart), 1013 (try
# again later).
SERVER_CLOSE_CODES = frozenset({1011, 1012, 1013})


def allow_server_close_codes() -> None:
    """Autobahn's sendClose accepts only 1000 and 3000-4999 (the codes of its
    application API), so daphne raises on `websocket.close` with 1011 and the
    socket stays open. Those codes are sent as the close frame they are.
    Applied by chatcore's AppConfig, so `manage.py runserver` has it too."""
    from daphne.ws_protocol import WebSocketProtocol

    if getattr(WebSocketProtocol.serverClose, "chat_patched", False):
        return
    original_close = WebSocketProtocol.serverClose

    def server_close(self, code=None):
        if code in SERVER_CLOSE_CODES:
            self.sendCloseFrame(code=code, isReply=False)
        else:
            original_close(self, code)

    server_close.chat_patched = True
    WebSocketProtocol.serverClose = server_close


def queued_bytes(transport) -> int:
    """Bytes Twisted holds for a connection, not yet taken by the kernel:
    FileDescriptor keeps them in dataBuffer (from offset on) plus
    _tempDataBuffer (_tempDataLen bytes)."""
    buffered = getattr(transport, "dataBuffer", b"")
    return len(buffered) - getattr(transport, "offset", 0) + getattr(transport, "_tempDataLen", 0)


def too_slow(protocol, limit: int, queued: int | None = None) -> bool:
    """Past `limit` queued bytes a client that stopped reading is dropped, so
    one slow reader never grows the server's memory."""
    transport = protocol.transport
    if queued is None:
        queued = queued_bytes(transport) if transport is not None else 0
    if queued <= limit:
        return False
    logger.warning("dropping a slow WebSocket reader %s: %d bytes queued", protocol.client_addr, queued)
    transport.abortConnection()
    return True


def guard_sends(limit: int) -> None:
    """How daphne sends to a client: nothing to a closing socket, and a slow
    reader is dropped (`too_slow`) instead of Twisted queueing every event for
    it in memory."""
    from daphne.ws_protocol import WebSocketProtocol

    original_send = WebSocketProtocol.serverSend

    def server_send(self, content, binary=False):
        if self.state in (self.STATE_CLOSING, self.STATE_CLOSED):
            # A broadcast racing the close: dropping it lets the consumer's
            # disconnect run (an exception here would skip it and leak presence).
            return
        if too_slow(self, limit):
            return
        # The message size limit guards what clients send us; autobahn applies
        # it to what we send too, which would break a large catch-up page.
        inbound_limit = self.maxMessagePayloadSize
        self.maxMessagePayloadSize = 0
        try:
            original_send(self, content, binary)
        finally:
            self.maxMessagePayloadSize = inbound_limit

    WebSocketProtocol.serverSend = server_send


_plain_tcp: type | None = None  # twisted.internet.tcp.Server, once daphne has set Twisted up


def write_frame(protocol, limit: int, frame: bytes, text: str) -> None:
    """Send a broadcast's prepared frame (chatcore.hub.prepared_frame): the
    same bytes for every recipient, so no per-recipient framing; and straight
    to the socket when nothing is queued before it, as asyncio's transports
    do, where Twisted would register the socket for writing and send on the
    next loop turn (two epoll_ctl calls per message: most of a fan-out's
    cost, bench/RESULTS.md)."""
    if protocol.state != protocol.STATE_OPEN:
        return  # closing: as guard_sends
    transport = protocol.transport
    if transport is None:
        return
    queued = queued_bytes(transport)
    if queued > limit:
        too_slow(protocol, limit, queued)
        return
    if protocol._perMessageCompress is not None or protocol.send_state != protocol.SEND_STATE_GROUND:
        protocol.serverSend(text)  # never the case with daphne's options; kept correct anyway
        return
    # Straight to the socket only for plain TCP: under TLS (daphne -e ssl:...)
    # the transport is a TLS wrapper that merely forwards `socket` & co.
    if queued or type(transport) is not _plain_tcp or transport.TLS or transport.disconnecting or protocol.send_queue:
        transport.write(frame)
        return
    sock = transport.socket
    try:
        sent = sock.send(frame)
    except (BlockingIOError, InterruptedError):
        sent = 0
    except OSError:
        sent = 0  # Twisted meets the error on its own write and closes the connection
    if sent < len(frame):
        transport.write(frame[sent:])


class ReceiveQueue:
    """What daphne hands an application as `receive`: its asyncio.Queue (four
    deques and an Event, ~3 KiB per connection) cut down to the two calls
    daphne and the application make, put_nowait and get."""

    __slots__ = ("_items", "_waiter")

    def __init__(self) -> None:
        self._items: list | None = None
        self._waiter = None

    def put_nowait(self, item) -> None:
        if self._items is None:
            self._items = []
        self._items.append(item)
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def get(self):
        # The item stays queued until taken: a get() cancelled after the
        # wake-up loses nothing.
        while not self._items:
            self._waiter = asyncio.get_running_loop().create_future()
            await self._waiter
        return self._items.pop(0)


def slim_connections(limit: int) -> None:
    """Per-connection memory (bench/RESULTS.md, idle connections): a light
    receive queue, and each WebSocket's handshake leftovers (raw request,
    header dicts) let go once it is open. Also gives each WebSocket's
    application `scope["chat.write_frame"]` (chatcore.consumers uses it)."""
    from daphne.server import Server
    from daphne.ws_protocol import WebSocketProtocol
    from twisted.internet import tcp

    global _plain_tcp
    _plain_tcp = tcp.Server

    def create_application(self, protocol, scope):
        # daphne's Server.create_application with ReceiveQueue (daphne 4.2.3).
        assert "application_instance" not in self.connections[protocol]
        if scope.get("type") == "websocket":
            scope["chat.write_frame"] = partial(write_frame, protocol, limit)
        input_queue = ReceiveQueue()
        scope.setdefault("asgi", {"version": "3.0"})
        application_instance = self.application(scope=scope, receive=input_queue.get, send=partial(self.handle_reply, protocol))
        if protocol not in self.connections:
            return None
        self.connections[protocol]["application_instance"] = asyncio.ensure_future(application_instance)
        return input_queue

    original_open = WebSocketProtocol.onOpen

    def on_open(self):
        original_open(self)
        self.http_request_data = b""
        self.http_headers.clear()  # also request.headers: the same dict

    Server.create_application = create_application
    WebSocketProtocol.onOpen = on_open


def main() -> None:
    from daphne.cli import CommandLineInterface

    args = daphne_args(sys.argv[1:])  # sets Django up
    from django.conf import settings

    # What is loaded now lives as long as the process: out of the collector's
    # sight, so a full collection scans connections, not Django (~110k
    # objects, ~80 ms per full collection on the bench machine).
    import gc

    import chatsite.asgi  # noqa: F401  (the application daphne loads)

    gc.freeze()
    close_cleanly_on_protocol_errors()
    guard_sends(settings.CHAT_MAX_SEND_BUFFER_BYTES)
    slim_connections(settings.CHAT_MAX_SEND_BUFFER_BYTES)
    CommandLineInterface().run(args[1:])


if __name__ == "__main__":
    main()
