"""The one way events leave the server: to a channel-layer group.

Services call `broadcast_on_commit` so nobody hears of a write that then rolls
back (Zulip's send_event_on_commit), or `abroadcast` for ephemeral events
(typing, presence) that have no transaction. Every process's hub
(realtime.hub) receives each event once and hands it to its connections as a
`Broadcast`. `skip_channel` lets the sender's own connection get the event
as its direct answer (with its requestId) instead of a second copy;
`skip_user` keeps it from the sender's user altogether (typing).

Group names come from the builders below, over integer ids or a hash, never
from user text (STYLE.md 7).
"""

from __future__ import annotations

import hashlib
import logging
import time
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import BaseChannelLayer, get_channel_layer
from django.core.exceptions import ImproperlyConfigured
from django.db import transaction

from wire import jsonutil

logger = logging.getLogger(__name__)

EVENT_TYPE = "chat.event"
FORCE_CLOSE_TYPE = "chat.force_close"
# A user lost access to channels (removed from a workspace or a private
# channel): their connections leave them at once.
REMOVED_TYPE = "chat.removed"


def channel_layer() -> BaseChannelLayer:
    """The project's channel layer (settings.CHANNEL_LAYERS["default"])."""
    layer = get_channel_layer()
    if layer is None:
        raise ImproperlyConfigured("CHANNEL_LAYERS has no default layer")
    return layer


def channel_group(channel_id: int) -> str:
    return f"chat.channel.{int(channel_id)}"


def user_group(user_id: int) -> str:
    return f"chat.user.{int(user_id)}"


def notify_group(user_id: int) -> str:
    """Every `/ws/chat/` connection of one user (notifications)."""
    return f"chat.notify.{int(user_id)}"


def pal_user_group(user_id: int) -> str:
    """Every MessagePal connection of one user."""
    return f"pal.user.{int(user_id)}"


def session_group(session_key: str) -> str:
    """Sockets opened with one login session (hashed: group names are public-ish)."""
    return "chat.session." + hashlib.sha256(session_key.encode()).hexdigest()[:40]


def envelope(
    group: str,
    payload: Any,
    *,
    skip_channel: str | None = None,
    skip_user: int | None = None,
    prev_id: int | None = None,
    change_id: int | None = None,
    any_channel: bool = False,
) -> dict[str, Any]:
    """The channel-layer message of an event. Serialized once here, not once
    per recipient; recipients decide from the small `meta` whether to write
    `text` at all. `prevId` (new messages): the id of the stream's message
    before this one, when the store can tell; `changeId` (a change recorded
    in the channel's change feed): its id. realtime.delivery uses both.
    `any_channel`: delivered whether or not the connection joined the
    event's channel (a notification)."""
    message = payload.get("message")
    meta = {
        "type": payload["type"],
        "channelId": None if any_channel else payload.get("channelId"),
        "messageId": message.get("id") if isinstance(message, dict) else None,
        "prevId": prev_id,
        "changeId": change_id,
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
    group: str,
    payload: Any,
    *,
    skip_channel: str | None = None,
    skip_user: int | None = None,
    prev_id: int | None = None,
    change_id: int | None = None,
    any_channel: bool = False,
) -> None:
    message = envelope(group, payload, skip_channel=skip_channel, skip_user=skip_user, prev_id=prev_id, change_id=change_id, any_channel=any_channel)

    def send() -> None:
        try:
            async_to_sync(channel_layer().group_send)(group, message)
        except Exception:  # the write is committed; a lost broadcast is healed by catch-up
            logger.exception("broadcast to %s failed", group)

    transaction.on_commit(send)


async def abroadcast(group: str, payload: Any, *, skip_channel: str | None = None, skip_user: int | None = None) -> None:
    """For ephemeral events (typing, presence) that have no transaction."""
    await channel_layer().group_send(group, envelope(group, payload, skip_channel=skip_channel, skip_user=skip_user))


def removed_on_commit(user_id: int, channel_ids: list[int]) -> None:
    """Once the transaction commits: every connection of the user, on every
    process, leaves these channels and hears nothing more of them."""
    group = user_group(user_id)
    message = {"type": REMOVED_TYPE, "group": group, "channels": sorted(channel_ids)}

    def send() -> None:
        try:
            async_to_sync(channel_layer().group_send)(group, message)
        except Exception:  # the access is gone anyway: the next event re-checks nothing, but a rejoin is refused
            logger.exception("telling %s about a removal failed", group)

    if channel_ids:
        transaction.on_commit(send)


def force_close(group: str, reason: str, *, keep: str | None = None) -> None:
    """Close every socket in the group with 4001 (logout, deactivation,
    password change), but those also in group `keep` (the session that
    changed the password)."""
    message = {"type": FORCE_CLOSE_TYPE, "group": group, "reason": reason, "keep": keep}
    for delay in (0.2, 0.5, None):
        try:
            async_to_sync(channel_layer().group_send)(group, message)
            return
        except Exception:
            if delay is None:
                # The sockets close anyway at the next maintenance round of
                # their process, which checks that their session lives on
                # (realtime.sessions); a password change or deactivation keeps
                # sessions alive but invalid, and Django refuses them on reconnect.
                logger.exception("could not close sockets of %s", group)
                return
            time.sleep(delay)


def payload_of(message: dict[str, Any]) -> Any:
    """The event a `chat.event` channel-layer message carries (tests, tools)."""
    return jsonutil.loads(message["text"])


def text_frame(payload: bytes) -> bytes:
    """One unmasked, unfragmented WebSocket text frame (RFC 6455 5.2), as a
    server sends it: the same bytes for every recipient."""
    length = len(payload)
    if length < 126:
        header = bytes((0x81, length))
    elif length < 1 << 16:
        header = bytes((0x81, 126)) + length.to_bytes(2, "big")
    else:
        header = bytes((0x81, 127)) + length.to_bytes(8, "big")
    return header + payload


class Broadcast:
    """A `chat.event` as a process's hub hands it to its connections: decoded
    once per process, its WebSocket frame built once, by the first recipient
    that writes frames (chatsite.daphne_adapter.write_frame)."""

    __slots__ = ("_frame", "change_id", "channel_id", "checked", "group", "kind", "message_id", "prev_id", "skip_channel", "skip_user", "text")

    def __init__(self, message: dict[str, Any]) -> None:
        meta = message["meta"]
        self.group: str = message["group"]
        self.text: str = message["text"]
        self.kind: str = meta["type"]
        self.channel_id: int | None = meta["channelId"]
        self.message_id: int | None = meta["messageId"]
        self.prev_id: int | None = meta["prevId"]
        self.change_id: int | None = meta.get("changeId")
        self.skip_channel: str | None = message.get("skip_channel")
        self.skip_user: int | None = message.get("skip_user")
        self.checked = False  # by a consumer in schema-check mode (tests)
        self._frame: bytes | None = None

    @property
    def frame(self) -> bytes:
        frame = self._frame
        if frame is None:
            frame = self._frame = text_frame(self.text.encode())
        return frame

    @property
    def is_new_message(self) -> bool:
        return self.kind == "new_message"
