"""The asynchronous indexer: on PostgreSQL the send path does not wait for the
index (an entry with its tsvector and GIN update cost about 1 ms, a third of
a send; docs/search.md). A write is queued once its transaction commits, and
one thread per process applies the queue in batches (what arrived within
BATCH_WAIT of the first), each batch one transaction on its own connection,
within about a tenth of a second (PROTOCOL.md: findable within 2 s).

A write still queued when the process dies is lost: `manage.py
search_rebuild` repairs the index (docs/search.md, "Operations")."""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import deque

from django.db import DatabaseError, InterfaceError, OperationalError, close_old_connections, transaction

from messagestore.listeners import Write

logger = logging.getLogger(__name__)

BATCH = 500
# A batch gathers writes for this long after its first: one transaction and
# one INSERT for many messages, instead of three round trips for each.
BATCH_WAIT = 0.1
RETRY_AFTER = 1.0
ATTEMPTS = 3
# While the database is unreachable (OperationalError, InterfaceError: a
# PostgreSQL restart), a batch waits for it this long instead of ATTEMPTS
# tries: a 4 s restart used to drop the writes committed just before it
# (tests/cluster/test_postgres_restart.py).
OUTAGE_PATIENCE = 120.0


def apply(writes: list[Write]) -> None:
    """Writes in order, in one transaction: each message's last write wins."""
    from search import index

    latest: dict[tuple[str, int], Write] = {}
    for write in writes:
        latest.pop((write.stream, write.message_id), None)
        latest[(write.stream, write.message_id)] = write
    upserts = [w.message for w in latest.values() if w.message is not None]
    removals: dict[str, list[int]] = {}
    for write in latest.values():
        if write.message is None:
            removals.setdefault(write.stream, []).append(write.message_id)
    with transaction.atomic():
        for start in range(0, len(upserts), 100):
            index.upsert(upserts[start : start + 100])
        for stream, ids in removals.items():
            index.remove(stream, ids)


class Indexer:
    def __init__(self) -> None:
        self._queue: queue.SimpleQueue[tuple[float, Write]] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._start = threading.Lock()
        self._idle = threading.Condition()
        self._pending = 0
        # Seconds from commit to indexed, of the latest writes (the bench reads them).
        self.lags: deque[float] = deque(maxlen=10_000)

    def submit(self, write: Write) -> None:
        with self._idle:
            self._pending += 1
        self._queue.put((time.monotonic(), write))
        if self._thread is None or not self._thread.is_alive():
            with self._start:
                if self._thread is None or not self._thread.is_alive():
                    self._thread = threading.Thread(target=self._run, name="search-indexer", daemon=True)
                    self._thread.start()

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until every submitted write is applied (tests, the bench)."""
        with self._idle:
            return self._idle.wait_for(lambda: self._pending == 0, timeout)

    def _run(self) -> None:
        while True:
            batch = [self._queue.get()]
            until = time.monotonic() + BATCH_WAIT
            while len(batch) < BATCH and (left := until - time.monotonic()) > 0:
                try:
                    batch.append(self._queue.get(timeout=left))
                except queue.Empty:
                    break
            try:
                self._apply([write for _, write in batch])
            finally:
                # The thread outlives any failure (`_apply` logs them), and
                # `flush` never waits for a batch that is gone.
                done = time.monotonic()
                self.lags.extend(done - submitted for submitted, _ in batch)
                with self._idle:
                    self._pending -= len(batch)
                    self._idle.notify_all()

    def _apply(self, writes: list[Write]) -> None:
        attempt = 0
        patience = time.monotonic() + OUTAGE_PATIENCE
        while True:
            attempt += 1
            try:
                close_old_connections()
                apply(writes)
                return
            except (OperationalError, InterfaceError):
                if time.monotonic() >= patience:
                    logger.exception("search index: database unreachable for %.0f s; %d writes not indexed (manage.py search_rebuild repairs it)", OUTAGE_PATIENCE, len(writes))
                    return
                logger.warning("search index: database unreachable; retrying in %.0f s", RETRY_AFTER, exc_info=attempt == 1)
                time.sleep(RETRY_AFTER)
            except DatabaseError:
                if attempt >= ATTEMPTS:
                    logger.exception("search index: %d writes not indexed (manage.py search_rebuild repairs it)", len(writes))
                    return
                logger.warning("search index: a batch failed; retrying in %.0f s", RETRY_AFTER, exc_info=True)
                time.sleep(RETRY_AFTER)
            except Exception:
                logger.exception("search index: %d writes not indexed", len(writes))
                return


indexer = Indexer()
