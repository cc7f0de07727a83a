"""The one way events leave the server: to a channel-layer group.

Services call `broadcast_on_commit` so nobody hears of a write that then rolls
back (Zulip's send_event_on_commit). Consumers forward `chat.event` messages
to their socket; `skip_channel` lets the sender's own connection get the event
as a direct answer (with its requestId) instead of a second copy.
"""

from __future__ import annotations

import hashlib
import logging
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

from chatcore import jsonutil

logger = logging.getLogger(__name__)

EVENT_TYPE = "chat.event"


def channel_group(channel_id: int) -> str:
    return f"chat.channel.{int(channel_id)}"


def user_group(user_id: int) -> str:
    return f"chat.user.{int(user_id)}"


def pal_user_group(user_id: int) -> str:
    """Every MessagePal connection of one user."""
    return f"pal.user.{int(user_id)}"


def session_group(session_key: str) -> str:
    """Sockets opened with one login session (hashed: group names are public-ish)."""
    return "chat.session." + hashlib.sha256(session_key.encode()).hexdigest()[:40]


def force_close(group: str, reason: str) -> None:
    """Close every socket in the group with 4001 (logout, deactivation)."""
    try:
        async_to_sync(get_channel_layer().group_send)(group, {"type": "chat.force_close", "group": group, "reason": reason})
    except Exception:
        logger.exception("could not close sockets of %s", group)


def envelope(
    group: str,
    payload: dict[str, Any],
    *,
    skip_channel: str | None = None,
    skip_user: int | None = None,
    prev_id: int | None = None,
) -> dict[str, Any]:
    """Serialized once here, not once per recipient: consumers forward `text`
    as it is and decide from the small `meta` whether to forward at all.
    `group` tells each process's hub (chatcore.hub) whom it is for.
    `prevId` (new messages): the id of the stream's message before this one."""
    message = payload.get("message")
    meta = {
        "type": payload["type"],
        "channelId": payload.get("channelId"),
        "messageId": message.get("id") if isinstance(message, dict) else None,
        "prevId": prev_id,
    }
    return {
        "type": EVENT_TYPE,
        "group": group,
        "text": jsonutil.dumps(payload),
        "meta": meta,
        "skip_channel": skip_channel,
        "skip_user": skip_user,
    }


def broadcast_on_commit(
    group: str, payload: dict[str, Any], *, skip_channel: str | None = None, skip_user: int | None = None, prev_id: int | None = None
) -> None:
    message = envelope(group, payload, skip_channel=skip_channel, skip_user=skip_user, prev_id=prev_id)

    def send() -> None:
        try:
            async_to_sync(get_channel_layer().group_send)(group, message)
        except Exception:  # the write is committed; a lost broadcast is healed by catch-up
            logger.exception("broadcast to %s failed", group)

    transaction.on_commit(send)


async def abroadcast(group: str, payload: dict[str, Any], *, skip_channel: str | None = None, skip_user: int | None = None) -> None:
    """For ephemeral events (typing, presence) that have no transaction."""
    await get_channel_layer().group_send(group, envelope(group, payload, skip_channel=skip_channel, skip_user=skip_user))


def payload_of(message: dict[str, Any]) -> dict[str, Any]:
    """The event a `chat.event` channel-layer message carries (tests, tools)."""
    return jsonutil.loads(message["text"])
