"""Uploaded files (PROTOCOL.md part 2, "Files"): the bytes live in Django's
storage (CHAT_MEDIA_ROOT, or any django-storages backend); a row here says
whose they are, where they may be shared, what they are, and which messages
use them."""

from __future__ import annotations

import secrets

from django.conf import settings
from django.db import models


def new_file_id() -> str:
    """Unguessable (access is checked anyway, but an id says nothing)."""
    return secrets.token_urlsafe(16)  # 22 characters of [A-Za-z0-9_-]


class StoredFile(models.Model):
    id = models.CharField(primary_key=True, max_length=32, default=new_file_id, editable=False)
    uploader = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    # Where it may be shared: one channel or one MessagePal conversation.
    channel = models.ForeignKey("workspace_chat.Channel", null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    conversation_id = models.CharField(max_length=40, blank=True, default="", db_index=True)
    name = models.CharField(max_length=255)
    size = models.BigIntegerField()
    content_type = models.CharField(max_length=100)
    is_image = models.BooleanField(default=False)
    width = models.PositiveIntegerField(null=True, blank=True)
    height = models.PositiveIntegerField(null=True, blank=True)
    blob = models.CharField(max_length=255, help_text="the name in the storage")
    thumbnail_blob = models.CharField(max_length=255, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    # Set while no message uses it (from the upload until it is sent, and
    # again once its last message is deleted): `manage.py chat_worker`
    # removes it CHAT_FILE_GRACE seconds later.
    orphaned_at = models.DateTimeField(null=True, blank=True, db_index=True)

    class Meta:
        indexes = [models.Index(fields=["uploader", "created_at"], name="files_uploader")]

    def __str__(self) -> str:
        return f"{self.name} ({self.size} bytes, {self.content_type})"


class FileUse(models.Model):
    """A live message that carries the file."""

    file = models.ForeignKey(StoredFile, on_delete=models.CASCADE, related_name="uses")
    stream = models.CharField(max_length=64)
    message_id = models.BigIntegerField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["stream", "message_id"], name="files_use_unique")]

    def __str__(self) -> str:
        return f"{self.file_id} in {self.stream}#{self.message_id}"
