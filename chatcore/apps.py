import importlib.util

from django.apps import AppConfig
from django.db import DEFAULT_DB_ALIAS


def _message_store_schema(sender: AppConfig, using: str = DEFAULT_DB_ALIAS, **kwargs: object) -> None:
    # Cassandra keyspaces/tables and MongoDB indexes have no Django migrations:
    # `migrate` creates them here, so one command sets up every store.
    if using == DEFAULT_DB_ALIAS:
        from chatcore.store import ensure_store_schema

        ensure_store_schema()


class ChatcoreConfig(AppConfig):
    name = "chatcore"
    verbose_name = "Message store"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.db.models.signals import post_migrate

        from chatcore import checks  # noqa: F401  (registers the system checks)

        post_migrate.connect(_message_store_schema, sender=self, dispatch_uid="chatcore.message_store_schema")
        if importlib.util.find_spec("daphne") is not None:
            # The server's 1011 closes (chatcore.hub), under runserver too.
            from chatsite.server import allow_server_close_codes

            allow_server_close_codes()
