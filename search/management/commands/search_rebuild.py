"""`manage.py search_rebuild`: the search index from the message store
(search.rebuild)."""

from __future__ import annotations

import time

from django.core.management.base import BaseCommand

from messagestore.base import MAX_PAGE
from search import rebuild


class Command(BaseCommand):
    help = "Rebuild the message search index from the message store (every channel and MessagePal conversation; idempotent)."

    def add_arguments(self, parser):
        parser.add_argument("--batch", type=int, default=MAX_PAGE, help=f"messages read and indexed at a time (at most {MAX_PAGE})")

    def handle(self, *args, **options):
        started = time.monotonic()
        batch = max(1, min(int(options["batch"]), MAX_PAGE))

        def progress(stream: str, held: int) -> None:
            if options["verbosity"] >= 2:
                self.stdout.write(f"{stream}: {held} messages")

        streams, messages = rebuild.rebuild(batch=batch, progress=progress)
        self.stdout.write(self.style.SUCCESS(f"search index rebuilt: {messages} messages in {streams} streams in {time.monotonic() - started:.1f} s"))
