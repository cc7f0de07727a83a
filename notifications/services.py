"""Writes of notifications: who is told about a new message (and how),
levels, reading, and keeping stored notifications in step with edits and
deletes. Called by workspace_chat inside the write's transaction; events go
out on commit to every `/ws/chat/` connection of the user (notify_group)."""

from __future__ import annotations

from collections.abc import Iterable

from django.db import transaction
from django.utils import timezone

from accounts.models import User
from messagestore import StoredMessage, get_store
from notifications.models import ChannelLevel, Kind, Level, Mention, Notification, ThreadParticipant
from notifications.schema import notification_event
from realtime.events import broadcast_on_commit, notify_group
from workspace_chat.models import Channel, ChannelKind, ChannelMembership
from workspace_chat.schema import MessageObject


def message_notify(*, channel: Channel, message: StoredMessage, payload: MessageObject) -> None:
    """A new message: one notification per user at most, the first kind that
    applies (mention, dm, reply, message), never to its author, only to
    users who may read the channel and whose level lets it through."""
    author_id = message.author_id
    kinds: dict[int, str] = {}
    mentioned = [user_id for user_id in message.mentions if user_id != author_id]
    if mentioned:
        Mention.objects.bulk_create([Mention(user_id=u, channel=channel, message_id=message.id) for u in mentioned], ignore_conflicts=True)
        kinds.update(dict.fromkeys(mentioned, Kind.MENTION))
    if channel.kind == ChannelKind.DM:
        for user_id in ChannelMembership.objects.filter(channel=channel).values_list("user_id", flat=True):
            kinds.setdefault(user_id, Kind.DM)
    if message.reply_to is not None:
        for user_id in _thread_participants(channel, message.reply_to, author_id):
            kinds.setdefault(user_id, Kind.REPLY)
    for user_id, level in ChannelLevel.objects.filter(channel=channel).exclude(level=Level.MENTIONS).values_list("user_id", "level"):
        if level == Level.NONE:
            kinds.pop(user_id, None)
        else:
            kinds.setdefault(user_id, Kind.MESSAGE)
    kinds.pop(author_id, None)
    if not kinds:
        return
    readers = channel_readers(channel, kinds)
    notified = [Notification(user_id=u, kind=k, workspace_id=channel.workspace_id, channel=channel, message_id=message.id, message=payload) for u, k in kinds.items() if u in readers]
    Notification.objects.bulk_create(notified)
    for notification in notified:
        event = notification_event(kind=notification.kind, workspace_id=channel.workspace_id, channel_id=channel.id, message=payload)
        broadcast_on_commit(notify_group(notification.user_id), event, any_channel=True)


def _thread_participants(channel: Channel, root_id: int, author_id: int) -> set[int]:
    """Who wrote the root or replied before; the replier joins them."""
    known = set(ThreadParticipant.objects.filter(channel=channel, root_id=root_id).values_list("user_id", flat=True))
    root = get_store().get(channel.stream, root_id)
    participants = known | ({root.author_id} if root is not None else set())
    joining = ({author_id} | participants) - known
    ThreadParticipant.objects.bulk_create([ThreadParticipant(channel=channel, root_id=root_id, user_id=u) for u in joining], ignore_conflicts=True)
    return participants


def channel_readers(channel: Channel, user_ids: Iterable[int]) -> set[int]:
    """Those of `user_ids` who may read the channel now (one query)."""
    qs = User.objects.filter(id__in=list(user_ids), is_active=True, workspace_memberships__workspace_id=channel.workspace_id)
    if channel.is_restricted:
        qs = qs.filter(channel_memberships__channel=channel)
    return set(qs.values_list("id", flat=True))


def message_edited(*, channel_id: int, message_id: int, payload: MessageObject, mentions: list[int]) -> None:
    """Stored notifications show the new text; a mention taken out of the
    text no longer counts (an edit notifies nobody new, as in Slack)."""
    Notification.objects.filter(channel_id=channel_id, message_id=message_id).update(message=payload)
    Mention.objects.filter(channel_id=channel_id, message_id=message_id).exclude(user_id__in=mentions).delete()


def message_removed(*, channel_id: int, message_id: int) -> None:
    """A deleted or hidden message: its notifications and mentions go too."""
    Notification.objects.filter(channel_id=channel_id, message_id=message_id).delete()
    Mention.objects.filter(channel_id=channel_id, message_id=message_id).delete()


def channel_read(*, user_id: int, channel_id: int, message_id: int) -> None:
    """`mark_read` up to `message_id`: the channel's notifications up to it
    are read and its mentions up to it no longer count."""
    Notification.objects.filter(user_id=user_id, channel_id=channel_id, read_at=None, message_id__lte=message_id).update(read_at=timezone.now())
    Mention.objects.filter(user_id=user_id, channel_id=channel_id, message_id__lte=message_id).delete()


def notifications_read(*, user: User, ids: list[int] | None = None, channel_id: int | None = None) -> int:
    """`POST /api/notifications/read/`: these ids, or every one of a channel
    (or, with neither, all of the user's). Only the caller's own."""
    qs = Notification.objects.filter(user=user, read_at=None)
    if ids is not None:
        qs = qs.filter(id__in=ids)
    if channel_id is not None:
        qs = qs.filter(channel_id=channel_id)
    return qs.update(read_at=timezone.now())


@transaction.atomic
def level_set(*, user: User, channel: Channel, level: str) -> str:
    if level == Level.MENTIONS:
        ChannelLevel.objects.filter(user=user, channel=channel).delete()
    else:
        ChannelLevel.objects.update_or_create(user=user, channel=channel, defaults={"level": level})
    return level
