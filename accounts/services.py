"""Account writes: registration."""

from __future__ import annotations

from django.contrib.auth import logout
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import transaction
from rest_framework.exceptions import ValidationError

from accounts.models import User
from realtime.events import force_close, session_group, user_group


@transaction.atomic
def user_register(*, username: str, password: str, display_name: str = "") -> User:
    if User.objects.filter(username__iexact=username).exists():
        raise ValidationError({"username": ["A user with that username already exists."]})
    user = User(username=username, display_name=display_name.strip())
    try:
        validate_password(password, user)
    except DjangoValidationError as exc:
        raise ValidationError({"password": list(exc.messages)}) from None
    user.set_password(password)
    user.save()
    return user


def user_logout(request) -> None:
    """End the session, and close the WebSockets opened with it (4001)."""
    session_key = request.session.session_key
    logout(request)
    if session_key:
        force_close(session_group(session_key), "Logged out.")


def user_deactivate(*, user: User) -> None:
    """Moderation: the user can no longer log in; their sockets close now."""
    User.objects.filter(pk=user.pk).update(is_active=False)
    transaction.on_commit(lambda: force_close(user_group(user.pk), "Account deactivated."))
