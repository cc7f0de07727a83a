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


def main() -> None:
    from daphne.cli import CommandLineInterface

    close_cleanly_on_protocol_errors()
    args = daphne_args(sys.argv[1:])
    CommandLineInterface().run(args[1:])


if __name__ == "__main__":
    main()
