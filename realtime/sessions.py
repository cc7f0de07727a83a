"""Open sockets whose login session has ended are closed (4001): logout,
deactivation and a password change close their sockets at once through the
channel layer (realtime.events.force_close), but a session can also
expire, or be ended while that close message was lost (Redis down at the
time). So every maintenance round (realtime.hub) each process checks the
sessions its sockets were opened with -- two queries a round, whatever the
number of sockets -- and closes those whose session is gone, expired, or
belongs to a deactivated user or an old password."""

from __future__ import annotations

import logging
from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings
from django.utils import timezone

from realtime.events import FORCE_CLOSE_TYPE
from realtime.hub import Hub

logger = logging.getLogger(__name__)

ENDED = {"type": FORCE_CLOSE_TYPE, "group": None, "keep": None, "reason": "Your session has ended; log in again."}


def _live_session_keys(keys: set[str]) -> set[str]:
    """The keys among `keys` whose session is still good: it exists, has not
    expired, and (database sessions) its user is active and its password
    has not changed since the login."""
    if settings.SESSION_ENGINE != "django.contrib.sessions.backends.db":
        from importlib import import_module

        store = import_module(settings.SESSION_ENGINE).SessionStore
        return {key for key in keys if store().exists(key)}
    from django.contrib.auth import HASH_SESSION_KEY, SESSION_KEY, get_user_model
    from django.contrib.sessions.models import Session
    from django.utils.crypto import constant_time_compare

    sessions: dict[str, dict[str, Any]] = {}
    ordered = sorted(keys)
    for start in range(0, len(ordered), 500):
        for session in Session.objects.filter(session_key__in=ordered[start : start + 500], expire_date__gt=timezone.now()):
            sessions[session.session_key] = session.get_decoded()
    user_ids = {str(data[SESSION_KEY]) for data in sessions.values() if data.get(SESSION_KEY) is not None}
    users = {str(user.pk): user for user in get_user_model().objects.filter(pk__in=user_ids, is_active=True)}
    alive = set()
    for key, data in sessions.items():
        user = users.get(str(data.get(SESSION_KEY)))
        if user is not None and constant_time_compare(data.get(HASH_SESSION_KEY, ""), user.get_session_auth_hash()):
            alive.add(key)
    return alive


async def close_ended_sessions(hub: Hub) -> None:
    by_key: dict[str, list[Any]] = {}
    for listener in tuple(hub.listeners):
        key = getattr(listener, "session_key", None)
        if key:
            by_key.setdefault(key, []).append(listener)
    if not by_key:
        return
    alive = await sync_to_async(_live_session_keys)(set(by_key))
    for key in set(by_key) - alive:
        for listener in by_key[key]:
            listener.on_control(ENDED)
    ended = len(set(by_key) - alive)
    if ended:
        logger.info("closed the sockets of %d ended session(s)", ended)

