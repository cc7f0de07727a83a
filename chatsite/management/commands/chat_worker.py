"""The background worker, beside the server processes (never inside a
request): every CHAT_EMAIL_SWEEP_EVERY seconds it sends the missed-message
emails that are due (notifications.email) and removes the files no message
has used for CHAT_FILE_GRACE seconds (files.services.files_cleanup). Any
number may run: each user gets one email per window, each file is removed
once, whichever worker does it."""

from __future__ import annotations

import signal
import threading
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import close_old_connections

from files.services import files_cleanup
from notifications.email import email_enabled, email_sweep


class Command(BaseCommand):
    help = "Send missed-message emails (with EMAIL_URL) and remove unused files; runs until stopped."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--once", action="store_true", help="one round, then exit")
        parser.add_argument("--every", type=float, default=None, help="seconds between rounds (CHAT_EMAIL_SWEEP_EVERY)")

    def handle(self, *args: Any, once: bool = False, every: float | None = None, **options: Any) -> None:
        every = every if every is not None else settings.CHAT_EMAIL_SWEEP_EVERY
        if not email_enabled():
            self.stderr.write("chat_worker: EMAIL_URL is not set: no missed-message email is sent (set it, e.g. smtp://127.0.0.1:1025).")
        stop = threading.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())
        while True:
            close_old_connections()
            for job, done in ((email_sweep, "email(s) sent"), (files_cleanup, "unused file(s) removed")):
                try:
                    count = job()
                except Exception as exc:  # the database or storage is away: next round
                    self.stderr.write(f"chat_worker: {job.__name__} failed: {exc!r}")
                    count = 0
                if count:
                    self.stdout.write(f"chat_worker: {count} {done}")
            if once or stop.wait(every):
                return
