"""The launcher: daphne with the project's WebSocket settings (ping interval
and timeout, frame size limit) and the daphne adapter installed, so
`make run`, the tests and production start it alike:

    python -m chatsite.server --bind 127.0.0.1 --port 8000
"""

from __future__ import annotations

import gc
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
        *argv,
        "chatsite.asgi:application",
    ]  # fmt: skip


def main() -> None:
    from daphne.cli import CommandLineInterface

    args = daphne_args(sys.argv[1:])  # sets Django up
    from django.conf import settings

    import chatsite.asgi  # noqa: F401  (the application daphne loads; imported before the freeze below)
    from chatsite import daphne_adapter
    from messagestore import StoreError, get_store

    if not settings.CHAT_STORE_FALLBACK:
        try:
            get_store()
        except StoreError as exc:
            sys.exit(f"chatsite.server: refusing to start: {exc}")

    # What is loaded now lives as long as the process: out of the collector's
    # sight, so a full collection scans connections, not Django's modules.
    gc.freeze()
    daphne_adapter.install(send_buffer_limit=settings.CHAT_MAX_SEND_BUFFER_BYTES)
    CommandLineInterface().run(args[1:])


if __name__ == "__main__":
    main()
