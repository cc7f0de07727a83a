"""Users: Django's auth user plus a display name."""

from __future__ import annotations

from django.contrib.auth.models import AbstractUser
from django.db import models


class User(AbstractUser):
    display_name = models.CharField(max_length=80, blank=True)
    is_ai = models.BooleanField(default=False, help_text="The @AI assistant's account; it cannot log in.")

    def __str__(self) -> str:
        return self.username

    @property
    def shown_name(self) -> str:
        return self.display_name or self.username
