"""Prometheus metrics of this process (PROTOCOL.md, "Operations, part 2"),
served at /metrics (chatsite.health.metrics). Cheap on the hot paths: a
broadcast counts its deliveries once, not once per recipient."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

from prometheus_client import Counter, Gauge, Histogram

# Seconds: from a few hundred microseconds (a cached read) to a store timeout.
_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

CONNECTIONS_OPEN = Gauge("chat_connections_open", "WebSocket connections open in this process (authenticated)")
MESSAGES_ACCEPTED = Counter("chat_messages_accepted_total", "Messages stored (workspace chat and MessagePal)")
DELIVERIES = Counter("chat_deliveries_total", "Events handed to connections of this process")
REORDERED = Counter(
    "chat_broadcasts_reordered_total",
    "New messages and changes that reached this process before their predecessor (sent through another process): held for it "
    "(outcome=held), and of those, waits that ended without it (outcome=timed_out; the connections then read the gap from the store)",
    ["outcome"],
)
GAP_FILLS = Counter(
    "chat_gap_fills_total",
    "Store reads a connection made to fill a gap before a broadcast (kind=messages|changes): a broadcast lost, or overtaken "
    "past CHAT_REORDER_WAIT",
    ["kind"],
)
SEND_SECONDS = Histogram("chat_send_seconds", "send_message: from the frame's arrival to its acknowledgement", buckets=_BUCKETS)
STORE_SECONDS = Histogram("chat_store_seconds", "Message store calls, by operation", ["op"], buckets=_BUCKETS)
ERRORS = Counter("chat_errors_total", "Errors answered, by kind (the protocol error code, or http_5xx)", ["kind"])


@contextmanager
def timed(histogram: Histogram) -> Iterator[None]:
    started = time.perf_counter()
    try:
        yield
    finally:
        histogram.observe(time.perf_counter() - started)
