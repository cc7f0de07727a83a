"""`manage.py runserver`: daphne's development server with the daphne adapter
installed, so it behaves as `python -m chatsite.server` does (1011 closes,
clean 1009, slow-reader drop)."""

from typing import Any

from daphne.management.commands.runserver import Command as DaphneRunserver
from django.conf import settings


class Command(DaphneRunserver):
    def inner_run(self, *args: Any, **options: Any) -> None:
        from chatsite import daphne_adapter

        daphne_adapter.install(send_buffer_limit=settings.CHAT_MAX_SEND_BUFFER_BYTES)
        super().inner_run(*args, **options)
