"""The one message id generator: time-ordered integers below 2^53.

An id is (milliseconds since EPOCH) << 12 | sequence. 41 bits of milliseconds
last until 2093, so ids stay below 2^53 and are exact JSON numbers. Stores call
`next_id(last_id)` while they hold the stream's write lock, which makes ids in
a stream increase in the order the server accepted the messages, even with
several processes writing.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

from wire.schema import MAX_ID

EPOCH_MS = 1_704_067_200_000  # 2024-01-01T00:00:00Z
SEQUENCE_BITS = 12


def now_ms() -> int:
    return int(time.time() * 1000)


def next_id(last_id: int | None) -> int:
    candidate = (now_ms() - EPOCH_MS) << SEQUENCE_BITS
    if last_id is not None and candidate <= last_id:
        candidate = last_id + 1
    if candidate > MAX_ID:  # pragma: no cover - year 2093
        raise OverflowError("message id space exhausted")
    return candidate


def id_time(message_id: int) -> datetime:
    """The creation time an id encodes (to the millisecond)."""
    ms = (message_id >> SEQUENCE_BITS) + EPOCH_MS
    return datetime.fromtimestamp(ms / 1000, tz=UTC)
