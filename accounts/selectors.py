"""Reads of accounts: the user search, the user object, usernames."""

from __future__ import annotations

from collections.abc import Callable

from django.db.models import Q, QuerySet

from accounts import names
from accounts.models import User
from accounts.schema import MeObject, UserObject

# Whom a user may find: the people they can reach, a rule of the apps above
# accounts (messagepal.selectors.reachable_users: people who share a
# workspace), registered by messagepal at start-up (MessagepalConfig.ready).
# Until one is registered the search finds nobody.
_reachable: Callable[[User], QuerySet[User]] | None = None


def user_search_scope_register(rule: Callable[[User], QuerySet[User]]) -> None:
    global _reachable
    _reachable = rule


def user_search(*, user: User, text: str, limit: int = 20) -> QuerySet[User]:
    """Active people (not the AI) `user` can reach whose username or display
    name contains `text`, at most `limit`, by username."""
    qs = (_reachable(user) if _reachable is not None else User.objects.none()).filter(is_active=True, is_ai=False)
    text = text.strip()
    if text:
        qs = qs.filter(Q(username__icontains=text) | Q(display_name__icontains=text))
    return qs.order_by("username")[:limit]


def user_object(user: User) -> UserObject:
    return UserObject(id=user.id, username=user.username, displayName=user.shown_name)


def me_object(user: User) -> MeObject:
    return MeObject(**user_object(user), email=user.email, emailNotifications=user.email_notifications)


def user_canonical_username(username: str) -> str:
    """The stored spelling of a username typed in any case (or it unchanged)."""
    stored = User.objects.filter(username_key=names.name_key(username)).values_list("username", flat=True).first()
    return stored or username
