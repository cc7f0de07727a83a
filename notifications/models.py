"""Notifications (PROTOCOL.md part 2, "Presence snapshot, mentions and
notifications"): what each user is told about, their per-channel level, the
unread mentions behind `mentionCount`, and who takes part in each thread."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class Level(models.TextChoices):
    ALL = "all"
    MENTIONS = "mentions"  # the default: everything but kind "message"
    NONE = "none"


class Kind(models.TextChoices):
    """In order of precedence: one message gives a user the first that applies."""

    MENTION = "mention"
    DM = "dm"
    REPLY = "reply"
    MESSAGE = "message"


# Kinds that may end up in a missed-message email.
EMAILED_KINDS = (Kind.MENTION, Kind.DM)


class ChannelLevel(models.Model):
    """A user's level for one channel; no row means Level.MENTIONS."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    channel = models.ForeignKey("workspace_chat.Channel", on_delete=models.CASCADE, related_name="+")
    level = models.CharField(max_length=8, choices=Level.choices)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["channel", "user"], name="notifications_level_unique")]

    def __str__(self) -> str:
        return f"user {self.user_id} in channel {self.channel_id}: {self.level}"


class Notification(models.Model):
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notifications")
    kind = models.CharField(max_length=8, choices=Kind.choices)
    workspace_id = models.BigIntegerField()
    channel = models.ForeignKey("workspace_chat.Channel", on_delete=models.CASCADE, related_name="+")
    message_id = models.BigIntegerField()
    # The message object as `new_message` carried it (kept current by edits).
    message = models.JSONField()
    created_at = models.DateTimeField(auto_now_add=True)
    read_at = models.DateTimeField(null=True, blank=True)
    # The email sweep's claim (notifications.email): set once, so nobody gets two copies.
    emailed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ("-id",)
        constraints = [models.UniqueConstraint(fields=["user", "channel", "message_id"], name="notifications_once_per_message")]
        indexes = [
            models.Index(fields=["user", "read_at", "id"], name="notifications_user_unread"),
            models.Index(fields=["channel", "message_id"], name="notifications_message"),
            models.Index(fields=["emailed_at", "kind", "created_at"], name="notifications_email_due"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} for user {self.user_id}: message {self.message_id} of channel {self.channel_id}"


class Mention(models.Model):
    """An unread message that mentions the user (`mentionCount`): written
    with the message, removed when the user reads past it or it is deleted."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    channel = models.ForeignKey("workspace_chat.Channel", on_delete=models.CASCADE, related_name="+")
    message_id = models.BigIntegerField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "channel", "message_id"], name="notifications_mention_unique")]
        indexes = [models.Index(fields=["channel", "message_id"], name="notifications_mention_message")]

    def __str__(self) -> str:
        return f"user {self.user_id} in message {self.message_id} of channel {self.channel_id}"


class ThreadParticipant(models.Model):
    """Who wrote a thread's root or replied in it (kind "reply")."""

    channel = models.ForeignKey("workspace_chat.Channel", on_delete=models.CASCADE, related_name="+")
    root_id = models.BigIntegerField()
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["channel", "root_id", "user"], name="notifications_thread_participant_unique")]

    def __str__(self) -> str:
        return f"user {self.user_id} in thread {self.root_id} of channel {self.channel_id}"
