"""Run daphne with the project's WebSocket settings (ping interval/timeout,
frame size limit), so `make run`, the tests and production start it alike:

    python -m chatsite.server --bind 127.0.0.1 --port 8000
"""

from __future__ import annotations

import os
import sys


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


def guard_sends(limit: int) -> None:
    """How daphne sends to a client. A client that stops reading makes Twisted
    queue every event for it in memory: past `limit` queued bytes the
    connection is aborted instead, so one slow reader never grows the
    server's memory."""
    import logging

    from daphne.ws_protocol import WebSocketProtocol

    logger = logging.getLogger("chatsite.server")
    original_send = WebSocketProtocol.serverSend

    def queued_bytes(transport) -> int:
        # Twisted's FileDescriptor keeps unsent bytes in dataBuffer (from
        # offset on) plus _tempDataBuffer (_tempDataLen bytes).
        buffered = getattr(transport, "dataBuffer", b"")
        return len(buffered) - getattr(transport, "offset", 0) + getattr(transport, "_tempDataLen", 0)

    def server_send(self, content, binary=False):
        if self.state in (self.STATE_CLOSING, self.STATE_CLOSED):
            # A broadcast racing the close: dropping it lets the consumer's
            # disconnect run (an exception here would skip it and leak presence).
            return
        transport = self.transport
        queued = queued_bytes(transport) if transport is not None else 0
        if queued > limit:
            logger.warning("dropping a slow WebSocket reader %s: %d bytes queued", self.client_addr, queued)
            transport.abortConnection()
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


def main() -> None:
    from daphne.cli import CommandLineInterface

    args = daphne_args(sys.argv[1:])  # sets Django up
    from django.conf import settings

    close_cleanly_on_protocol_errors()
    guard_sends(settings.CHAT_MAX_SEND_BUFFER_BYTES)
    CommandLineInterface().run(args[1:])


if __name__ == "__main__":
    main()
