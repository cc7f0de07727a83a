"""The user object of PROTOCOL.md ("Identity and authentication")."""

from __future__ import annotations

from typing import TypedDict

from wire.schema import Id


class UserObject(TypedDict):
    id: Id
    username: str
    displayName: str


class MeObject(UserObject):
    """The caller's own user object (`/api/auth/me/`): with the email settings."""

    email: str
    emailNotifications: bool
