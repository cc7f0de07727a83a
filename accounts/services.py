"""Account writes: registration, password change, logout, deactivation; each
closes the WebSockets it must (4001)."""

from __future__ import annotations

from django.contrib.auth import HASH_SESSION_KEY, logout
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError, transaction
from django.http import HttpRequest
from django.utils.translation import gettext_noop
from rest_framework.exceptions import ValidationError

from accounts import names
from accounts.audit import audit_record
from accounts.models import AuditAction, User
from realtime.events import force_close, session_group, user_group


def user_register(*, username: str, password: str, display_name: str = "", email: str = "") -> User:
    """A new user. The name must differ from every other as names do
    (accounts.names: case, compatibility forms, look-alike letters)."""
    key, look_alike = names.name_key(username), names.look_alike_key(username)
    if User.objects.filter(username_key=key).exists():
        raise ValidationError({"username": [gettext_noop("A user with that username already exists.")]})
    if User.objects.filter(username_look_alike=look_alike).exists():
        raise ValidationError({"username": [gettext_noop("That username looks like an existing one; choose another.")]})
    user = User(username=username, display_name=display_name.strip(), email=email.strip())
    try:
        validate_password(password, user)
    except DjangoValidationError as exc:
        raise ValidationError({"password": list(exc.messages)}) from None
    user.set_password(password)
    try:
        with transaction.atomic():
            user.save()
    except IntegrityError:  # the same name, registered at the same moment
        raise ValidationError({"username": [gettext_noop("A user with that username already exists.")]}) from None
    return user


def user_email_settings(*, user: User, email: str | None = None, email_notifications: bool | None = None) -> User:
    """`PATCH /api/auth/me/`: the address missed-message emails go to ("" for
    none) and whether they are wanted."""
    fields = []
    if email is not None:
        user.email = email.strip()
        fields.append("email")
    if email_notifications is not None:
        user.email_notifications = email_notifications
        fields.append("email_notifications")
    if fields:
        user.save(update_fields=fields)
    return user


def user_password_change(*, request: HttpRequest, user: User, old_password: str, new_password: str) -> None:
    """Check the old password, validate the new one, set it. The caller's
    session stays logged in; every other session of the user ends (Django
    checks each session's password hash on its next request, Channels on
    connect) and their open sockets close now (4001)."""
    if not user.check_password(old_password):
        raise ValidationError({"oldPassword": [gettext_noop("The old password is not correct.")]})
    try:
        validate_password(new_password, user)
    except DjangoValidationError as exc:
        raise ValidationError({"newPassword": list(exc.messages)}) from None
    user.set_password(new_password)
    user.save(update_fields=["password"])
    # This session stays valid under the new hash. Its key is kept (Django's
    # update_session_auth_hash would cycle it): the sockets opened with it
    # are in the group of that key, which logout closes later.
    request.session[HASH_SESSION_KEY] = user.get_session_auth_hash()
    keep = session_group(request.session.session_key) if request.session.session_key else None
    transaction.on_commit(lambda: force_close(user_group(user.pk), "Your password was changed; log in again.", keep=keep))


def user_logout(request) -> None:
    """End the session, and close the WebSockets opened with it (4001)."""
    session_key = request.session.session_key
    logout(request)
    if session_key:
        force_close(session_group(session_key), "Logged out.")


def user_deactivate(*, user: User, actor: User | None = None, reason: str = "") -> None:
    """Moderation: the user can no longer log in; their sockets close now."""
    User.objects.filter(pk=user.pk).update(is_active=False)
    audit_record(actor_id=actor.pk if actor else None, action=AuditAction.DEACTIVATE, target=f"user:{user.pk}", reason=reason)
    transaction.on_commit(lambda: force_close(user_group(user.pk), "Account deactivated."))
