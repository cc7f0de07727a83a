"""Remove orphaned files now: uploads no message has used for
CHAT_FILE_GRACE seconds (what `chat_worker` does every round), and bytes in
the storage that no upload row names (after a crash, or a restore of an
older database)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from files.services import files_cleanup, stray_blobs_remove


class Command(BaseCommand):
    help = "Remove files no message uses (after CHAT_FILE_GRACE) and stray bytes in the storage."

    def handle(self, *args: Any, **options: Any) -> None:
        removed = 0
        while batch := files_cleanup():  # 500 at a time
            removed += batch
        stray = stray_blobs_remove()
        self.stdout.write(f"files_cleanup: {removed} unused file(s) and {stray} stray blob(s) removed")
