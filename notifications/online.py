"""Until when each user holds an open WebSocket (`User.connected_until`), so
the email worker, in a process of its own, knows who is away: each server
process moves it forward for its live connections every maintenance round
(realtime.hub, every 20 s) and at each `/ws/chat/` connect; a user whose
last connection closed (or whose process died) is away SEEN_TTL seconds later."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta

from channels.db import database_sync_to_async
from django.utils import timezone

from accounts.models import User
from realtime.connections import live_user_ids

SEEN_TTL = 60.0
_CHUNK = 1000


def users_connected(user_ids: Iterable[int]) -> None:
    until = timezone.now() + timedelta(seconds=SEEN_TTL)
    ids = sorted(set(user_ids))
    for start in range(0, len(ids), _CHUNK):
        User.objects.filter(id__in=ids[start : start + _CHUNK]).update(connected_until=until)


async def users_seen_refresh(hub: object) -> None:
    ids = live_user_ids()
    if ids:
        await database_sync_to_async(users_connected)(ids)
