"""`get_store()`: the message store that serves, picked by CHAT_MESSAGE_STORE."""

from __future__ import annotations

import logging
import threading

from django.conf import settings

from chatcore.store.base import MessageStore, NewMessage, ReadPointer, StoredMessage, StoreError

__all__ = ["MessageStore", "NewMessage", "ReadPointer", "StoredMessage", "StoreError", "get_store", "reset_store"]

logger = logging.getLogger(__name__)
_store: MessageStore | None = None
_lock = threading.Lock()


def _build() -> MessageStore:
    wanted = settings.CHAT_MESSAGE_STORE
    if wanted != "sql":
        logger.error("CHAT_MESSAGE_STORE=%s is not available in this build; using the SQL store", wanted)
    from chatcore.store.sql import SqlMessageStore

    return SqlMessageStore()


def get_store() -> MessageStore:
    global _store
    if _store is None:
        with _lock:
            if _store is None:
                _store = _build()
    return _store


def reset_store() -> None:
    global _store
    with _lock:
        _store = None
