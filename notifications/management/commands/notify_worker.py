"""The worker that sends missed-message emails (notifications.email): one
sweep every CHAT_EMAIL_SWEEP_EVERY seconds until stopped. Any number may
run; each user gets one email per window whichever sends it."""

from __future__ import annotations

import signal
import threading
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import close_old_connections

from notifications.email import email_enabled, email_sweep


class Command(BaseCommand):
    help = "Send missed-message emails (needs EMAIL_URL); runs until stopped."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--once", action="store_true", help="one sweep, then exit")
        parser.add_argument("--every", type=float, default=None, help="seconds between sweeps (CHAT_EMAIL_SWEEP_EVERY)")

    def handle(self, *args: Any, once: bool = False, every: float | None = None, **options: Any) -> None:
        every = every if every is not None else settings.CHAT_EMAIL_SWEEP_EVERY
        if not email_enabled():
            self.stderr.write("notify_worker: EMAIL_URL is not set: no missed-message email is sent (set it, e.g. smtp://127.0.0.1:1025).")
        stop = threading.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())
        while True:
            close_old_connections()
            try:
                sent = email_sweep()
            except Exception as exc:  # the database is away: try again next round
                self.stderr.write(f"notify_worker: sweep failed: {exc!r}")
                sent = 0
            if sent:
                self.stdout.write(f"notify_worker: {sent} email(s) sent")
            if once or stop.wait(every):
                return
