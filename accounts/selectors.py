from __future__ import annotations

from django.db.models import Q, QuerySet

from accounts import names
from accounts.models import User
from accounts.schema import UserObject


def user_search(*, text: str, limit: int = 20) -> QuerySet[User]:
    qs = User.objects.filter(is_active=True, is_ai=False)
    text = text.strip()
    if text:
        qs = qs.filter(Q(username__icontains=text) | Q(display_name__icontains=text))
    return qs.order_by("username")[:limit]


def user_object(user: User) -> UserObject:
    return UserObject(id=user.id, username=user.username, displayName=user.shown_name)


def user_canonical_username(username: str) -> str:
    """The stored spelling of a username typed in any case (or it unchanged)."""
    stored = User.objects.filter(username_key=names.name_key(username)).values_list("username", flat=True).first()
    return stored or username
