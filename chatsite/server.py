"""The launcher: daphne with the project's WebSocket settings (ping interval
and timeout, frame size limit) and the daphne adapter installed, so
`make run`, the tests and production start it alike:

    python -m chatsite.server --bind 127.0.0.1 --port 8000
    python -m chatsite.server --bind 127.0.0.1 --port 8000 --workers 2

`--workers N` binds the port once and starts N server processes that
accept on that one socket (daphne --fd), one per core, each with its own
hub, joined over Redis exactly as separately started processes are
(docs/scaling.md); this process only waits for them and passes signals on.
"""

from __future__ import annotations

import gc
import os
import signal
import socket
import subprocess
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


def split_workers(argv: list[str]) -> tuple[int, list[str]]:
    """`--workers N` (default 1) and the rest of the arguments."""
    if "--workers" not in argv:
        return 1, argv
    i = argv.index("--workers")
    return int(argv[i + 1]), argv[:i] + argv[i + 2 :]


def option(argv: list[str], name: str, default: str) -> tuple[str, list[str]]:
    if name not in argv:
        return default, argv
    i = argv.index(name)
    return argv[i + 1], argv[:i] + argv[i + 2 :]


def prefork(workers: int, argv: list[str]) -> int:
    """Bind once, start `workers` servers on the socket, wait for them."""
    host, argv = option(argv, "--bind", "127.0.0.1")
    port, argv = option(argv, "--port", "8000")
    listener = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((host, int(port)))
    listener.listen(1024)
    fd = listener.fileno()
    children = [
        subprocess.Popen([sys.executable, "-m", "chatsite.server", "--fd", str(fd), *argv], pass_fds=(fd,))
        for _ in range(workers)
    ]
    listener.close()

    def stop(signum: int, _frame: object) -> None:
        for child in children:
            if child.poll() is None:
                child.send_signal(signum)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    # One ending ends the set: a supervisor restarts the whole unit.
    pid, status = os.wait()
    stop(signal.SIGTERM, None)
    for child in children:
        if child.pid != pid:
            child.wait()
    return os.waitstatus_to_exitcode(status)


def main() -> None:
    from daphne.cli import CommandLineInterface

    workers, argv = split_workers(sys.argv[1:])
    if workers > 1:
        sys.exit(prefork(workers, argv))
    args = daphne_args(argv)  # sets Django up
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
