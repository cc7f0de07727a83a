"""Tables of the SQL message store backend (messagestore.sql)."""

from __future__ import annotations

from django.db import models


class StreamHead(models.Model):
    """The last id handed out in a stream; its row lock orders writers."""

    stream = models.CharField(max_length=64, primary_key=True)
    last_id = models.BigIntegerField()

    def __str__(self) -> str:
        return f"{self.stream} @ {self.last_id}"


class Message(models.Model):
    # Message ids increase per stream (messagestore.ids); two streams may hand out
    # the same id in the same millisecond, so the row key is (stream, message_id).
    stream = models.CharField(max_length=64)
    message_id = models.BigIntegerField()
    author_id = models.BigIntegerField()
    content = models.TextField()
    message_type = models.CharField(max_length=16, default="text")
    file_url = models.CharField(max_length=2048, null=True, blank=True)
    reply_to = models.BigIntegerField(null=True, blank=True)
    mentions = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField()
    edited_at = models.DateTimeField(null=True, blank=True)
    is_pinned = models.BooleanField(default=False)
    pinned_by = models.BigIntegerField(null=True, blank=True)
    is_ai = models.BooleanField(default=False)
    client_id = models.CharField(max_length=128, null=True, blank=True)
    grade = models.CharField(max_length=32, null=True, blank=True)
    feedback = models.TextField(null=True, blank=True)
    graded_by = models.BigIntegerField(null=True, blank=True)
    graded_at = models.DateTimeField(null=True, blank=True)
    hidden = models.BooleanField(default=False, help_text="Hidden by a moderator, or deleted: kept, but shown to nobody.")
    deleted_at = models.DateTimeField(null=True, blank=True, help_text="Deleted by its author or a teacher (soft delete).")
    deleted_by = models.BigIntegerField(null=True, blank=True, help_text="Who deleted it (user id; empty: a moderator in admin).")

    class Meta:
        indexes = [
            models.Index(fields=["stream", "is_pinned"], name="msg_stream_pinned"),
            # Threads: a root's replies (counts, the thread page).
            models.Index(fields=["stream", "reply_to", "message_id"], name="msg_stream_thread"),
        ]
        constraints = [
            models.UniqueConstraint(fields=["stream", "message_id"], name="msg_stream_message_id"),
            models.UniqueConstraint(fields=["stream", "author_id", "client_id"], name="msg_client_id_once"),
        ]

    def __str__(self) -> str:
        return f"{self.stream}#{self.message_id}"


class ReadPointer(models.Model):
    stream = models.CharField(max_length=64)
    user_id = models.BigIntegerField()
    message_id = models.BigIntegerField()
    read_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["stream", "user_id"], name="readpointer_once")]

    def __str__(self) -> str:
        return f"{self.user_id} read {self.stream} to {self.message_id}"


class Reaction(models.Model):
    """One user's one emoji on one message."""

    stream = models.CharField(max_length=64)
    message_id = models.BigIntegerField()
    emoji = models.CharField(max_length=64)
    user_id = models.BigIntegerField()
    created_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["stream", "message_id", "emoji", "user_id"], name="reaction_once")]

    def __str__(self) -> str:
        return f"{self.user_id} {self.emoji} on {self.stream}#{self.message_id}"


class ChangeHead(models.Model):
    """The last change id of a stream; its row lock orders the writers of
    its change feed (as StreamHead orders a stream's messages)."""

    stream = models.CharField(max_length=64, primary_key=True)
    last_id = models.BigIntegerField()

    def __str__(self) -> str:
        return f"{self.stream} changes @ {self.last_id}"


class Change(models.Model):
    """The change feed of a stream: what changed (edit, delete, reactions,
    thread counts, pin) and in which order."""

    stream = models.CharField(max_length=64)
    change_id = models.BigIntegerField()
    message_id = models.BigIntegerField()
    kind = models.CharField(max_length=16)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["stream", "change_id"], name="change_once")]

    def __str__(self) -> str:
        return f"{self.stream} change {self.change_id}: {self.kind} {self.message_id}"
