"""How the MongoDB store lays messages out: the client per process, a
message as a document and as one JSON line of a bucket, and the driver's
errors as StoreError. The layout and why: messagestore/mongodb/__init__.py."""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from functools import wraps
from typing import Any, TypeVar

from pymongo import MongoClient
from pymongo.errors import PyMongoError

from messagestore.base import StoredMessage, StoreError
from wire import jsonutil

logger = logging.getLogger(__name__)
# pymongo logs each command with its documents (message bodies) at DEBUG;
# logs never hold message bodies, whatever LOG_LEVEL says.
logging.getLogger("pymongo").setLevel(max(logging.INFO, logging.getLogger("pymongo").level))

BUCKET_SIZE = 64
LOCK_LEASE_MS = 10_000  # a holder that has not released by then has died
LOCK_WAIT_SECONDS = 5.0
DEFAULT_DATABASE = "chat"

T = TypeVar("T")

_clients: dict[tuple[str, float, int], MongoClient] = {}
_clients_lock = threading.Lock()


def client_for(uri: str, *, timeout: float) -> MongoClient:
    """One MongoClient per (uri, process): pymongo pools connections inside
    it, and a client must not cross a fork."""
    key = (uri, timeout, os.getpid())
    with _clients_lock:
        client = _clients.get(key)
        if client is None:
            ms = int(timeout * 1000)
            client = MongoClient(
                uri,
                serverSelectionTimeoutMS=ms,
                connectTimeoutMS=ms,
                socketTimeoutMS=max(ms, 2000),
                # A retried write is replayed, not deduplicated, by a server
                # without retryable-write support (FerretDB): never retry.
                retryWrites=False,
                # An acknowledged write is on a majority of the replica set,
                # in its journal: a message we answered for survives a crash.
                w="majority",
                journal=True,
                tz_aware=True,
                appname="chat-message-store",
            )
            _clients[key] = client
        return client


def now() -> datetime:
    # Milliseconds, as BSON dates (read pointers) and the wire protocol keep.
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


def wall_ms() -> int:
    return int(time.time() * 1000)


def driver_errors(method: Callable[..., T]) -> Callable[..., T]:
    """Every driver failure leaves the store as StoreError (services turn it
    into `server_error`)."""

    @wraps(method)
    def wrapper(*args: Any, **kwargs: Any) -> T:
        try:
            return method(*args, **kwargs)
        except StoreError:
            raise
        except PyMongoError as exc:
            raise StoreError(f"MongoDB: {type(exc).__name__}: {exc}") from exc

    return wrapper


def record_of(stream: str, entry: dict[str, Any]) -> StoredMessage:
    return StoredMessage(
        id=entry["id"],
        stream=stream,
        author_id=entry["author_id"],
        content=entry["content"],
        created_at=entry["created_at"],
        message_type=entry.get("message_type") or "text",
        file_url=entry.get("file_url"),
        reply_to=entry.get("reply_to"),
        mentions=list(entry.get("mentions") or []),
        edited_at=entry.get("edited_at"),
        is_pinned=bool(entry.get("is_pinned")),
        pinned_by=entry.get("pinned_by"),
        is_ai=bool(entry.get("is_ai")),
        client_id=entry.get("client_id"),
        grade=entry.get("grade"),
        feedback=entry.get("feedback"),
        graded_by=entry.get("graded_by"),
        graded_at=entry.get("graded_at"),
        hidden=bool(entry.get("hidden")),
        deleted_at=entry.get("deleted_at"),
        deleted_by=entry.get("deleted_by"),
    )


def document_of(message: StoredMessage) -> dict[str, Any]:
    return {
        "id": message.id,
        "author_id": message.author_id,
        "content": message.content,
        "created_at": message.created_at,
        "message_type": message.message_type,
        "file_url": message.file_url,
        "reply_to": message.reply_to,
        "mentions": list(message.mentions),
        "edited_at": message.edited_at,
        "is_pinned": message.is_pinned,
        "pinned_by": message.pinned_by,
        "is_ai": message.is_ai,
        "client_id": message.client_id,
        "grade": message.grade,
        "feedback": message.feedback,
        "graded_by": message.graded_by,
        "graded_at": message.graded_at,
        "hidden": message.hidden,
        "deleted_at": message.deleted_at,
        "deleted_by": message.deleted_by,
    }


# Fields left out of a stored line while they hold their default (most
# messages: no file, reply, mentions, edit, pin, grade): a line is about half
# as long, and FerretDB's cost of reading a bucket grows with its bytes.
_DEFAULTS: dict[str, Any] = {
    "message_type": "text", "file_url": None, "reply_to": None, "mentions": [], "edited_at": None, "is_pinned": False,
    "pinned_by": None, "is_ai": False, "client_id": None, "grade": None, "feedback": None, "graded_by": None, "graded_at": None,
    "hidden": False, "deleted_at": None, "deleted_by": None,
}  # fmt: skip


def encode(entry: dict[str, Any]) -> str:
    # Datetimes become ISO 8601 with their offset; `record_of` fills in what is left out.
    return jsonutil.dumps(
        {k: v for k, v in entry.items() if not (k in _DEFAULTS and type(v) is type(_DEFAULTS[k]) and v == _DEFAULTS[k])}
    )


def decode(line: str) -> dict[str, Any]:
    entry = jsonutil.loads(line)
    for name in ("created_at", "edited_at", "deleted_at", "graded_at"):
        if entry.get(name):
            entry[name] = datetime.fromisoformat(entry[name])
    return entry
