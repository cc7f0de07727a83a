"""MessagePal conversations (their messages live in the message store under
the stream `conv_{smaller user id}_{larger user id}`, the conversation id),
read marks, and blocks between two people."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class Conversation(models.Model):
    id = models.CharField(max_length=40, primary_key=True)
    user_low = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    user_high = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    last_message_id = models.BigIntegerField(null=True, blank=True)
    last_message_at = models.DateTimeField(null=True, blank=True, db_index=True)

    class Meta:
        indexes = [models.Index(fields=["user_low", "-last_message_at"]), models.Index(fields=["user_high", "-last_message_at"])]

    def __str__(self) -> str:
        return self.id

    def other(self, user_id: int) -> int:
        return self.user_high_id if user_id == self.user_low_id else self.user_low_id


class ReadMark(models.Model):
    """Each forward move of a reader's pointer in a conversation: a message's
    readAt is the time of the first mark at or past it, so reading a later
    message never rewrites when an earlier one was read."""

    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="read_marks")
    reader = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    message_id = models.BigIntegerField()
    read_at = models.DateTimeField()

    class Meta:
        indexes = [models.Index(fields=["conversation", "reader", "message_id"])]

    def __str__(self) -> str:
        return f"{self.reader_id} read {self.conversation_id} to {self.message_id}"


class Block(models.Model):
    """`blocker` blocked `blocked`: no MessagePal sends or typing either way
    while it exists (messagepal.selectors.access_recipient)."""

    blocker = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    blocked = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["blocker", "blocked"], name="messagepal_block_once"),
            models.CheckConstraint(condition=~models.Q(blocker=models.F("blocked")), name="messagepal_block_not_self"),
        ]
        # The other direction's look-up (who blocked me) has an index too.
        indexes = [models.Index(fields=["blocked", "blocker"])]

    def __str__(self) -> str:
        return f"{self.blocker_id} blocks {self.blocked_id}"
