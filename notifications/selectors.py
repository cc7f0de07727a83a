"""Reads of notifications: a user's list, levels, unread mention counts."""

from __future__ import annotations

from django.db.models import Count

from accounts.models import User
from notifications.models import ChannelLevel, Level, Mention, Notification
from notifications.schema import NotificationObject, NotificationPage
from wire.jsonutil import iso
from workspace_chat.models import Channel

# A page of the notification list holds at most this many.
PAGE_SIZE = 50


def level_of(*, user: User, channel: Channel) -> str:
    level = ChannelLevel.objects.filter(user=user, channel=channel).values_list("level", flat=True).first()
    return level or Level.MENTIONS


def mention_counts(*, user_id: int, channel_ids: list[int]) -> dict[int, int]:
    """Unread messages mentioning the user, per channel, in one query."""
    if not channel_ids:
        return {}
    rows = Mention.objects.filter(user_id=user_id, channel_id__in=channel_ids).values("channel_id").annotate(n=Count("id")).values_list("channel_id", "n")
    return dict(rows)


def notification_object(notification: Notification) -> NotificationObject:
    return NotificationObject(
        id=notification.id,
        kind=notification.kind,
        workspaceId=notification.workspace_id,
        channelId=notification.channel_id,
        message=notification.message,
        createdAt=iso(notification.created_at),
        read=notification.read_at is not None,
    )


def notification_page(*, user: User, unread: bool = False, before: int | None = None, limit: int = PAGE_SIZE) -> NotificationPage:
    """Newest first; `before` pages back by id."""
    qs = Notification.objects.filter(user=user)
    if unread:
        qs = qs.filter(read_at=None)
    if before is not None:
        qs = qs.filter(id__lt=before)
    rows = list(qs.order_by("-id")[: limit + 1])
    return NotificationPage(results=[notification_object(n) for n in rows[:limit]], hasMore=len(rows) > limit)
