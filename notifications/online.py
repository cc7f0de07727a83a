"""Until when each user holds an open WebSocket (`User.connected_until`), so
the email worker, in a process of its own, knows who is away: each server
process moves it forward for its live connections every maintenance round
(realtime.hub, every 20 s) and for new `/ws/chat/` connections within a
second of their connect (one UPDATE for all of them: a join storm of 1,000
costs one or two queries, not 1,000); a user whose last connection closed (or
whose process died) is away SEEN_TTL seconds later."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from datetime import timedelta

from channels.db import database_sync_to_async
from django.utils import timezone

from accounts.models import User
from realtime.connections import live_user_ids

logger = logging.getLogger(__name__)

SEEN_TTL = 60.0
# New connections are written this long after the first of them, together.
FLUSH_AFTER = 1.0
_CHUNK = 1000
_connected: set[int] = set()
# The loop a write is scheduled on (one per process in a server; tests run
# several loops one after another, and a write scheduled on a finished one
# never runs).
_flush_loop: asyncio.AbstractEventLoop | None = None


def users_connected(user_ids: Iterable[int]) -> None:
    until = timezone.now() + timedelta(seconds=SEEN_TTL)
    ids = sorted(set(user_ids))
    for start in range(0, len(ids), _CHUNK):
        User.objects.filter(id__in=ids[start : start + _CHUNK]).update(connected_until=until)


def user_connected_soon(user_id: int) -> None:
    """A `/ws/chat/` connection of the user opened: written within FLUSH_AFTER."""
    global _flush_loop
    _connected.add(user_id)
    loop = asyncio.get_running_loop()
    if _flush_loop is not loop:
        _flush_loop = loop
        loop.call_later(FLUSH_AFTER, lambda: loop.create_task(_write_connected()))


async def _write_connected() -> None:
    global _flush_loop
    ids = list(_connected)
    _connected.clear()
    _flush_loop = None
    try:
        await database_sync_to_async(users_connected)(ids)
    except Exception as exc:  # the next maintenance round writes them again
        logger.warning("connected users not recorded: %r", exc)


async def users_seen_refresh(hub: object) -> None:
    ids = live_user_ids()
    if ids:
        await database_sync_to_async(users_connected)(ids)
