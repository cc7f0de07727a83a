"""Missed-message email (PROTOCOL.md part 2): a user with an email address
and no open connection, whose mention or DM notification stays unread for
CHAT_EMAIL_DELAY seconds, gets one email listing what they missed, at most
one per CHAT_EMAIL_DELAY. Sent by the worker (`manage.py chat_worker`),
never by a request.

Exactly one sender per user and window, across any number of workers: a
worker claims a user with one conditional UPDATE of `last_email_at`, then
the notifications it lists with another (`emailed_at`), so two workers never
both send, and a notification is never in two emails."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.core import signing
from django.core.mail import EmailMessage
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from accounts.models import User
from notifications.models import EMAILED_KINDS, Notification
from notifications.services import channel_readers
from workspace_chat.models import Channel, ChannelKind

logger = logging.getLogger(__name__)

UNSUBSCRIBE_SALT = "notifications.unsubscribe"
# Users emailed per sweep at most (the rest wait for the next round), and
# missed messages listed in one email.
USERS_PER_SWEEP = 200
MAX_LISTED = 20
MAX_TEXT = 300


def unsubscribe_token(user_id: int) -> str:
    return signing.dumps(user_id, salt=UNSUBSCRIBE_SALT)


def unsubscribe_user_id(token: str) -> int | None:
    try:
        value = signing.loads(token, salt=UNSUBSCRIBE_SALT)
    except signing.BadSignature:
        return None
    return value if isinstance(value, int) else None


def email_enabled() -> bool:
    return bool(settings.EMAIL_URL)


def email_sweep(now: datetime | None = None) -> int:
    """One round: email every user whose missed notifications are due. The
    number of emails sent."""
    if not email_enabled():
        return 0
    now = now or timezone.now()
    due_before = now - timedelta(seconds=settings.CHAT_EMAIL_DELAY)
    due = _due(due_before).filter(
        Q(user__connected_until=None) | Q(user__connected_until__lt=now),
        Q(user__last_email_at=None) | Q(user__last_email_at__lte=due_before),
        user__is_active=True,
        user__email_notifications=True,
    ).exclude(user__email="")
    user_ids = list(due.order_by("user_id").values_list("user_id", flat=True).distinct()[:USERS_PER_SWEEP])
    sent = 0
    for user_id in user_ids:
        try:
            sent += _email_user(user_id, now=now, due_before=due_before)
        except Exception:
            logger.exception("missed-message email to user %s failed", user_id)
    return sent


def _due(due_before: datetime):
    return Notification.objects.filter(read_at=None, emailed_at=None, kind__in=EMAILED_KINDS, created_at__lte=due_before)


def _email_user(user_id: int, *, now: datetime, due_before: datetime) -> int:
    # The claim: of several workers, one moves last_email_at.
    claimed = User.objects.filter(Q(last_email_at=None) | Q(last_email_at__lte=due_before), id=user_id).update(last_email_at=now)
    if not claimed:
        return 0
    user = User.objects.get(id=user_id)
    with transaction.atomic():
        ids = list(_due(due_before).filter(user_id=user_id).order_by("id").values_list("id", flat=True))
        Notification.objects.filter(id__in=ids, emailed_at=None).update(emailed_at=now)
    notifications = list(Notification.objects.filter(id__in=ids, emailed_at=now).select_related("channel__workspace").order_by("id"))
    # Only what the user may still read (not a channel they were removed from).
    readable = {c.id for c in {n.channel for n in notifications} if user.id in channel_readers(c, [user.id])}
    missed = [n for n in notifications if n.channel_id in readable]
    if not missed:
        return 0
    try:
        _digest(user, missed).send()
    except Exception:
        # Not sent: the next round tries again.
        Notification.objects.filter(id__in=[n.id for n in missed]).update(emailed_at=None)
        User.objects.filter(id=user.id).update(last_email_at=None)
        raise
    return 1


@dataclass(frozen=True)
class MissedLine:
    sender: str
    place: str
    text: str
    link: str


def _line(notification: Notification) -> MissedLine:
    channel: Channel = notification.channel
    message = notification.message
    sender = message.get("authorDisplayName") or message.get("authorUsername") or "Someone"
    place = f"a direct message in {channel.workspace.name}" if channel.kind == ChannelKind.DM else f"#{channel.name} in {channel.workspace.name}"
    text = str(message.get("content", ""))
    if len(text) > MAX_TEXT:
        text = text[: MAX_TEXT - 1] + "…"
    link = f"{settings.CHAT_SITE_URL}/workspaces/{channel.workspace_id}/channels/{channel.id}/#message-{notification.message_id}"
    return MissedLine(sender=sender, place=place, text=text, link=link)


def _digest(user: User, missed: list[Notification]) -> EmailMessage:
    lines = [_line(n) for n in missed[:MAX_LISTED]]
    count = len(missed)
    subject = f"{lines[0].sender} sent you a message" if count == 1 else f"You have {count} unread messages"
    unsubscribe = f"{settings.CHAT_SITE_URL}/notifications/unsubscribe/{unsubscribe_token(user.id)}/"
    parts = [f"Hello {user.shown_name},", "", "While you were away:", ""]
    for line in lines:
        parts += [f"{line.sender} in {line.place}:", *(f"  {row}" for row in line.text.splitlines() or [""]), f"  {line.link}", ""]
    if count > len(lines):
        parts += [f"... and {count - len(lines)} more.", ""]
    parts += ["--", f"You get these emails because you were mentioned or sent a direct message while away. Stop them: {unsubscribe}"]
    return EmailMessage(
        subject=subject,
        body="\n".join(parts),
        to=[user.email],
        headers={"List-Unsubscribe": f"<{unsubscribe}>", "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"},
    )
