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
