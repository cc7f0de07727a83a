"""Users: Django's auth user plus a display name."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import AbstractUser
from django.db import models

from accounts import names


class User(AbstractUser):
    display_name = models.CharField(max_length=80, blank=True)
    is_ai = models.BooleanField(default=False, help_text="The @AI assistant's account; it cannot log in.")
    # accounts.names: the name for comparisons (unique: two registrations of
    # one name race into the index, not past it) and its look-alike form.
    username_key = models.CharField(max_length=150, unique=True, editable=False)
    username_look_alike = models.CharField(max_length=150, db_index=True, editable=False)
    # Missed-message email (notifications.email): wanted at all, when the
    # last one went, and until when the user holds an open WebSocket
    # (refreshed by each server process; null once the last one closed).
    email_notifications = models.BooleanField(default=True)
    last_email_at = models.DateTimeField(null=True, blank=True, editable=False)
    connected_until = models.DateTimeField(null=True, blank=True, editable=False)

    def __str__(self) -> str:
        return self.username

    def save(self, *args: Any, **kwargs: Any) -> None:
        # Derived from the username whatever saves it (registration, admin,
        # createsuperuser), so the unique index always holds the real key.
        self.username_key = names.name_key(self.username)
        self.username_look_alike = names.look_alike_key(self.username)
        update_fields = kwargs.get("update_fields")
        if update_fields is not None and "username" in update_fields:
            kwargs["update_fields"] = {*update_fields, "username_key", "username_look_alike"}
        super().save(*args, **kwargs)

    @property
    def shown_name(self) -> str:
        return self.display_name or self.username


class AuditAction(models.TextChoices):
    HIDE = "hide"
    UNHIDE = "unhide"
    DELETE = "delete"  # a message deleted by someone other than its author
    MUTE = "mute"
    UNMUTE = "unmute"
    REMOVE = "remove"  # from a workspace or a private channel, by someone else
    LEAVE = "leave"
    ROLE = "role"
    DEACTIVATE = "deactivate"
    BLOCK = "block"
    UNBLOCK = "unblock"
    REPORT = "report"
    RESOLVE = "resolve"  # a report dismissed or acted on


class AuditEntry(models.Model):
    """One moderation action: who did what to whom (or which message), why
    and when. Written by the services, read-only in Django admin."""

    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    actor = models.ForeignKey("accounts.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="audit_entries")
    action = models.CharField(max_length=16, choices=AuditAction.choices)
    workspace_id = models.BigIntegerField(null=True, blank=True, db_index=True)
    target = models.CharField(max_length=100, help_text="user:ID, message:STREAM#ID, channel:ID ...")
    reason = models.TextField(blank=True, default="")
    detail = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ("-created_at", "-id")
        verbose_name_plural = "audit entries"

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M} {self.action} {self.target}"
