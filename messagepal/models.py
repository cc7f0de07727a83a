"""MessagePal conversations. Their messages live in the message store under
the stream `conv_{smaller user id}_{larger user id}` (the conversation id)."""

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
