"""The message store as a Django app. Its label stays `chatcore` (the package
it grew out of), so existing databases keep their tables (`chatcore_message`,
...) and their migration history."""

from django.apps import AppConfig
from django.db import DEFAULT_DB_ALIAS


def _message_store_schema(sender: AppConfig, using: str = DEFAULT_DB_ALIAS, **kwargs: object) -> None:
    # Cassandra keyspaces/tables and MongoDB indexes have no Django migrations:
    # `migrate` creates them here, so one command sets up every store.
    if using == DEFAULT_DB_ALIAS:
        from messagestore import ensure_store_schema

        ensure_store_schema()


class MessageStoreConfig(AppConfig):
    name = "messagestore"
    label = "chatcore"
    verbose_name = "Message store"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.db.models.signals import post_migrate

        post_migrate.connect(_message_store_schema, sender=self, dispatch_uid="messagestore.message_store_schema")
