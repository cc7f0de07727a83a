"""`get_store()`: the message store that serves, picked by CHAT_MESSAGE_STORE.

`cassandra` falls back to `mongodb` (when MONGODB_URI is set) and then `sql`
when the cluster does not answer at start-up; `mongodb` falls back to `sql`.
A fallback is logged at CRITICAL with the reason, and /healthz answers
`degraded`, naming the store that serves and the configured one. The choice
holds for the life of the process. With CHAT_STORE_FALLBACK=0 there is no
fallback: `get_store()` raises StoreError until the configured store answers,
and the launcher refuses to start without it (several processes must never
write one channel's messages to two stores).
"""

from __future__ import annotations

import logging
import threading
from typing import cast

from django.conf import settings

from messagestore.base import MessageStore, NewMessage, ReadPointer, StoredMessage, StoreError
from messagestore.listeners import ObservedStore

__all__ = [
    "MessageStore",
    "NewMessage",
    "ReadPointer",
    "StoreError",
    "StoredMessage",
    "configured_store",
    "ensure_store_schema",
    "get_store",
    "reset_store",
]

logger = logging.getLogger(__name__)
_store: MessageStore | None = None
# What get_store() hands out: `_store` with its writes told to the listeners
# (messagestore.listeners), remade whenever `_store` is replaced.
_observed: ObservedStore | None = None
_lock = threading.Lock()

BACKENDS = ("cassandra", "mongodb", "sql")
SCHEMA_TIMEOUT = 30.0


def _chain(wanted: str) -> list[str]:
    """The configured backend and what it falls back to, in order."""
    if wanted not in BACKENDS:
        logger.critical("CHAT_MESSAGE_STORE=%r is not one of %s; using the SQL store", wanted, ", ".join(BACKENDS))
        return ["sql"]
    chain = list(BACKENDS[BACKENDS.index(wanted) :])
    if "mongodb" in chain and not settings.MONGODB_URI:
        if wanted == "mongodb":
            logger.critical("CHAT_MESSAGE_STORE=mongodb but MONGODB_URI is not set")
        chain.remove("mongodb")
    return chain


def open_store(name: str, *, timeout: float | None = None) -> MessageStore:
    """A store of that backend from the settings, without fallback; raises
    StoreError when it cannot connect within `timeout` (CHAT_STORE_TIMEOUT)."""
    timeout = timeout or settings.CHAT_STORE_TIMEOUT
    if name == "cassandra":
        try:
            from messagestore.cassandra import CassandraMessageStore
        except ImportError as exc:  # the driver is an optional install
            raise StoreError(f"the Cassandra driver cannot be imported: {exc}") from exc
        hosts = [h for h in settings.CASSANDRA_HOSTS.split(",") if h.strip()]
        return CassandraMessageStore(
            hosts=hosts,
            port=settings.CASSANDRA_PORT,
            keyspace=settings.CASSANDRA_KEYSPACE,
            timeout=timeout,
            replication=settings.CASSANDRA_REPLICATION,
            datacenter=settings.CASSANDRA_DATACENTER,
        )
    if name == "mongodb":
        try:
            from messagestore.mongodb import MongoMessageStore
        except ImportError as exc:
            raise StoreError(f"pymongo cannot be imported: {exc}") from exc
        return MongoMessageStore(uri=settings.MONGODB_URI, timeout=timeout)
    from messagestore.sql import SqlMessageStore

    return SqlMessageStore()


def configured_store() -> str:
    """The store CHAT_MESSAGE_STORE names (sql when it names none)."""
    return settings.CHAT_MESSAGE_STORE if settings.CHAT_MESSAGE_STORE in BACKENDS else "sql"


def _build() -> MessageStore:
    wanted = settings.CHAT_MESSAGE_STORE
    if not settings.CHAT_STORE_FALLBACK and wanted in BACKENDS:
        # Several processes must never split one channel's messages between
        # two stores: no fallback, the configured store or nothing.
        store = open_store(wanted)
        try:
            store.ping()
        except StoreError as exc:
            raise StoreError(f"message store {wanted} is unavailable and CHAT_STORE_FALLBACK=0 forbids falling back: {exc}") from exc
        return store
    chain = _chain(wanted)
    for name in chain[:-1]:
        try:
            store = open_store(name)
            store.ping()
        except StoreError as exc:
            following = chain[chain.index(name) + 1]
            logger.critical(
                "message store %s is unavailable at start-up (%s); falling back to the %s store "
                "(CHAT_MESSAGE_STORE=%s)",
                name,
                exc,
                following,
                wanted,
            )
            continue
        if name != wanted:
            logger.critical("messages are served by the %s store instead of %s", name, wanted)
        return store
    # The last resort (SQL) lives in the default database: without it nothing
    # works anyway, so it is not probed here.
    if chain[-1] != wanted:
        logger.critical("messages are served by the %s store instead of %s", chain[-1], wanted)
    return open_store(chain[-1])


def get_store() -> MessageStore:
    """The store that serves, wrapped so that every message write reaches
    the listeners of messagestore.listeners (the search index)."""
    global _store, _observed
    if _store is None:
        with _lock:
            if _store is None:
                _store = _build()
    store, observed = _store, _observed
    if observed is None or observed.inner is not store:
        observed = _observed = ObservedStore(store)
    return cast(MessageStore, observed)


def reset_store() -> None:
    global _store
    with _lock:
        _store = None


def ensure_store_schema() -> None:
    """Create the tables/indexes of the configured store and of the stores it
    falls back to, so that a fallback finds its schema ready. `migrate` calls
    it (messagestore.apps). The configured store must succeed (else `migrate`
    fails, rather than leave the servers to fall back for good); a fallback
    store that is unreachable is only logged."""
    chain = _chain(settings.CHAT_MESSAGE_STORE)
    for name in chain:
        try:
            # Schema changes wait for the cluster to agree: give them longer
            # than a request gets.
            open_store(name, timeout=max(settings.CHAT_STORE_TIMEOUT, SCHEMA_TIMEOUT)).ensure_schema()
        except StoreError as exc:
            logger.critical("could not create the schema of the %s message store: %s", name, exc)
            if name == chain[0]:
                raise
            continue
        logger.info("message store %s: schema ready", name)
