"""The user object of PROTOCOL.md ("Identity and authentication")."""

from __future__ import annotations

from typing import TypedDict

from wire.schema import Id


class UserObject(TypedDict):
    id: Id
    username: str
    displayName: str
